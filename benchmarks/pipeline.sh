#!/usr/bin/env bash
# Time the default DAG (`make run`) from an empty results/, after the install step:
# total wall time, and per rule the summed and longest job times from the rules' benchmark: files.
#   bash benchmarks/pipeline.sh [extra snakemake args, e.g. --cores 2]
set -euo pipefail
cd "$(dirname "$0")/.."
make install >/dev/null
rm -rf results .snakemake
start=$(date +%s.%N)
.venv/bin/snakemake --cores "${CORES:-all}" --configfile config.yaml "$@" >/tmp/cnninterp-pipeline.log 2>&1
end=$(date +%s.%N)
.venv/bin/python benchmarks/rule_times.py results/benchmarks --total "$(echo "$end - $start" | bc)"
# The Network Dissection chain (issue 11's budget: shards + training + both dissections <= 150 s of
# job time on 2 cores): job seconds and CPU seconds summed from the same benchmark files, with
# the two data generators listed apart. CPU time says how much of a job's wall time was waiting
# for the cores on a shared machine.
.venv/bin/python - <<'PY'
import csv, json
from pathlib import Path

root = Path("results/benchmarks")
groups = {
    "generate (probe + task)": ["data/broden_synthesize.tsv", "data/scenes_synthesize.tsv"],
    "shards (probe + task)": ["data/broden_shards.tsv", "data/scenes_shards.tsv"],
    "train baseline": ["train/baseline.tsv"],
    "dissect baseline + random": [str(p.relative_to(root)) for m in ("baseline", "baseline_random") for p in sorted((root / "dissect" / m).glob("*.tsv"))],
}
out, chain = {}, {"s": 0.0, "cpu_s": 0.0}
for name, files in groups.items():
    rows = [next(csv.DictReader((root / f).open(), delimiter="\t")) for f in files if (root / f).is_file()]
    s = sum(float(r["s"]) for r in rows)
    cpu = sum(float(r.get("cpu_time") or 0) for r in rows)
    out[name] = {"jobs": len(rows), "s": round(s, 1), "cpu_s": round(cpu, 1)}
    if not name.startswith("generate"):
        chain["s"] += s
        chain["cpu_s"] += cpu
out["chain: shards + training + dissections"] = {k: round(v, 1) for k, v in chain.items()}
print(json.dumps(out, indent=1))
PY
