#!/usr/bin/env bash
# One prepared script for a lent GPU machine: the CUDA code paths and the GPU figures.
#   bash benchmarks/gpu.sh        (after `make install`; prints JSON lines to copy into RESULTS.md)
# 1. the dissection benchmark on CUDA (same figures as the CPU table in RESULTS.md): forward-only
#    vs dissection throughput, target dissection / forward-only <= 1.25 (>= 0.8 of forward-only);
# 2. the default DAG with device: cuda, per-rule times from the benchmark: files;
# 3. CUDA vs CPU (benchmarks/gpu_check.py): thresholds from histograms counted on the device,
#    and tallies at the same thresholds (equal up to pixels within float rounding of a threshold,
#    since cuDNN and the CPU convolutions round differently).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
$PY -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.cuda.get_device_name(0))"
$PY benchmarks/dissect.py --images 3000 --size 224 --device cuda --batch-size 128
$PY benchmarks/gpu_check.py --device cuda --images 200 --size 112
CORES=16 bash benchmarks/pipeline.sh --config device=cuda
