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
