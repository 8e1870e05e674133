#!/usr/bin/env bash
# Time the default DAG (`make run`) from an empty results/, after the install step:
# total wall time, and per rule the summed and longest job times from the rules' benchmark: files.
#   bash benchmarks/pipeline.sh [extra snakemake args, e.g. --cores 2]
# PY=... SNAKEMAKE=... use another Python and snakemake (a GPU machine's own, benchmarks/gpu.sh)
# instead of `make install`'s .venv; snakemake's own output goes to PIPELINE_LOG (default: a new
# temporary file, named at the end).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
SNAKEMAKE=${SNAKEMAKE:-.venv/bin/snakemake}
PIPELINE_LOG=${PIPELINE_LOG:-$(mktemp /tmp/cnninterp-pipeline.XXXXXX)}
[ "$PY" != .venv/bin/python ] || make install >/dev/null
rm -rf results .snakemake
start=$(date +%s.%N)
if ! "$SNAKEMAKE" --cores "${CORES:-all}" --configfile config.yaml "$@" >"$PIPELINE_LOG" 2>&1; then
    tail -40 "$PIPELINE_LOG" >&2
    echo "snakemake failed; its whole log: $PIPELINE_LOG" >&2
    exit 1
fi
end=$(date +%s.%N)
"$PY" benchmarks/rule_times.py results/benchmarks --total "$("$PY" -c "print(round($end - $start, 2))")"
# The Network Dissection chain (issue 11's budget: shards + training + both dissections <= 150 s of
# job time on 2 cores): job seconds and CPU seconds summed from the same benchmark files, with
# the two data generators listed apart. CPU time says how much of a job's wall time was waiting
# for the cores on a shared machine.
"$PY" -c 'import json, sys; from pathlib import Path; sys.path.insert(0, "benchmarks")
from default_chain import chain_times
print(json.dumps(chain_times(Path("results/benchmarks")), indent=1))'
echo "snakemake's log: $PIPELINE_LOG" >&2
