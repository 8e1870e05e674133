"""DLT timing: shifted inverse iteration against batched SVD on the same inputs, in the same process.

Inputs: ``batch × joints`` random points in a 2 m cube around the rig's target, seen by the
multiview dataset's 4-camera ring, projected, with Gaussian pixel noise of ``noise_px``; in
``dtype`` (by default ``model.TRIANGULATION_DTYPE``, float64, what training and evaluation triangulate
in: float32 timings, recorded before 2026-12-03, gave a speed-up of 8.7x against 3.8x in float64) on ``device``. Times are the best of ``repeat`` runs (CUDA synchronised).
"""

from __future__ import annotations

import time


def _best(fn, repeat: int, sync) -> tuple[float, float]:
    walls, cpus = [], []
    for _ in range(repeat):
        sync()
        w, c = time.perf_counter(), time.process_time()
        fn()
        sync()
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return 1000 * min(walls), 1000 * min(cpus)


def time_dlt(batch: int = 512, joints: int = 17, noise_px=(0.0, 1.0, 3.0), repeat: int = 10, device: str = "cpu",
             seed: int = 0, dtype: str | None = None) -> dict:
    """Per noise level (key: the noise as text, e.g. "1"): sii_ms, svd_ms (best wall), sii_cpu_ms, svd_cpu_ms,
    speedup (svd/sii wall), max_abs_diff_mm between the two solutions, and both solvers' mean error in mm."""
    import torch

    from ..data.multiview import ring_cameras
    from .dlt import project, triangulate_sii, triangulate_svd
    from .model import TRIANGULATION_DTYPE

    dt = getattr(torch, dtype or TRIANGULATION_DTYPE)

    dev = torch.device(device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    g = torch.Generator().manual_seed(seed)
    n = batch * joints
    X = (torch.rand(n, 3, generator=g, dtype=torch.float64) - 0.5) * 2000.0
    X[:, 2] += 900.0
    P = torch.from_numpy(ring_cameras()).expand(n, -1, -1, -1)
    uv0 = project(P, X)
    out = {}
    for px in noise_px:
        uv = (uv0 + px * torch.randn(uv0.shape, generator=g, dtype=uv0.dtype)).to(dt).to(dev)
        Pf = P.to(dt).to(dev)
        sii_ms, sii_cpu = _best(lambda: triangulate_sii(Pf, uv), repeat, sync)
        svd_ms, svd_cpu = _best(lambda: triangulate_svd(Pf, uv), repeat, sync)
        a, b = triangulate_sii(Pf, uv).double().cpu(), triangulate_svd(Pf, uv).double().cpu()
        out[f"{px:g}"] = {"sii_ms": sii_ms, "svd_ms": svd_ms, "sii_cpu_ms": sii_cpu, "svd_cpu_ms": svd_cpu,
                          "speedup": svd_ms / sii_ms, "max_abs_diff_mm": float((a - b).abs().max()),
                          "sii_error_mm": float((a - X).norm(dim=-1).mean()), "svd_error_mm": float((b - X).norm(dim=-1).mean())}
    return out
