#!/usr/bin/env bash
# One prepared script for a lent GPU machine: the CUDA code paths and the GPU figures.
#   bash benchmarks/gpu.sh        (after `make install`; prints JSON lines to copy into RESULTS.md)
# 1. the dissection benchmark on CUDA (same figures as the CPU table in RESULTS.md);
# 2. the default DAG with device: cuda, per-rule times from the benchmark: files;
# 3. CUDA vs CPU tallies at the same thresholds (equal up to pixels within float rounding of a
#    threshold, since cuDNN and the CPU convolutions round differently).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
$PY -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.cuda.get_device_name(0))"
$PY benchmarks/dissect.py --images 3000 --size 224 --device cuda --batch-size 128
$PY - <<'PY'
import tempfile, numpy as np
from pathlib import Path
from cnninterp.data.synthetic_broden import generate_broden
from cnninterp.data.broden_shards import convert_broden
from cnninterp.data.shards import read_manifest, shard_paths
from cnninterp.dissect import engine
from cnninterp.models.backbones import random_model
import torch
with tempfile.TemporaryDirectory() as tmp:
    generate_broden(Path(tmp) / "b", 200, 112, seed=0)
    convert_broden(Path(tmp) / "b", Path(tmp) / "s", 100, {}, {})
    man, paths = read_manifest(Path(tmp) / "s"), shard_paths(Path(tmp) / "s")
    layers = ["layer2", "layer4"]
    m = random_model("resnet18", 0)
    tops = engine.quantile_tops(m, layers, paths, 200, 0.005, "imagenet", 50, torch.device("cpu"))
    thr = engine.merge_thresholds([tops], layers, 200, 0.005)
    cpu = engine.tally(m, layers, paths, thr, man, "imagenet", 50, torch.device("cpu"))
    gpu = engine.tally(m, layers, paths, thr, man, "imagenet", 50, torch.device("cuda"))
    for key in cpu:
        if "top_" not in key:
            same = np.array_equal(cpu[key], gpu[key])
            print(key, "equal" if same else f"DIFFERS by {np.abs(cpu[key].astype(float) - gpu[key].astype(float)).sum()}")
PY
CORES=16 bash benchmarks/pipeline.sh --config device=cuda
