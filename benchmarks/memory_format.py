"""Benchmark: the dissection forward (inference_mode, hooks on the given layers) in NCHW vs
channels-last, per architecture, alternated in one process; wall and CPU seconds per batch.

    .venv/bin/python benchmarks/memory_format.py --size 112 --batch 16
    .venv/bin/python benchmarks/memory_format.py --size 224 --batch 64 --archs resnet18 --no-grad-baseline

``--no-grad-baseline`` also times issue 17's baseline, the engine's pass before the change: the
model in NCHW under ``torch.no_grad()`` (hooks copying the maps), alternated with the others.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from cnninterp.dissect.activations import LayerCapture
from cnninterp.models.backbones import random_model

ARCHS = {"resnet10": ["layer1", "layer2", "layer3", "layer4"], "resnet18": ["layer1", "layer2", "layer3", "layer4"], "resnet50": ["layer3", "layer4"], "vgg16": ["features.29"], "alexnet": ["features.11"]}


def per_batch(capture: LayerCapture, x, repeats: int) -> tuple[float, float]:
    """Best (wall, CPU) seconds of one hooked forward over ``repeats``."""
    best = (float("inf"), float("inf"))
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        capture.run(x)
        best = min(best, (time.perf_counter() - wall, time.process_time() - cpu))
    return best


class NoGradRun:
    """The hooked forward as the engine ran it before issue 17: NCHW under ``torch.no_grad()``."""

    def __init__(self, capture: LayerCapture):
        self.capture, self.checking_run = capture, capture.run

    def __call__(self, x):
        from cnninterp.dissect.activations import _Enough

        if not self.capture._checked:
            # the first batch goes through the capture's own checking pass (the whole forward, for
            # repeat calls of an asked layer), as the engine's does; later ones stop early
            return self.checking_run(x)
        self.capture._out, self.capture._running = {}, True
        try:
            with torch.no_grad():
                self.capture.model(x)
        except _Enough:
            pass
        finally:
            self.capture._running = False
        return self.capture._out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=112)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--archs", default=",".join(ARCHS), help="comma-separated, from " + ", ".join(ARCHS))
    parser.add_argument("--no-grad-baseline", action="store_true")
    args = parser.parse_args()
    x = torch.randn(args.batch, 3, args.size, args.size)
    out = {"threads": torch.get_num_threads(), "size": args.size, "batch": args.batch}
    for arch in args.archs.split(","):
        layers = ARCHS[arch]
        times = {}
        kinds = ("no_grad", "contiguous", "channels_last") if args.no_grad_baseline else ("contiguous", "channels_last")
        for fmt in kinds * 2:
            with LayerCapture(random_model(arch, 0), layers, "contiguous" if fmt == "no_grad" else fmt) as capture:
                if fmt == "no_grad":
                    capture.run = NoGradRun(capture)
                capture.run(x)  # warm-up
                times.setdefault(fmt, []).append(per_batch(capture, x, args.repeats))
        nchw, cl = min(times["contiguous"]), min(times["channels_last"])
        out[arch] = {"nchw_s": round(nchw[0], 4), "nchw_cpu_s": round(nchw[1], 4), "channels_last_s": round(cl[0], 4), "channels_last_cpu_s": round(cl[1], 4), "speedup": round(nchw[0] / cl[0], 3)}
        if args.no_grad_baseline:
            base = min(times["no_grad"])
            out[arch].update(no_grad_nchw_s=round(base[0], 4), no_grad_nchw_cpu_s=round(base[1], 4), speedup_over_no_grad=round(base[0] / cl[0], 3))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
