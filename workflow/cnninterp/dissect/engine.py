"""Run Network Dissection's stages over Broden shards: quantiles, thresholds, tally, gather.

Each stage reads and writes ``.npz`` files of named arrays (``<layer>|<what>``), so stages can run
as separate per-shard jobs and be merged, or all at once through ``dissect``.
"""

from __future__ import annotations

import logging
from contextlib import closing, nullcontext
from pathlib import Path

import numpy as np

from ..atomic import atomic_path
from ..data.shards import read_manifest
from ..errors import DataError
from . import candidates as cand
from .activations import activation_batches, collate
from .cache import keep_for_tally, open_cache, read_cache
from .quantiles import TopKeeper, threshold_from_top, top_count
from .tally import LayerTally, make_label_batch

log = logging.getLogger(__name__)


def vocabulary(manifest: dict) -> dict:
    """Return the label vocabulary of a shard manifest.

    Keys: ``num_labels`` (max label number + 1), ``categories`` (names), ``primary`` int64
    (num_labels,) primary category index per label number (-1 for 0 and unused numbers),
    ``names`` (num_labels,) object array of label names ('' where unused).
    """
    categories = list(manifest["categories"])
    num_labels = max(lab["number"] for lab in manifest["labels"]) + 1
    primary = np.full(num_labels, -1, dtype=np.int64)
    names = np.array([""] * num_labels, dtype=object)
    for lab in manifest["labels"]:
        if lab["primary"] not in categories:
            raise DataError(f"manifest label {lab['number']} has primary category {lab['primary']!r}, not one of {categories}")
        primary[lab["number"]] = categories.index(lab["primary"])
        names[lab["number"]] = lab["name"]
    return {"num_labels": num_labels, "categories": categories, "primary": primary, "names": names}


def save_arrays(path: str | Path, arrays: dict) -> None:
    """Atomically write named numpy arrays to an uncompressed ``.npz`` file."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.savez(handle, **arrays)


def load_arrays(path: str | Path) -> dict:
    """Read an ``.npz`` written by ``save_arrays`` into a dict; DataError naming the file if unreadable."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except FileNotFoundError:
        raise DataError(f"{path} is missing") from None
    except Exception as err:
        raise DataError(f"{path} is not a readable .npz file: {err}") from None


def quantile_tops(model, layers: list[str], paths, total_images: int, q: float, preset: str, batch_size: int, device, top_images: int = 8, cache: str | Path | None = None, memory_format: str = "auto") -> dict:
    """The first pass: stream shards through ``model``, keep each unit's top-m activations per
    layer and its top-activating images, and (with ``cache``, a file path) what the tally needs.

    ``total_images`` is the image count of the whole dataset (all shards of all jobs), which fixes
    m. Returns arrays ``<layer>|top`` float32 (U, <=m) (each unit's largest, unordered), ``<layer>|hw`` (h, w),
    the top images (see ``TopImages``) and ``images`` (images read here).
    """
    keepers: dict[str, TopKeeper] = {}
    shapes: dict[str, tuple] = {}
    tops = {name: TopImages(top_images) for name in layers}
    images = 0
    stream = activation_batches(model, layers, paths, preset, batch_size, device, desc="quantiles", memory_format=memory_format)
    with closing(stream), (open_cache(cache) if cache else nullcontext()) as writer:
        for batch, acts in stream:
            kept = {}
            for name, a in acts.items():
                if name not in keepers:
                    shapes[name] = tuple(a.shape[2:])
                    keepers[name] = TopKeeper(top_count(total_images * a.shape[2] * a.shape[3], q))
                tops[name].add(a, batch["keys"], a.amax(dim=(2, 3)))
                found = _update_tops(keepers[name], a, want=writer is not None)
                if writer is not None:
                    kept[name] = keep_for_tally(a, found)
            if writer is not None:
                writer.write(batch["keys"], kept)
            images += len(batch["keys"])
        if images == 0:
            raise DataError(f"no images in {', '.join(map(str, paths))}")
    out = {"images": np.array(images)}
    for name, keeper in keepers.items():
        out[f"{name}|top"] = keeper.result()
        out[f"{name}|hw"] = np.array(shapes[name])
        out.update(tops[name].arrays(name))
    return out


def _update_tops(keeper: TopKeeper, acts, want: bool):
    """Add a batch to ``keeper``; return the batch's pixels >= its floor after the batch
    (``candidates.Located``), or None when there is no floor yet or ``want`` is false."""
    found = keeper.add(acts)
    if not want or keeper.floor is None:
        return None
    floor = keeper.floor.to(acts.device)
    if found is None:  # the floor appeared with this batch: every pixel was offered
        return cand.locate(acts, floor)
    return found.select(found.values >= floor[found.coord(1)])


