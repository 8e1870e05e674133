"""Network Dissection section: per-layer tables, category charts, IoU distributions, unit gallery.

Reads ``results/dissect/<model>/summary.json`` and ``top_images.npz`` of every model in
``dissect.models`` and the Broden shards (for the gallery's images).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..dissect.labels import read_top_images
from ..errors import DataError
from . import figures
from .context import Context, DissectedModel, unpaired_text

TEMPLATE = "dissection.html.j2"
TITLE = "Network Dissection"
SUMMARY = "summary.json"
TOP_IMAGES = "top_images.npz"
DOWNLOADS = (("summary.json", "per-layer summary and unit labels (JSON)"), ("iou.parquet", "IoU of every unit and concept (Parquet)"))


def available(results: Path) -> bool:
    """True when at least one model has dissection results under ``results/dissect``."""
    return any(Path(results, "dissect").glob(f"*/{SUMMARY}"))


def render(ctx: Context) -> dict:
    """Return the template data: one entry per dissected model (DataError if a summary is missing)."""
    summaries = {m.name: ctx.require_summary(m.name) for m in ctx.models}
    order = ctx.manifest["categories"] if ctx.manifest else None
    models = []
    for model in ctx.models:
        summary = summaries[model.name]
        twin = model.control or model.control_of
        entry = {
            "name": model.name,
            "anchor": f"dissect-{model.name}",
            "source": model.source,
            "random": model.random,
            "control": model.control,
            "control_of": model.control_of,
            "settings": effective_settings(model, summary),
            "images": summary.get("images"),
            "categories": categories(summary, order),
            "layers": layer_rows(summary),
            "chance": chance_level(summary),
            "downloads": downloads(ctx, model.name),
            "iou_figure": iou_figure(ctx, model, summary, summaries.get(twin) if twin else None),
            "category_figure": None,
            "random_control_note": None,
            "unpaired": [unpaired_text(model.name, other, diffs, model.random) for other, diffs in model.mismatched],
        }
        entry["findings"] = None
        if model.control_of is None:
            control = summaries[model.control] if model.control else None
            entry["category_figure"] = category_figure(ctx, model, summary, control, entry["categories"])
            if not model.random:
                entry["findings"] = findings(summary, control, entry["categories"])
                entry["random_control_note"] = random_control_note(_arch(ctx, model.control), ctx.manifest) if model.control else None
        models.append(entry)
    galleries = unit_galleries(ctx, summaries)
    for entry in models:
        entry["gallery"] = galleries[entry["name"]]
    return {
        "models": models,
        "gallery_units": ctx.config["report"]["gallery_units"],
        "gallery_images": ctx.config["report"]["gallery_images"],
    }


def _arch(ctx: Context, name: str) -> str | None:
    """The architecture of dissected model ``name``: its train entry's ``arch`` for a ``trained:``
    source, the torchvision name otherwise."""
    source = next(m.source for m in ctx.models if m.name == name)
    kind, _, rest = source.partition(":")
    return ctx.config.get("train", {}).get(rest, {}).get("arch") if kind == "trained" else rest


# -- tables -----------------------------------------------------------------------------------


def effective_settings(model: DissectedModel, summary: dict) -> dict:
    """The settings the dissection ran with: its summary's, completed from the config."""
    keys = ("iou_threshold", "quantile", "denominator", "preprocess", "top_images")
    recorded = summary.get("settings", {})
    return {k: recorded.get(k, model.settings.get(k)) for k in keys}


def categories(summary: dict, order: list[str] | None = None) -> list[str]:
    """The concept categories of a summary, in the manifest's ``order`` where given (others last)."""
    found = []
    for layer in summary["layers"].values():
        found += [c for c in layer["detectors_per_category"] if c not in found]
    first = [c for c in order or [] if c in found]
    return first + [c for c in found if c not in first]


def layer_rows(summary: dict) -> list[dict]:
    """One table row per layer, numbers exactly as in summary.json."""
    rows = []
    for name, layer in summary["layers"].items():
        units = layer["units"]
        rows.append(
            {
                "name": name,
                "units": units,
                "detectors": layer["detectors"],
                "percent": 100.0 * layer["detectors"] / units if units else 0.0,
                "detectors_per_category": layer["detectors_per_category"],
                "unique_concepts": layer["unique_concepts"],
                "unique_concepts_per_category": layer["unique_concepts_per_category"],
                "above_chance": layer.get("detectors_above_chance"),
                "at_chance": layer.get("whole_image_detectors_at_chance"),
            }
        )
    return rows


