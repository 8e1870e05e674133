"""Evaluation of the three steering models on the held-out sequences: ``metrics.json`` and figure data.

Keys of metrics.json (top level):
- ``mae``: {attention, attention_no_reg, cnn}: mean |û − u| in radians over all test frames;
- ``attention_on_cause``: {mass, area_share, ratio} of the attention model (λ > 0), and
  ``attention_on_cause_by_model`` for both attention models (see ``causal.attention_on_cause``);
- ``causal_filtering``: {precision, recall, blobs, kept, causal}: over the blobs of the first
  ``filter_sequences`` test sequences; a blob is causal when more than half of its pixels lie in
  the causal mask dilated by ``cause_dilation`` pixels (the blobs are as coarse as a feature cell,
  the markings one or two pixels wide);
- ``attention_placement_by_model``: per attention model, the attention's preference for the
  causal region's depth (``band_rows`` ratio) and whether it follows the markings sideways
  (``column_correlation``), see ``causal.attention_placement``;
- ``attention_use``: per attention model, how far from uniform its attention is and the MAE with
  the attention replaced by uniform weights (``attention_use``);
- ``gradient_on_cause_by_model``: per model, {mass, area_share, ratio} of the input gradient
  |∂ Σ_t û_t / ∂ pixel| on the causal pixels (``saliency.gradient_on_cause``): whether the
  decision is driven by the cause, wherever the attention lies (beside the issue's ``ratio``);
- ``deletion``: {cause, distractor} of the attention model, and ``deletion_by_model``: mean
  |Δû| (radians) when the causal pixels, or as many distractor pixels (drawn at random; all of them
  where there are fewer), are replaced by the frame's mean colour in every frame of a sequence.
Figure data beside it: ``strip.npy`` (one test sequence over the attention overlaid on it) and
``blobs.npy`` (blobs kept and dropped), both uint8 (rows, ``figure_frames`` · W, 3), the frames
side by side.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

MODELS = ("attention", "attention_no_reg", "cnn")


def predict(model, ckpt: dict, frames: np.ndarray, batch: int = 32) -> dict[str, np.ndarray]:
    """pred float64 (S, T) radians, alpha float32 (S, T, L) where the model has attention."""
    import torch

    from .train import to_input

    preds, alphas = [], []
    with torch.no_grad():
        for s in range(0, len(frames), batch):
            out = model(to_input(frames[s : s + batch]))
            preds.append(out["pred"].double().numpy() * ckpt["target_std"] + ckpt["target_mean"])
            if "alpha" in out:
                alphas.append(out["alpha"].numpy())
    result = {"pred": np.concatenate(preds)}
    if alphas:
        result["alpha"] = np.concatenate(alphas)
    return result


def attention_use(model, ckpt: dict, frames: np.ndarray, angle: np.ndarray, alpha: np.ndarray) -> dict:
    """Whether an attention model's attention matters: {entropy (of α per step, divided by log L; 1 =
    uniform), peak (mean max α · L; 1 = uniform), mae_uniform (steering MAE, radians, with α replaced
    by 1/L)}. frames uint8 (S, T, 3, H, W), angle float (S, T), alpha float (S, T, L)."""
    import torch

    from .train import to_input

    length = alpha.shape[-1]
    entropy = float((-(alpha * np.log(np.clip(alpha, 1e-12, None))).sum(-1)).mean() / np.log(length))
    preds = []
    with torch.no_grad():
        for s in range(0, len(frames), 32):
            feats = model(to_input(frames[s : s + 32]))["features"]
            preds.append(model.decode(feats, uniform=True)[0].double().numpy())
    pred = np.concatenate(preds) * ckpt["target_std"] + ckpt["target_mean"]
    return {"entropy": entropy, "peak": float(alpha.max(-1).mean() * length), "mae_uniform": float(np.abs(pred - angle).mean())}


def masked_frames(frames: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """frames uint8 (S, T, 3, H, W) with the pixels of mask bool (S, T, H, W) set to each frame's mean colour."""
    out = frames.copy()
    mean = frames.reshape(*frames.shape[:3], -1).mean(-1).round().astype(np.uint8)  # (S, T, 3)
    s, t, y, x = np.nonzero(mask)
    out[s, t, :, y, x] = mean[s, t]
    return out