def merge_thresholds(parts: list[dict], layers: list[str], total_images: int, q: float) -> dict:
    """Merge per-shard top-m sets into exact thresholds.

    Returns ``<layer>|threshold`` float32 (U,), ``<layer>|hw`` and the merged top images per layer,
    plus ``images`` and ``quantile``.
    DataError if the parts do not cover exactly ``total_images`` images.
    """
    import torch

    seen = sum(int(p["images"]) for p in parts)
    if seen != total_images:
        raise DataError(f"quantile parts cover {seen} images, the shards hold {total_images}: a shard is missing or repeated")
    out = {"images": np.array(total_images), "quantile": np.array(q)}
    for name in layers:
        hw = parts[0][f"{name}|hw"]
        n = total_images * int(hw[0]) * int(hw[1])
        m = top_count(n, q)
        top = torch.from_numpy(parts[0][f"{name}|top"])
        for part in parts[1:]:
            both = torch.cat([top, torch.from_numpy(part[f"{name}|top"])], dim=1)
            top = torch.topk(both, min(m, both.shape[1]), dim=1, sorted=False).values
        out[f"{name}|threshold"] = threshold_from_top(top.numpy(), n, q).astype(np.float32)
        out[f"{name}|hw"] = hw
        out.update(TopImages.merge(parts, name, max(p[f"{name}|top_values"].shape[1] for p in parts)))
    return out


class TopImages:
    """Per unit, the k images with the largest maximum activation (ties: smaller key first), with maps."""

    def __init__(self, k: int):
        self.k = k
        self.values = self.keys = self.maps = None

    def add(self, acts, keys: list[str], maxima) -> None:
        """Add a batch: ``acts`` float32 (B, U, h, w), ``keys`` [B] sample keys, ``maxima`` (B, U) per-map maxima.

        Only units where a new image beats the current k-th entry are re-sorted and copied.
        """
        import torch

        b, u = acts.shape[:2]
        new_vals = maxima.T.cpu().numpy()  # (U, B)
        new_keys = np.broadcast_to(np.array(keys), (u, b))
        if self.values is None:
            rows = np.arange(u)
            vals, ks, old = new_vals, new_keys, 0
        else:
            if self.values.shape[1] == self.k:  # full: a newcomer must beat the last (worst) entry
                worst_v, worst_k = self.values[:, -1:], self.keys[:, -1:]
                enters = (new_vals > worst_v) | ((new_vals == worst_v) & (new_keys < worst_k))
                rows = np.nonzero(enters.any(1))[0]
                if rows.size == 0:
                    return
            else:
                rows = np.arange(u)
            vals = np.concatenate([self.values[rows], new_vals[rows]], 1)
            ks = np.concatenate([self.keys[rows], new_keys[rows]], 1)
            old = self.values.shape[1]
        order = np.lexsort((ks, -vals), axis=-1)[:, : self.k]
        picked = np.arange(len(rows))[:, None]
        from_new = torch.from_numpy(np.clip(order - old, 0, b - 1))
        new_maps = acts[from_new, torch.from_numpy(rows)[:, None]].cpu().numpy()  # (R, k, h, w)
        if self.maps is not None:
            old_maps = np.take_along_axis(self.maps[rows], np.clip(order, 0, old - 1)[:, :, None, None], 1)
            new_maps = np.where((order < old)[:, :, None, None], old_maps, new_maps)
        if self.values is None or order.shape[1] != self.values.shape[1]:  # still filling: every unit
            self.values, self.keys, self.maps = vals[picked, order], ks[picked, order], new_maps
        else:
            if ks.dtype != self.keys.dtype:  # longer keys than before: widen, never truncate
                self.keys = self.keys.astype(ks.dtype)
            self.values[rows], self.keys[rows], self.maps[rows] = vals[picked, order], ks[picked, order], new_maps

    def arrays(self, prefix: str) -> dict:
        """Return ``<prefix>|top_values`` (U, k) float32, ``top_keys`` (U, k) str, ``top_maps`` (U, k, h, w) float32."""
        return {
            f"{prefix}|top_values": self.values,
            f"{prefix}|top_keys": self.keys.astype(str),
            f"{prefix}|top_maps": self.maps.astype(np.float32),
        }

    @staticmethod
    def merge(parts: list[dict], prefix: str, k: int) -> dict:
        """Merge per-shard ``<prefix>|top_values/top_keys/top_maps`` arrays into the global top k."""
        vals = np.concatenate([p[f"{prefix}|top_values"] for p in parts], 1)
        keys = np.concatenate([p[f"{prefix}|top_keys"] for p in parts], 1)
        maps = np.concatenate([p[f"{prefix}|top_maps"] for p in parts], 1)
        order = np.lexsort((keys, -vals), axis=-1)[:, :k]
        rows = np.arange(vals.shape[0])[:, None]
        return {
            f"{prefix}|top_values": vals[rows, order],
            f"{prefix}|top_keys": keys[rows, order],
            f"{prefix}|top_maps": np.take_along_axis(maps, order[:, :, None, None], 1),
        }


