"""Issue 11 (item 2): the Network Dissection chain's job time through Snakemake, other methods off.

Copies the workflow into ``--workdir`` (``tests/dag.make_workdir``) with config.yaml plus every
installed method switched off, runs Snakemake for both dissections' summaries on ``--cores``, and
prints per stage (generate, shards, training, dissections) the jobs, job seconds and CPU seconds
summed from the rules' ``benchmark:`` files, the chain (shards + training + dissections: the 150 s
budget) and the wall time, as JSON. The repository's own results/ is not touched:

    .venv/bin/python benchmarks/default_chain.py --workdir /tmp/chain --cores 2
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GROUPS = {
    "generate (probe + task)": ["data/broden_synthesize.tsv", "data/scenes_synthesize.tsv"],
    "shards (probe + task)": ["data/broden_shards.tsv", "data/scenes_shards.tsv"],
    "train baseline": ["train/baseline.tsv"],
}


def chain_times(bench: Path) -> dict:
    """Sum job seconds and CPU seconds per stage from the ``benchmark:`` TSV files under ``bench``."""
    groups = dict(GROUPS)
    # the random control's BatchNorm estimate (random_bn: task) belongs to its dissection
    groups["dissect baseline + random"] = [str(p.relative_to(bench)) for m in ("baseline", "baseline_random") for p in sorted((bench / "dissect" / m).glob("*.tsv"))] + [
        str(p.relative_to(bench)) for p in sorted((bench / "train").glob("random_*.tsv"))]
    out, chain = {}, {"s": 0.0, "cpu_s": 0.0}
    for name, files in groups.items():
        rows = [next(csv.DictReader((bench / f).open(), delimiter="\t")) for f in files if (bench / f).is_file()]
        s = sum(float(r["s"]) for r in rows)
        cpu = sum(float(r.get("cpu_time") or 0) for r in rows)
        out[name] = {"jobs": len(rows), "s": round(s, 1), "cpu_s": round(cpu, 1)}
        if not name.startswith("generate"):
            chain["s"] += s
            chain["cpu_s"] += cpu
    out["chain: shards + training + dissections"] = {k: round(v, 1) for k, v in chain.items()}
    return out


def main() -> None:
    """Run the chain (see the module docstring) and print its JSON record."""
    sys.path.insert(0, str(ROOT / "tests"))
    from dag import make_workdir, methods_off, snakemake

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", type=Path, required=True, help="a new folder")
    ap.add_argument("--cores", default="2")
    args = ap.parse_args()
    work = make_workdir(args.workdir, (ROOT / "config.yaml").read_text() + "\n" + methods_off())
    start = time.time()
    proc = snakemake(work, "--cores", args.cores, "results/dissect/baseline/summary.json", "results/dissect/baseline_random/summary.json", timeout=1800)
    wall = time.time() - start
    if proc.returncode:
        sys.exit(proc.stderr[-3000:])
    record = chain_times(work / "results" / "benchmarks")
    record["wall_s"] = round(wall, 1)
    model = json.loads((work / "results" / "models" / "baseline" / "config.json").read_text())
    record["val_accuracy"] = model["summary"]["val_accuracy"]
    print(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