def chance_level(summary: dict) -> dict | None:
    """The permutation null's settings (``permutations``, ``alpha``) when the summary carries its
    counts (``detectors_above_chance`` in every layer; ``dissect.chance``), else None."""
    if not summary["layers"] or not all("detectors_above_chance" in layer for layer in summary["layers"].values()):
        return None
    recorded = summary.get("settings", {})
    return {"permutations": recorded.get("chance_permutations"), "alpha": recorded.get("chance_alpha")}


def downloads(ctx: Context, model: str) -> list[dict]:
    """Links to the model's result files that exist."""
    folder = ctx.dissect_dir(model)
    return [{"href": ctx.link(folder / name), "name": f"dissect/{model}/{name}", "what": what} for name, what in DOWNLOADS if (folder / name).is_file()]


# -- the paper's findings ---------------------------------------------------------------------

#: What Bau et al. (2017) report, for the comparison beside the measured findings.
PAPER = {
    "categories": "object, part, scene, material, texture and colour detectors all occur (AlexNet, Places and ImageNet)",
    "object_part": "object and part detectors rise with depth: few in conv1-conv2, most of conv5's",
    "color_low": "colour (and texture) detectors dominate the lowest layers",
    "random": "AlexNet conv5: 97 unique detectors (distinct concepts) trained on ImageNet against 9 randomly initialised (about 1/10)",
}
HIGH_LEVEL = ("object", "part")

#: What decides a random control's count, measured on the default probe set (issue 11; see
#: ``RANDOM_CONTROL_SOURCE``). It describes a random resnet10 on that probe set only: the report shows it
#: where the control's architecture is resnet10 (``random_control_note``).
RANDOM_CONTROL = (
    "A random network's count depends on how it is normalised, not only on training: on the default "
    "probe set over three init seeds, a random resnet10 with BatchNorm's initial running statistics "
    "(the identity in eval mode; random_bn: init) has 21-23 unique detectors in layer4 (mostly textures) "
    "and 24-30 layer4 detectors above the chance level; with BatchNorm statistics re-estimated on the "
    "task images as its trained model's are (random_bn: task, the default; the same weights) 7-10 unique and 1-2 above "
    "chance; without the residual identity paths 8-11 unique; a random AlexNet's conv5 has 9 unique, "
    "the paper's random AlexNet 9."
)
#: Where ``RANDOM_CONTROL`` comes from, rendered with it.
RANDOM_CONTROL_SOURCE = ("benchmarks/default_random_control.py --seeds 1 2 3 (2026-12-03) and benchmarks/random_control_bn.py "
                         "--seeds 1 2 3 (2026-12-04); benchmarks/RESULTS.md")
#: The architecture and the probe set (the shard manifest's ``source``) it was measured on.
RANDOM_CONTROL_ARCH = "resnet10"
RANDOM_CONTROL_PROBE = {"kind": "synthetic", "n_images": 1200, "image_size": 112, "seed": 0, "val_fraction": 0.2}


def random_control_note(arch: str | None, manifest: dict | None) -> str | None:
    """``RANDOM_CONTROL`` with its source, for a random control of architecture ``arch`` (None
    for another architecture, which it does not describe); when the shard ``manifest``'s source is
    not the default probe set it was measured on, the note says so."""
    if arch != RANDOM_CONTROL_ARCH:
        return None
    text = f"{RANDOM_CONTROL} (Measured with {RANDOM_CONTROL_SOURCE}.)"
    source = (manifest or {}).get("source", {})
    if any(source.get(k) != v for k, v in RANDOM_CONTROL_PROBE.items()):
        text += " This run's probe set is not that default one, so these figures are not this run's."
    return text