def tally(model, layers: list[str], paths, thresholds: dict, manifest: dict, preset: str, batch_size: int, device, cache: str | Path | None = None, memory_format: str = "auto") -> dict:
    """The second pass: count intersections, activation terms and label areas over the shards.

    With ``cache`` (written by ``quantile_tops`` over the same shards) the activations come from
    it and ``model`` is not run (it may be None); without, ``model`` runs again on ``device``
    (the counting itself runs on the host either way, see ``tally_kernels``). Returns arrays per
    layer (see ``LayerTally.arrays``), ``area`` int64 (C+1,) and ``images``. All counts are sums
    over images, so per-shard results add up.
    """
    vocab = vocabulary(manifest)
    num_labels, ncat = vocab["num_labels"], len(vocab["categories"])
    thr = {name: np.asarray(thresholds[f"{name}|threshold"], np.float32) for name in layers}
    tallies: dict[str, LayerTally] = {}
    area = np.zeros(num_labels, dtype=np.int64)
    images = 0
    batches = _cached_batches(cache, paths, layers) if cache else activation_batches(model, layers, paths, preset, batch_size, device, desc="tally", memory_format=memory_format)
    # closing(): hooks come off at once even when this loop raises (a traceback would keep the
    # generator alive otherwise)
    with closing(batches) as stream:
        for batch, acts in stream:
            image_labels = [[n for ns in s["image_labels"].values() for n in ns] for s in batch["samples"]]
            try:
                labels = make_label_batch(batch["seg"], image_labels, vocab["primary"], num_labels, ncat)
            except DataError:
                raise _blame_image(batch, paths, vocab) from None
            area += labels.area
            for name in layers:
                a = acts[name]
                if thr[name].size != a.shape[1]:
                    raise DataError(f"thresholds for layer {name} have {thr[name].size} units, the model's layer has {a.shape[1]}")
                if name not in tallies:
                    tallies[name] = LayerTally(a.shape[1], num_labels, ncat)
                tallies[name].add(a, thr[name], labels)
            images += len(batch["keys"])
    if images == 0:
        raise DataError(f"no images in {', '.join(map(str, paths))}")
    out = {"images": np.array(images), "area": area}
    for name in layers:
        out.update(tallies[name].arrays(name))
    return out


def _blame_image(batch: dict, paths, vocab: dict) -> DataError:
    """The DataError for a batch whose labels were refused: the first image whose own labels are
    refused, named by its key and the shard that holds it."""
    num_labels, ncat = vocab["num_labels"], len(vocab["categories"])
    for i, sample in enumerate(batch["samples"]):
        numbers = [n for ns in sample["image_labels"].values() for n in ns]
        try:
            make_label_batch(batch["seg"][i : i + 1], [numbers], vocab["primary"], num_labels, ncat)
        except DataError as err:
            key = batch["keys"][i]
            message = str(err).replace("image 0 of the batch", "the image")
            return DataError(f"image {key!r} of shard {_shard_of(key, paths)}: {message}; fix or rebuild the shards")
    return DataError(f"{', '.join(map(str, paths))}, images {batch['keys'][0]}..{batch['keys'][-1]}: labels refused")


def _shard_of(key: str, paths) -> str:
    """The shard (of ``paths``) holding sample ``key`` (read from the tar listings), or '?'."""
    import tarfile

    for path in paths:
        with tarfile.open(path) as tar:
            if any(name.split(".", 1)[0] == key for name in tar.getnames()):
                return str(path)
    return "?"


