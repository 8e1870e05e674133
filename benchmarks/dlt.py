"""DLT timing: shifted inverse iteration vs batched SVD, same inputs, same process.

Usage: python benchmarks/dlt.py [--batch 512] [--joints 17] [--repeat 20] [--device cpu] [--threads 1]
Prints per noise level (0, 1, 3 px): best wall ms and CPU ms of each solver, speedup, the max abs
difference in mm between the two solutions and each one's mean error against the truth (float32,
the multiview dataset's 4-camera ring). The measurement is ``cnninterp.multiview.timing.time_dlt``,
the same one ``cnninterp multiview evaluate`` writes into metrics.json.
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow"))


def main():
    import torch

    from cnninterp.multiview.timing import time_dlt

    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--joints", type=int, default=17)
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    for px, r in time_dlt(a.batch, a.joints, repeat=a.repeat, device=a.device).items():
        print(f"noise {px} px: sii {r['sii_ms']:.2f} ms (cpu {r['sii_cpu_ms']:.2f}) svd {r['svd_ms']:.2f} ms "
              f"(cpu {r['svd_cpu_ms']:.2f}) speedup {r['speedup']:.1f}x max_abs_diff {r['max_abs_diff_mm']:.4f} mm "
              f"error sii {r['sii_error_mm']:.2f} svd {r['svd_error_mm']:.2f} mm")


if __name__ == "__main__":
    main()