def findings(summary: dict, control: dict | None, cats: list[str]) -> dict:
    """The paper's four findings measured on one trained model's summary (and its random control).

    Returns ``layers`` (per layer: name, detectors, per-category detector counts, ``object_part``
    share of detectors or None), ``categories_found`` (categories with at least one detector, of
    ``len(cats)``), ``object_part_grows`` (share in the last layer > share in the first, None when
    either layer has no detector or with one layer), ``color_by_layer`` and ``color_low_share``
    (share of all colour detectors that lie in the lower half, the first ``n // 2`` of the ``n``
    layers: the middle layer of an odd count belongs to neither half, named in ``middle_layer``;
    None without colour detectors or with one layer), ``one_layer`` (True with one layer, where
    neither trend is measurable), ``low_layers`` (the lower half's layer names), ``trained`` and
    ``random`` total detectors and ``random_ratio`` (random / trained, None without a control or
    without trained detectors). The paper's measure of the random control is unique detectors
    (distinct concepts with a detector) in the top layer (AlexNet conv5: 97 trained, 9 random):
    ``unique_layer`` (the last layer's name), ``unique_trained``, ``unique_random`` and
    ``unique_random_ratio`` (None as above); each entry of ``layers`` also has ``unique`` and
    ``random_unique`` (None without a control, or where the control lacks the layer) and
    ``random_detectors``. With the chance level of whole-image labels in the summaries
    (``dissect.chance``): ``above_chance`` and ``random_above_chance`` per layer and the totals
    ``trained_above_chance`` and ``random_above_chance``; ``unique_above_chance`` and
    ``random_unique_above_chance`` per layer and, for the top layer, ``unique_trained_above_chance``
    and ``unique_random_above_chance`` (None where a summary lacks it).
    """
    layers = []
    for name, layer in summary["layers"].items():
        per = {c: int(layer["detectors_per_category"].get(c, 0)) for c in cats}
        total = int(layer["detectors"])
        share = sum(per.get(c, 0) for c in HIGH_LEVEL) / total if total else None
        twin = control["layers"].get(name) if control else None
        layers.append(
            {
                "name": name,
                "detectors": total,
                "per_category": per,
                "object_part": share,
                "unique": int(layer["unique_concepts"]),
                "random_unique": int(twin["unique_concepts"]) if twin else None,
                "random_detectors": int(twin["detectors"]) if twin else None,
                "above_chance": layer.get("detectors_above_chance"),
                "random_above_chance": twin.get("detectors_above_chance") if twin else None,
                "unique_above_chance": layer.get("unique_concepts_above_chance"),
                "random_unique_above_chance": twin.get("unique_concepts_above_chance") if twin else None,
            }
        )
    found = [c for c in cats if any(l["per_category"][c] for l in layers)]
    one_layer = len(layers) == 1
    first, last = layers[0]["object_part"], layers[-1]["object_part"]
    color = [l["per_category"].get("color", 0) for l in layers]
    half = len(layers) // 2
    low = color[:half]
    trained = sum(l["detectors"] for l in layers)
    random = sum(int(l["detectors"]) for l in control["layers"].values()) if control else None
    top = layers[-1]
    return {
        "layers": layers,
        "categories_found": found,
        "categories_total": len(cats),
        "one_layer": one_layer,
        "object_part_grows": (last > first) if first is not None and last is not None and not one_layer else None,
        "color_by_layer": color,
        "color_low_share": sum(low) / sum(color) if sum(color) and not one_layer else None,
        "low_layers": [l["name"] for l in layers[:half]],
        "middle_layer": layers[half]["name"] if len(layers) % 2 else None,
        "trained": trained,
        "random": random,
        "random_ratio": random / trained if random is not None and trained else None,
        "unique_layer": top["name"],
        "unique_trained": top["unique"],
        "unique_random": top["random_unique"],
        "unique_random_ratio": top["random_unique"] / top["unique"] if top["random_unique"] is not None and top["unique"] else None,
        "unique_trained_above_chance": top["unique_above_chance"],
        "unique_random_above_chance": top["random_unique_above_chance"],
        "trained_above_chance": _total(l["above_chance"] for l in layers),
        "random_above_chance": _total(l["random_above_chance"] for l in layers) if control else None,
        "paper": PAPER,
    }


def _total(counts) -> int | None:
    """The sum of per-layer counts, None when a layer has none (a summary without the chance level)."""
    counts = list(counts)
    return None if not counts or any(c is None for c in counts) else int(sum(counts))


def draw_profile(fig, model: DissectedModel, summary: dict, control: dict | None, cats: list[str]) -> None:
    """Draw the per-layer category profile into ``fig`` (a figure or subfigure): detectors per
    category stacked per layer, one panel for the model and one for its random control, same scale."""
    layers = list(summary["layers"])
    panels = [(model.name, summary)] + ([(f"{model.control} (random control)", control)] if control else [])
    palette = dict(zip(cats, ("#e6a000", "#1f6fb4", "#56b4e9", "#8c564b", "#009e73", "#cc79a7", "#7f7f7f", "#bcbd22")))
    top = max([1] + [int(s["layers"][l]["detectors"]) for _, s in panels for l in layers if l in s["layers"]])
    x = np.arange(len(layers))
    axes = fig.subplots(1, len(panels), sharey=True, squeeze=False)[0]
    for ax, (title, s) in zip(axes, panels):
        bottom = np.zeros(len(layers))
        for c in cats:
            values = np.array([s["layers"][l]["detectors_per_category"].get(c, 0) if l in s["layers"] else 0 for l in layers], dtype=float)
            ax.bar(x, values, 0.7, bottom=bottom, color=palette.get(c), label=c)
            bottom += values
        for xi, total in zip(x, bottom):
            ax.text(xi, total, str(int(total)), ha="center", va="bottom", fontsize=7)
        ax.set_title(f"{title}: detectors by category")
        ax.set_xticks(x, layers)
        ax.set_ylim(0, top * 1.18)
    axes[0].set_ylabel("detectors")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside right center")