def _cached_batches(cache, paths, layers: list[str]):
    """Yield ``(batch, {layer: maps or Candidates})`` from an activation cache and the labels of
    the shards it was made from (images are not decoded). DataError if the two disagree."""
    from ..data.broden_shards import iter_broden

    samples = iter_broden(paths, images=False)
    for keys, acts in read_cache(cache):
        missing = [name for name in layers if name not in acts]
        if missing:
            raise DataError(f"activation cache {cache} has no layer(s) {', '.join(missing)} (has {', '.join(acts)})")
        items = [s for _, s in zip(keys, samples)]
        got = [s["key"] for s in items]
        if got != keys:
            raise DataError(f"activation cache {cache} does not match the shards {', '.join(map(str, paths))}: it holds images {keys[0]}..{keys[-1]}, the shards give {got[0] if got else 'none'}..; rerun the quantile pass")
        yield collate(items), acts
    extra = next(samples, None)
    if extra is not None:
        raise DataError(f"activation cache {cache} ends before image {extra['key']} of the shards; rerun the quantile pass")


def sum_tallies(parts: list[dict], layers: list[str]) -> dict:
    """Add per-shard tallies (every count is a sum). Returns one tally dict."""
    out = {"images": np.array(sum(int(p["images"]) for p in parts)), "area": sum(p["area"] for p in parts)}
    for name in layers:
        for what in ("inter", "act_original", "act_lite", "act_total"):
            out[f"{name}|{what}"] = sum(p[f"{name}|{what}"] for p in parts)
    return out


def gather(tally_parts: list[dict], thresholds: dict, manifest: dict, layers: list[str], denominator: str, iou_threshold: float, out_dir: str | Path, settings: dict) -> dict:
    """Sum per-shard tallies, score IoU and write the results under ``out_dir``; returns the summary.

    ``thresholds`` is the output of ``merge_thresholds`` (thresholds and top images).
    DataError if the parts do not cover every image of the shards exactly once.
    """
    from .labels import iou_table, summarize, write_results

    total = int(thresholds["images"])
    seen = sum(int(p["images"]) for p in tally_parts)
    if seen != total:
        raise DataError(f"tally parts cover {seen} images, the thresholds were computed over {total}: a shard is missing or repeated")
    vocab = vocabulary(manifest)
    summed = sum_tallies(tally_parts, layers)
    table = iou_table(summed, thresholds, vocab, layers, denominator)
    summary = summarize(table, layers, vocab["categories"], iou_threshold)
    write_results(out_dir, table, summary, settings, summed, thresholds, layers)
    return summary


def remove_caches(parts_dir: str | Path) -> list[Path]:
    """Delete the activation caches (``cache-*.acts``) under ``parts_dir``; return their paths.

    Called by the gather, which runs after every tally of its model: a cache still there was left
    by a run killed after its tally had finished (Snakemake removes temporary files only after
    jobs it ran itself), and no job needs it any more.
    """
    removed = sorted(Path(parts_dir).glob("cache-*.acts"))
    for path in removed:
        path.unlink(missing_ok=True)
    return removed


def dataset_images(manifest: dict, splits: list[str] | None = None) -> int:
    """Return the number of images in the manifest's splits (all when None)."""
    return sum(v["samples"] for k, v in manifest["splits"].items() if splits is None or k in splits)


def dissect(model, layers: list[str], shard_dir: str | Path, out_dir: str | Path, quantile: float = 0.005, iou_threshold: float = 0.04, denominator: str = "original", preprocess: str = "imagenet", batch_size: int = 64, top_images: int = 8, device="cpu", settings: dict | None = None, cache: bool = True, memory_format: str = "auto") -> dict:
    """Dissect ``layers`` of ``model`` on every shard under ``shard_dir`` and write results to ``out_dir``.

    The same stages as the per-shard jobs, in one process: quantiles, exact thresholds, tally,
    gather. With ``cache`` the model runs once and the tally reads an activation cache (a
    temporary file beside ``out_dir``, removed at the end); without, the model runs twice.
    Returns the per-layer summary (see ``labels.summarize``).
    """
    import tempfile

    from ..data.shards import shard_paths

    manifest = read_manifest(shard_dir)
    paths = shard_paths(shard_dir)
    total = dataset_images(manifest)
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{out_dir.name}-cache-", dir=out_dir.parent) as tmp:
        cache_file = Path(tmp) / "activations.acts" if cache else None
        tops = quantile_tops(model, layers, paths, total, quantile, preprocess, batch_size, device, top_images, cache_file, memory_format=memory_format)
        thresholds = merge_thresholds([tops], layers, total, quantile)
        counts = tally(model, layers, paths, thresholds, manifest, preprocess, batch_size, device, cache_file, memory_format=memory_format)
    settings = dict(settings or {}, layers=layers, quantile=quantile, iou_threshold=iou_threshold, denominator=denominator, preprocess=preprocess)
    return gather([counts], thresholds, manifest, layers, denominator, iou_threshold, out_dir, settings)
