"""Overview section: what was run (models, layers, dataset) and the headline numbers."""

from __future__ import annotations

from pathlib import Path

from .context import Context, DissectedModel, read_json, unpaired_text

TEMPLATE = "overview.html.j2"
TITLE = "Overview"


def available(results: Path) -> bool:
    """Always shown: it describes the config even before any result exists."""
    return True


def render(ctx: Context) -> dict:
    """Return the template data: dataset, trained models and dissected models with their detectors."""
    return {
        "dataset": dataset(ctx.manifest) if ctx.manifest else None,
        "trained": trained_models(ctx),
        "models": [dissected_model(ctx, m) for m in ctx.models],
        "detection_limits": detection_limits(ctx),
    }


def detection_limits(ctx: Context) -> list[dict]:
    """Per distinct (quantile q, IoU threshold t) of the dissected models: ``quantile``,
    ``iou_threshold``, ``max_coverage`` = q / t (a fraction) and the ``models`` using it.

    A unit thresholded at its top-q activation quantile is active on about a share q of the pixels
    of the images it is scored on, so its IoU with a concept covering a share c > q of them is at
    most about q / c (intersection at most the unit's area, union at least the concept's); it can
    pass the threshold t only when c < q / t."""
    limits: dict[tuple, list[str]] = {}
    for model in ctx.models:
        summary = ctx.summary(model.name)
        recorded = summary.get("settings", {}) if summary else {}
        q = recorded.get("quantile", model.settings.get("quantile"))
        t = recorded.get("iou_threshold", model.settings.get("iou_threshold"))
        if q is not None and t:
            limits.setdefault((float(q), float(t)), []).append(model.name)
    return [{"quantile": q, "iou_threshold": t, "max_coverage": q / t, "models": names} for (q, t), names in limits.items()]


def dataset(manifest: dict) -> dict:
    """Figures of the shard manifest: splits, labels per category, source, and each category's
    concept coverage (images annotated; min, median, max share of their pixels) where recorded."""
    cats = list(manifest["categories"])
    coverage = manifest.get("coverage", {})
    labels = manifest["labels"]
    source = manifest.get("source", {})
    splits = [{"name": name, "samples": s["samples"], "shards": len(s["shards"])} for name, s in manifest["splits"].items()]
    return {
        "name": manifest.get("dataset", "broden"),
        "source_kind": source.get("kind", "unknown"),
        "source_detail": {k: v for k, v in source.items() if k in ("url", "path", "sha256")},
        "content_sha256": source.get("content_sha256"),
        "splits": splits,
        "images": sum(s["samples"] for s in splits),
        "has_coverage": bool(coverage),
        "labels": len(labels),
        "categories": [
            {
                "name": c,
                "labels": sum(c in lab["categories"] for lab in labels),
                "primary": sum(lab["primary"] == c for lab in labels),
                "coverage": _coverage_row(coverage.get(c)),
            }
            for c in cats
        ],
    }


def _coverage_row(entry: dict | None) -> dict | None:
    """The coverage figures of one category (shares as fractions), or None if not recorded."""
    if not entry or "min" not in entry:
        return None
    keys = ("images", "concepts", "min", "median", "max", "min_label", "max_label")
    return {k: entry[k] for k in keys}


def trained_models(ctx: Context) -> list[dict]:
    """The ``train`` entries, with their validation accuracy when the model has been trained.

    Settings are the trained model's own (its config.json), so they always belong to the accuracy
    beside them; ``stale`` lists the settings the config now asks for otherwise (a model not in
    this run's DAG is not retrained, so its file can be older than the config)."""
    out = []
    for name, spec in ctx.config.get("train", {}).items():
        info_path = ctx.results / "models" / name / "config.json"
        info = read_json(info_path, f"config of trained model {name!r}") if info_path.is_file() else {}
        used = info.get("config", {})
        stale = sorted(k for k, v in used.items() if k in spec and spec[k] != v)
        out.append(
            {
                "name": name,
                "arch": used.get("arch", spec["arch"]),
                "task": used.get("task", spec["task"]),
                "data": spec.get("data", "probe"),
                "epochs": used.get("epochs", spec.get("epochs")),
                "classes": info.get("num_classes"),
                "val_accuracy": info.get("summary", {}).get("val_accuracy"),
                "stale": stale,
            }
        )
    return out


def _arch(ctx: Context, model: DissectedModel) -> str:
    kind, _, name = model.source.partition(":")
    return ctx.config["train"][name]["arch"] if kind == "trained" else name


def dissected_model(ctx: Context, model: DissectedModel) -> dict:
    """One row of the models table; ``layers`` holds detectors/units once the summary exists."""
    summary = ctx.summary(model.name)
    layers = [{"name": layer, "units": s["units"], "detectors": s["detectors"]} for layer, s in summary["layers"].items()] if summary else None
    if model.control_of:
        role = f"random control of {model.control_of}"
        if model.settings.get("random_bn") == "task":
            role += " (BatchNorm statistics estimated on its training images, as the trained model's)"
    elif model.random:
        role = "random initialisation"
    elif model.source.startswith("trained:"):
        role = "trained"
    elif model.settings.get("weights"):
        role = f"pretrained weights ({model.settings['weights']})"
    elif model.settings.get("checkpoint"):
        role = f"pretrained weights (checkpoint {model.settings['checkpoint']})"
    else:
        role = "pretrained weights"
    return {
        "name": model.name,
        "anchor": f"dissect-{model.name}",
        "source": model.source,
        "arch": _arch(ctx, model),
        "role": role,
        "unpaired": [unpaired_text(model.name, other, diffs, model.random) for other, diffs in model.mismatched],
        "layer_names": list(summary["layers"]) if summary else list(model.settings["layers"]),
        "images": summary.get("images") if summary else None,
        "layers": layers,
        "detectors_total": sum(s["detectors"] for s in layers) if layers else None,
        "units_total": sum(s["units"] for s in layers) if layers else None,
    }
