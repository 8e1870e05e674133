"""Where the filters of both networks fire on the synthetic objects, in the object's own frame.

Trains both networks on the default settings (one seed, as ``icnn_effect.py`` does, data kept under
``--root``), then per filter over its top test objects: the part mask under the peak (pixel and 4×4
cell), and the peak's mean offset from the body landmark in the object frame: ``u`` along body → head,
``v`` along the body → legs direction (perpendicular to u, towards the legs' midpoint), both in units of
‖head − body‖. Prints one JSON line per network and a summary.

    .venv/bin/python benchmarks/icnn_filter_parts.py --seed 0 --root /tmp/icnn_fp
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def object_frame(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """landmarks float (N, 5, 2) in PARTS order -> origin (body) (N, 2), unit u (body→head) (N, 2),
    unit v (N, 2) perpendicular to u on the legs' side; and the scale ‖head − body‖ as the 4th value."""
    head, body, legs = landmarks[:, 0], landmarks[:, 1], landmarks[:, 3:5].mean(axis=1)
    d = head - body
    scale = np.linalg.norm(d, axis=1)
    u = d / scale[:, None]
    v = np.stack([-u[:, 1], u[:, 0]], axis=1)
    v *= np.sign(((legs - body) * v).sum(axis=1))[:, None]
    return body, u, v, scale


def main() -> None:
    import torch

    from cnninterp.data.parts import PARTS, load_split
    from cnninterp.icnn.evaluate import forward
    from cnninterp.icnn.locate import filter_instability, peak_parts
    from cnninterp.icnn.train import load_net

    sys_path = Path(__file__).resolve().parent
    import sys

    sys.path.insert(0, str(sys_path))
    from icnn_effect import SECTIONS, run
    from method_settings import settings_parser, apply_overrides, method_defaults

    parser = settings_parser(__doc__)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--root", required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    root = Path(args.root)
    if not (root / "eval/metrics.json").is_file():
        print(json.dumps(run(apply_overrides(method_defaults("icnn", SECTIONS), args.set), args.seed, root)))
    test = load_split(root / "parts", "test")
    size = test["images"].shape[1]
    objects = test["labels"] == 1
    body, u, v, scale = object_frame(test["landmarks"].astype(np.float64))
    for kind in ("icnn", "cnn"):
        model, _ = load_net(root / kind / "model.pt")
        _, maps = forward(model, test["images"])
        inst = filter_instability(maps, test["landmarks"], test["visible"], objects, size, 100, best=len(PARTS))
        pix = peak_parts(inst["inferred"], inst["chosen"], test["seg"], len(PARTS))
        rel = inst["inferred"] - body[inst["chosen"]]  # (F, M, 2)
        fu = (rel * u[inst["chosen"]]).sum(-1) / scale[inst["chosen"]]
        fv = (rel * v[inst["chosen"]]).sum(-1) / scale[inst["chosen"]]
        # the 4x4 cell under the peak: its most frequent label
        n = maps.shape[2]
        stride = size // n
        cells = []
        for f in range(maps.shape[1]):
            labs = []
            for m, (x, y) in zip(inst["chosen"][f], inst["inferred"][f]):
                c, r = int(x // stride), int(y // stride)
                block = test["seg"][m, r * stride : (r + 1) * stride, c * stride : (c + 1) * stride].ravel()
                labs.append(np.bincount(block, minlength=len(PARTS) + 1).argmax())
            cells.append(np.bincount(labs, minlength=len(PARTS) + 1))
        names = ["none", *PARTS]
        per = [{"filter": f, "u": round(float(fu[f].mean()), 2), "v": round(float(fv[f].mean()), 2),
                "u_sd": round(float(fu[f].std()), 2), "v_sd": round(float(fv[f].std()), 2),
                "pixel": {names[k]: int(c) for k, c in enumerate(pix["counts"][f]) if c},
                "cell": {names[k]: int(c) for k, c in enumerate(cells[f]) if c}} for f in range(maps.shape[1])]
        print(json.dumps({"network": kind, "filters": per}))
        print(f"{kind}: mean offset from body in the object frame u={fu.mean():.2f} v={fv.mean():.2f} (head at u=1); "
              f"peak pixel on a part in {(pix['counts'][:, 1:].sum() / pix['counts'].sum()):.2f} of top images")


if __name__ == "__main__":
    main()
