"""Issue 14: which regions of a synthetic driving frame predict the steering target?

The causal mask marks the lane markings inside the pure-pursuit look-ahead band. A free attention
is drawn to whatever region predicts the target; if regions outside the band predict it as well
as the band does, the band is not the only place to look. For each road setting, generates the
driving data on the schema's defaults (64×128 since 2026-12-04, 40×80 when it was written; 128 training and
32 test sequences of 8 frames; with the default ``ramp_m`` 0 the ``below_ramp`` region is empty) and fits a ridge
regression (scikit-learn's RidgeCV over alphas 10^-1..10^5) from the pixels of one horizontal
region of each frame to that frame's angle, scored by R² on the test frames. Regions (from the
rows the causal mask ever touches): ``band`` (those rows), ``below`` (the rows under them: the
near road), split into ``below_ramp`` (the rows within ``RAMP`` metres of the band, where the road
still blends towards the band's cubic) and ``below_beyond_ramp`` (the independent near road),
``above`` (the rows over the band: the far road and the sky), and ``all``.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/attention_cause_regions.py --out /tmp/regions \
        [--set data.lateral_scale=3 ...]

Prints one JSON line per setting (the default and each --set, applied one at a time on top of the
schema's defaults).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from method_settings import apply_overrides, method_defaults


def region_r2(train: dict, test: dict, ramp_rows: int) -> dict:
    """Test R² of a ridge from each region's pixels (grey level, float) to the angle, and the rows;
    ``ramp_rows``: how many rows under the band the road is still blended towards the band's cubic."""
    from sklearn.linear_model import RidgeCV

    rows = np.nonzero(train["cause"].any(axis=(0, 1, 3)))[0]
    first, last = int(rows.min()), int(rows.max())
    height = train["frames"].shape[-2]
    ramp_end = last + 1 + ramp_rows
    regions = {"band": slice(first, last + 1), "below": slice(last + 1, height), "below_ramp": slice(last + 1, ramp_end),
               "below_beyond_ramp": slice(ramp_end, height), "above": slice(0, first), "all": slice(0, height)}
    out = {"band_rows": [first, last], "ramp_rows_below": [last + 1, ramp_end - 1], "height": height}

    def pixels(split, rows_slice):
        grey = split["frames"].astype(np.float32).mean(axis=2)  # (S, T, H, W)
        x = grey[:, :, rows_slice, :]
        return x.reshape(-1, x.shape[2] * x.shape[3]) / 255.0

    y_train, y_test = train["angle"].reshape(-1), test["angle"].reshape(-1)
    for name, rows_slice in regions.items():
        if rows_slice.stop <= rows_slice.start:
            out[name] = None
            continue
        model = RidgeCV(alphas=np.logspace(-1, 5, 13)).fit(pixels(train, rows_slice), y_train)
        out[name] = round(float(model.score(pixels(test, rows_slice), y_test)), 3)
    return out


def main() -> None:
    """Generate each setting's data and print the region R² per setting."""
    from cnninterp.data.driving import Camera, RoadSpec, generate_driving, load_split, row_depths

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--set", action="append", default=[], help="one setting per line of output, e.g. data.lateral_scale=3")
    args = p.parse_args()
    for change in [None, *args.set]:
        cfg = apply_overrides(method_defaults("attention", ("data",)), ([change] if change else []) + [f"seed={args.seed}"])
        d = cfg["data"]
        folder = Path(args.out) / (change or "default").replace("=", "-")
        camera = Camera(height=d["height"], width=d["width"], lookahead=d["lookahead_m"], band=d["band"])
        if not (folder / "manifest.json").exists():
            spec = RoadSpec(camera=camera, seq_len=d["seq_len"], distractors=d["distractors"], outer=d["outer_road"],
                            lateral_scale=d["lateral_scale"], pitch_px=d["pitch_px"], ramp_m=d["ramp_m"])
            generate_driving(folder, spec, d["train_sequences"], d["test_sequences"], seed=args.seed, shard_size=d["shard_size"])
        depths = row_depths(camera)
        near = camera.lookahead / camera.band
        ramp_rows = int(np.count_nonzero((depths < near) & (depths > near - d["ramp_m"]))) if d["outer_road"] else 0
        result = region_r2(load_split(folder, "train"), load_split(folder, "test"), ramp_rows)
        print(json.dumps({"setting": change or "default", "seed": args.seed, **result}), flush=True)


if __name__ == "__main__":
    main()
