#!/usr/bin/env bash
# One prepared script for a lent GPU machine: the CUDA code paths and the GPU figures.
#   bash benchmarks/gpu.sh        (after `make install`; prints JSON lines to copy into RESULTS.md)
# On a machine whose own Python already holds torch with CUDA (no .venv), name it and the
# snakemake to use: PY=python3 SNAKEMAKE=snakemake bash benchmarks/gpu.sh
# LOGS=folder keeps each step's output there. A step that fails is reported and the next one runs.
# 1. the dissection benchmark on CUDA (same figures as the CPU table in RESULTS.md): forward-only
#    vs dissection throughput, target dissection / forward-only <= 1.25 (>= 0.8 of forward-only);
#    then the same dissection stage by stage on the same shards (where the time beyond the forward goes);
# 2. CUDA vs CPU (benchmarks/gpu_check.py): thresholds from histograms counted on the device,
#    and tallies at the same thresholds (equal up to pixels within float rounding of a threshold,
#    since cuDNN and the CPU convolutions round differently);
# 3. the default DAG with device: cuda, per-rule times from the benchmark: files;
# 4. where py-spy is installed, a profile of step 1's stages (collapsed stacks, $LOGS/profile.txt).
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
LOGS=${LOGS:-benchmarks/out/gpu}
mkdir -p "$LOGS"
DATA=$(mktemp -d)
trap 'rm -rf "$DATA"' EXIT
failed=0
step() {  # step NAME COMMAND...: run it, its output also in $LOGS/NAME.log
    local name=$1; shift
    echo "== $name: $*"
    local start=$SECONDS
    "$@" 2>&1 | tee "$LOGS/$name.log"
    local rc=${PIPESTATUS[0]}
    echo "== $name: rc=$rc, $((SECONDS - start)) s"
    [ "$rc" = 0 ] || failed=$((failed + 1))
}
"$PY" -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.__version__, torch.cuda.get_device_name(0))" || exit 1
step dissect "$PY" benchmarks/dissect.py --images 3000 --size 224 --device cuda --batch-size 128 --skip-memory --data "$DATA"
step stages "$PY" benchmarks/dissect_stages.py --images 3000 --size 224 --device cuda --batch-size 128 --data "$DATA"
step gpu_check "$PY" benchmarks/gpu_check.py --device cuda --images 200 --size 112
step pipeline env CORES="${CORES:-16}" PY="$PY" PIPELINE_LOG="$LOGS/snakemake.log" bash benchmarks/pipeline.sh --config device=cuda
if command -v py-spy >/dev/null; then
    step profile py-spy record --rate 250 --format raw -o "$LOGS/profile.txt" -- \
        "$PY" benchmarks/dissect_stages.py --images 3000 --size 224 --device cuda --batch-size 128 --data "$DATA" --repeats 1
fi
exit $failed