# -- charts -----------------------------------------------------------------------------------


def _image(ctx: Context, size: tuple[int, int], href: str, alt: str) -> dict:
    return {"src": href, "width": size[0], "height": size[1], "alt": alt}


def category_figure(ctx: Context, model: DissectedModel, summary: dict, control: dict | None, cats: list[str]) -> dict:
    """Two rows: the per-layer category profile (detectors stacked by category, the model beside
    its random control; see ``draw_profile``), then per layer the unique detectors per category
    (in the order ``cats``), the model's bars beside its random control's."""
    layers = list(summary["layers"])
    x = np.arange(len(cats))
    width = 0.4 if control else 0.6
    path, href = ctx.asset("figures", "dissect", model.name, "unique_detectors.png")
    with figures.chart_style():
        fig = figures.new_figure(max(5.0, 2.9 * len(layers)), 5.6)
        profile, per_layer = fig.subfigures(2, 1, height_ratios=[1.0, 1.05])
        draw_profile(profile, model, summary, control, cats)
        axes = per_layer.subplots(1, len(layers), sharey=True, squeeze=False)[0]
        for ax, layer in zip(axes, layers):
            series = [(model.name, summary["layers"][layer], figures.TRAINED_COLOR, -width / 2 if control else 0.0)]
            if control and layer in control["layers"]:
                series.append((f"{model.control} (random control)", control["layers"][layer], figures.CONTROL_COLOR, width / 2))
            for label, data, color, shift in series:
                values = [data["unique_concepts_per_category"].get(c, 0) for c in cats]
                bars = ax.bar(x + shift, values, width, color=color, label=label)
                ax.bar_label(bars, labels=[str(v) if v else "" for v in values], fontsize=7, padding=1)
            ax.set_title(layer)
            ax.set_xticks(x, cats, rotation=45, ha="right")
            ax.yaxis.get_major_locator().set_params(integer=True)
            ax.margins(y=0.15)
        axes[0].set_ylabel("unique detectors")
        handles, labels = axes[0].get_legend_handles_labels()
        per_layer.legend(handles, labels, loc="outside upper center", ncols=2)
        size = figures.save_png(fig, path)
    alt = f"detectors per category and layer, {model.name}" + (f" vs {model.control}" if control else "")
    return _image(ctx, size, href, alt)