def distractor_sample(cause: np.ndarray, distractor: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """bool (S, T, H, W): per frame, as many distractor pixels as causal pixels, drawn at random."""
    out = np.zeros(cause.shape, bool)
    for s in range(cause.shape[0]):
        for t in range(cause.shape[1]):
            idx = np.flatnonzero(distractor[s, t])
            k = min(int(cause[s, t].sum()), idx.size)
            if k:
                out[s, t].flat[rng.choice(idx, k, replace=False)] = True
    return out


SATURATE = 4.0  # the overlay is brightest where the attention is this many times its uniform value


def overlay(frame: np.ndarray, heat: np.ndarray) -> np.ndarray:
    """frame uint8 (3, H, W), heat float (H, W) (a distribution over pixels) -> uint8 (H, W, 3): the
    frame darkened, heat in red/yellow on a fixed scale (uniform attention at 1/SATURATE of full), so
    that a flat map looks flat rather than stretched to its maximum."""
    img = frame.transpose(1, 2, 0).astype(np.float32) * 0.45
    h = np.clip(heat * heat.size / SATURATE, 0.0, 1.0)
    img[..., 0] += 255 * 0.55 * np.sqrt(h)
    img[..., 1] += 255 * 0.55 * h**2
    return np.clip(img, 0, 255).astype(np.uint8)


def blob_figure(frames: np.ndarray, blobs, frames_shown: int) -> np.ndarray:
    """uint8 (H, W·n, 3): each frame with kept blobs outlined green and dropped ones red."""
    from scipy.ndimage import binary_erosion

    tiles = []
    for t in range(min(frames_shown, len(frames))):
        img = frames[t].transpose(1, 2, 0).copy()
        for b in blobs:
            if b.frame == t:
                edge = b.pixels & ~binary_erosion(b.pixels)
                img[edge] = (40, 230, 40) if b.kept else (230, 30, 30)
        tiles.append(img)
    return np.concatenate(tiles, axis=1)


def evaluate(shards: str | Path, models: dict[str, str | Path], out: str | Path, filter_sequences: int = 8,
             level: float = 0.5, sigma: float = 2.0, threshold: float = 0.1, cause_dilation: int = 3,
             strip_frames: int = 8, seed: int = 0, train_shards: str | Path | None = None) -> dict:
    """Write metrics.json (keys in the module docstring) and the figure data; return the metrics.

    ``shards`` holds the test split; ``train_shards`` (default ``shards``) the training split the
    models were trained on: each model's recorded manifest sha256 must be that folder's, and the
    two folders' splits must have been drawn with the same settings (``driving.check_same_draw``),
    else DataError and nothing is written. ``models`` maps each of MODELS to its model.pt.
    ``threshold`` is in units of the attention model's target standard deviation (its decoder's
    output units).
    """
    import torch
    from scipy.ndimage import binary_dilation

    from ..atomic import atomic_path, write_json
    from ..data.driving import check_same_draw, load_split
    from ..data.shards import read_manifest
    from ..errors import DataError
    from .saliency import gradient_on_cause
    from .causal import attention_maps, attention_on_cause, attention_placement, blob_scores, causal_filter
    from ..data.trained_on import check_trained_on
    from .train import load_model, to_input

    train_shards = shards if train_shards is None else train_shards
    manifest = read_manifest(shards)
    check_same_draw(train_shards, shards)
    test = load_split(shards, "test")
    frames, angle = test["frames"], test["angle"].astype(np.float64)
    has_cause = bool(manifest.get("has_cause")) and "cause" in test
    loaded = {name: load_model(models[name]) for name in MODELS}
    for name, (_, ckpt) in loaded.items():  # held-out figures only of models trained on these shards
        check_trained_on(ckpt["config"], models[name], train_shards, lambda c, spec=ckpt["spec"]: [
            ("frame size", [spec["height"], spec["width"]], [manifest["height"], manifest["width"]])])
    outputs = {name: predict(m, ck, frames) for name, (m, ck) in loaded.items()}
    metrics: dict = {"mae": {n: float(np.abs(o["pred"] - angle).mean()) for n, o in outputs.items()},
                     "mae_predicting_the_mean": float(np.abs(angle - loaded["cnn"][1]["target_mean"]).mean()),
                     "test_sequences": int(len(frames)), "test_frames": int(angle.size), "has_cause": has_cause,
                     "filter": {"level": level, "sigma": sigma, "threshold": threshold, "cause_dilation": cause_dilation}}
    metrics["attention_use"] = {name: attention_use(*loaded[name], frames, angle, outputs[name]["alpha"])
                                for name in ("attention", "attention_no_reg")}
    model, ckpt = loaded["attention"]
    grid = model.spec.grid
    size = frames.shape[-2:]
    if has_cause:
        cause = test["cause"].astype(bool)
        by_model, placement = {}, {}
        for name in ("attention", "attention_no_reg"):
            a = outputs[name]["alpha"]
            by_model[name] = attention_on_cause(a.reshape(-1, a.shape[-1]), cause.reshape(-1, *size), grid)
            placement[name] = attention_placement(a.reshape(-1, a.shape[-1]), cause.reshape(-1, *size), grid)
        metrics["attention_placement_by_model"] = placement
        metrics["attention_on_cause"] = by_model["attention"]
        metrics["attention_on_cause_by_model"] = by_model
        metrics["gradient_on_cause_by_model"] = {name: gradient_on_cause(m, frames, cause) for name, (m, _) in loaded.items()}
        rng = np.random.default_rng(seed)
        other = distractor_sample(cause, test["distractor"].astype(bool), rng)
        deletion = {}
        for name, (m, ck) in loaded.items():
            base = outputs[name]["pred"]
            deletion[name] = {
                "cause": float(np.abs(predict(m, ck, masked_frames(frames, cause))["pred"] - base).mean()),
                "distractor": float(np.abs(predict(m, ck, masked_frames(frames, other))["pred"] - base).mean()),
            }
        metrics["deletion"] = deletion["attention"]
        metrics["deletion_by_model"] = deletion
        metrics["deleted_pixels"] = {"cause": int(cause.sum()), "distractor": int(other.sum())}
    # causal filtering on the attention model's feature cubes
    n = min(filter_sequences, len(frames))
    all_blobs, totals = [], np.zeros(3, int)
    decode = lambda f: model.decode(f)[0]  # noqa: E731 (standardised output units)
    with torch.no_grad():
        for s in range(n):
            feats = model(to_input(frames[s : s + 1]))["features"][0]
            blobs = causal_filter(feats, decode, outputs["attention"]["alpha"][s], grid, size, level=level, sigma=sigma, threshold=threshold)
            all_blobs.append(blobs)
            if has_cause:
                region = np.stack([binary_dilation(c, iterations=cause_dilation) if cause_dilation else c for c in cause[s]])
                totals += blob_scores(blobs, region)
    kept_causal, kept, causal = (int(v) for v in totals)
    count = sum(len(b) for b in all_blobs)
    metrics["causal_filtering"] = {
        "blobs": count, "kept": int(sum(b.kept for bl in all_blobs for b in bl)), "sequences": n,
        "mean_delta": float(np.mean([b.delta for bl in all_blobs for b in bl])) if count else float("nan"),
    }
    if has_cause:
        metrics["causal_filtering"].update(
            causal=causal, precision=kept_causal / kept if kept else float("nan"),
            recall=kept_causal / causal if causal else float("nan"),
            precision_if_all_kept=causal / count if count else float("nan"))
    if n == 0:
        raise DataError(f"{shards}: the test split holds no sequences")
    out = Path(out)
    maps = attention_maps(outputs["attention"]["alpha"][0], grid, size, sigma)
    strip = np.concatenate([overlay(frames[0, t], maps[t]) for t in range(min(strip_frames, frames.shape[1]))], axis=1)
    strip = np.concatenate([np.concatenate([frames[0, t].transpose(1, 2, 0) for t in range(min(strip_frames, frames.shape[1]))], axis=1), strip], axis=0)
    for name, array in (("strip.npy", strip), ("blobs.npy", blob_figure(frames[0], all_blobs[0], strip_frames))):
        with atomic_path(out.with_name(name)) as tmp:
            with open(tmp, "wb") as handle:
                np.save(handle, array, allow_pickle=False)
    metrics["figure_frames"] = int(min(strip_frames, frames.shape[1]))
    metrics = _finite(metrics)
    write_json(out, metrics)
    return metrics


def _finite(value):
    """NaN -> None, recursively (JSON has no NaN)."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value
