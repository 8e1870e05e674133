"""DLT timing: shifted inverse iteration vs batched SVD, same inputs, same process.

Usage: python benchmarks/dlt.py [--batch 512] [--joints 17] [--repeat 20] [--device cpu]
Prints per noise level (0, 1, 3 px): best wall ms and CPU ms of each solver, speedup, and the
max abs difference in mm between the two solutions (float32, 4 ring cameras).
"""

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow"))


def best(fn, repeat, sync):
    walls, cpus = [], []
    for _ in range(repeat):
        sync(); w, c = time.perf_counter(), time.process_time()
        fn(); sync()
        walls.append(time.perf_counter() - w); cpus.append(time.process_time() - c)
    return 1000 * min(walls), 1000 * min(cpus)


def main():
    import torch
    from cnninterp.multiview.dlt import project, triangulate_sii, triangulate_svd
    from cnninterp.data.multiview import ring_cameras

    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=512); ap.add_argument("--joints", type=int, default=17)
    ap.add_argument("--repeat", type=int, default=20); ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    dev = torch.device(a.device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    g = torch.Generator().manual_seed(0)
    n = a.batch * a.joints
    X = (torch.rand(n, 3, generator=g, dtype=torch.float64) - 0.5) * 2000.0
    P = torch.from_numpy(ring_cameras()).expand(n, -1, -1, -1)
    uv0 = project(P, X)
    for px in (0, 1, 3):
        uv = (uv0 + px * torch.randn(uv0.shape, generator=g, dtype=uv0.dtype)).float().to(dev)
        Pf = P.float().to(dev)
        sii_ms, sii_cpu = best(lambda: triangulate_sii(Pf, uv), a.repeat, sync)
        svd_ms, svd_cpu = best(lambda: triangulate_svd(Pf, uv), a.repeat, sync)
        diff = (triangulate_sii(Pf, uv) - triangulate_svd(Pf, uv)).abs().max().item()
        print(f"noise {px} px: sii {sii_ms:.2f} ms (cpu {sii_cpu:.2f}) svd {svd_ms:.2f} ms (cpu {svd_cpu:.2f}) "
              f"speedup {svd_ms / sii_ms:.1f}x max_abs_diff {diff:.4f} mm")


if __name__ == "__main__":
    main()