def iou_figure(ctx: Context, model: DissectedModel, summary: dict, twin: dict | None) -> dict:
    """Histogram per layer of each unit's best IoU, the detector threshold marked (twin in grey)."""
    threshold = effective_settings(model, summary)["iou_threshold"]
    layers = list(summary["layers"])
    twin_name = model.control or model.control_of

    def best(s: dict, layer: str) -> np.ndarray:
        return np.array([u["iou"] for u in s["layers"][layer]["unit_labels"]], dtype=np.float64)

    path, href = ctx.asset("figures", "dissect", model.name, "iou_distribution.png")
    with figures.chart_style():
        fig = figures.new_figure(max(4.0, 2.9 * len(layers)), 2.5)
        axes = fig.subplots(1, len(layers), squeeze=False)[0]
        for ax, layer in zip(axes, layers):
            own = best(summary, layer)
            other = best(twin, layer) if twin and layer in twin["layers"] else None
            top = max([threshold * 2, own.max(initial=0.0)] + ([other.max(initial=0.0)] if other is not None else []))
            bins = np.linspace(0.0, top * 1.02, 31)
            ax.hist(own, bins=bins, color=figures.TRAINED_COLOR if not model.random else figures.CONTROL_COLOR, label=model.name)
            if other is not None:
                color = figures.CONTROL_COLOR if not model.random else figures.TRAINED_COLOR
                ax.hist(other, bins=bins, histtype="step", linewidth=1.2, color=color, label=twin_name)
            ax.axvline(threshold, color=figures.THRESHOLD_COLOR, linestyle="--", linewidth=1, label=f"detector threshold {threshold:g}")
            data = summary["layers"][layer]
            ax.set_title(f"{layer}: {data['detectors']}/{data['units']} detectors")
            ax.set_xlabel("best IoU of a unit")
        axes[0].set_ylabel("units")
        handles, labels = axes[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside upper center", ncols=3)
        size = figures.save_png(fig, path)
    return _image(ctx, size, href, f"distribution of the best IoU per unit, {model.name}")


# -- unit gallery -----------------------------------------------------------------------------


def select_units(unit_labels: list[dict], count: int) -> list[dict]:
    """The gallery's units: the ``count`` with the highest IoU (ties: lower unit), or all when 0."""
    if count == 0:
        return sorted(unit_labels, key=lambda u: u["unit"])
    return sorted(unit_labels, key=lambda u: (-u["iou"], u["unit"]))[:count]


def _layer_tops(tops, path: Path, layer: str) -> tuple:
    """(top keys str (U, k), top maps float32 (U, k, h, w), thresholds float32 (U,)) of ``layer``."""
    if layer not in tops.layers:
        raise DataError(f"{path} has no layer {layer!r}: it does not match summary.json; rerun the dissection")
    entry = tops.layers[layer]
    return entry.tops.keys, entry.tops.maps, entry.threshold


def gallery_plan(ctx: Context, summaries: dict) -> list[dict]:
    """Every strip to draw: model, layer, unit entry, its top image keys, maps and threshold."""
    n_units = ctx.config["report"]["gallery_units"]
    n_images = ctx.config["report"]["gallery_images"]
    plan = []
    for model in ctx.models:
        path = ctx.dissect_dir(model.name) / TOP_IMAGES
        tops = read_top_images(path)  # DataError naming the file if absent or of another layout
        for layer, data in summaries[model.name]["layers"].items():
            keys, maps, thresholds = _layer_tops(tops, path, layer)
            for unit in select_units(data["unit_labels"], n_units):
                u = unit["unit"]
                if u >= len(keys):
                    raise DataError(f"{path}: layer {layer} has {len(keys)} units, summary.json names unit {u}; rerun the dissection")
                chosen = [(str(k), maps[u, i]) for i, k in enumerate(keys[u][:n_images]) if str(k)]
                plan.append({"model": model.name, "layer": layer, "unit": unit, "keys": [k for k, _ in chosen], "maps": [m for _, m in chosen], "threshold": float(thresholds[u])})
    return plan


def read_images(shard_dir: Path, keys: set[str]) -> dict[str, np.ndarray]:
    """Return {key: uint8 (H, W, 3) image} for ``keys``, read in one pass over the shards."""
    from ..data.broden_shards import decode_sample
    from ..data.shards import iter_samples, shard_paths

    found: dict[str, np.ndarray] = {}
    if not keys:
        return found
    for raw in iter_samples(shard_paths(shard_dir)):
        if raw["__key__"] in keys:
            found[raw["__key__"]] = decode_sample(raw)["image"]
            if len(found) == len(keys):
                break
    missing = sorted(keys - set(found))
    if missing:
        raise DataError(f"images {', '.join(missing[:5])} (top images of the dissection) are not in the shards under {shard_dir}; were the shards rebuilt after dissecting? rerun the dissection")
    return found


def unit_galleries(ctx: Context, summaries: dict) -> dict[str, list[dict]]:
    """Draw one strip per gallery unit; return {model: [{layer, units: [...]}, ...]}."""
    from tqdm import tqdm

    plan = gallery_plan(ctx, summaries)
    images = read_images(ctx.shard_dir, {k for item in plan for k in item["keys"]})
    out: dict[str, list[dict]] = {m.name: [] for m in ctx.models}
    for item in tqdm(plan, desc="report gallery", unit="unit", mininterval=2, disable=None):
        unit = item["unit"]
        layers = out[item["model"]]
        if not layers or layers[-1]["layer"] != item["layer"]:
            layers.append({"layer": item["layer"], "units": []})
        path, href = ctx.asset("figures", "dissect", item["model"], item["layer"], f"unit_{unit['unit']:04d}.png")
        strip = figures.unit_strip([images[k] for k in item["keys"]], item["maps"], item["threshold"])
        size = figures.save_rgb_png(strip, path)
        alt = f"{item['model']} {item['layer']} unit {unit['unit']}: top images, activation above threshold outlined"
        layers[-1]["units"].append(
            {
                "unit": unit["unit"],
                "label": unit["label"],
                "category": unit["category"],
                "iou": unit["iou"],
                "detector": unit["detector"],
                "image_keys": item["keys"],
                "image": _image(ctx, size, href, alt),
            }
        )
    return out
