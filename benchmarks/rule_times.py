"""Summarise Snakemake ``benchmark:`` files per rule: jobs, summed and longest seconds, peak RSS.

    .venv/bin/python benchmarks/rule_times.py results/benchmarks --total 145.2
"""

import argparse
import csv
import json
from collections import defaultdict
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder")
    parser.add_argument("--total", type=float, default=None, help="wall seconds of the whole run")
    args = parser.parse_args()
    rules = defaultdict(lambda: {"jobs": 0, "sum_s": 0.0, "max_s": 0.0, "max_rss_mib": 0.0})
    for path in sorted(Path(args.folder).rglob("*.tsv")):
        # results/benchmarks/<stage>/[<model>/]<rule-ish name>.tsv
        parts = path.relative_to(args.folder).parts
        rule = parts[0] + "/" + path.stem.split("-")[0] if len(parts) > 2 else parts[0] + "/" + path.stem
        with path.open() as handle:
            row = next(csv.DictReader(handle, delimiter="\t"))
        r = rules[rule]
        r["jobs"] += 1
        r["sum_s"] += float(row["s"])
        r["max_s"] = max(r["max_s"], float(row["s"]))
        r["max_rss_mib"] = max(r["max_rss_mib"], float(row["max_rss"]))
    out = {k: {kk: round(vv, 2) if isinstance(vv, float) else vv for kk, vv in v.items()} for k, v in sorted(rules.items())}
    if args.total is not None:
        out["total_wall_s"] = round(args.total, 1)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
