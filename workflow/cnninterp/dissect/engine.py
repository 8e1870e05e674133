"""Network Dissection's per-shard stages: quantiles, thresholds, tally (the jobs that run the model).

Each stage hands on a typed state (``states``: ``QuantilePart``, ``Thresholds``, ``TallyPart``),
written to and read from disk by ``statefile``, so stages can run as separate per-shard jobs and
be merged. The gather (``gather``) and the in-process run of every stage (``pipeline.dissect``)
live apart: this module's import closure is the code of every quantile, threshold and tally job,
so it imports neither them nor what only they run (``chance``, ``labels``), and an edit of those
reruns only the gathers.
"""

from __future__ import annotations

from collections import Counter
from contextlib import closing, nullcontext
from pathlib import Path

import numpy as np

from ..errors import DataError
from . import candidates as cand
from .activations import activation_batches, collate
from .cache import Centres, keep_for_tally, keep_values, open_cache, read_cache
from .layers_pool import layer_pool
from .quantiles import KeyHistogram, ThresholdSearch
from .statefile import read_state
from .states import LayerQuantiles, LayerThresholds, QuantilePart, TallyPart, Thresholds, TopImages
from .tally import LayerTally, WholeImageLabels, make_label_batch


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


def manifest_shards(manifest: dict) -> list[str]:
    """The sorted file names of every shard the manifest lists (all splits: the dataset that
    ``dataset_images`` counts)."""
    return sorted(s["name"] for split in manifest["splits"].values() for s in split["shards"])


def shard_names(paths) -> tuple:
    """The sorted file names of ``paths`` (what a part records); DataError if one repeats."""
    counts = Counter(Path(p).name for p in paths)
    names = sorted(counts)
    repeated = [n for n in names if counts[n] > 1]
    if repeated:
        raise DataError(f"shard(s) {', '.join(repeated)} given more than once: give each shard once")
    return tuple(names)


def compare_shards(got, expected, what: str, where: str) -> None:
    """DataError unless the shard names ``got`` (sequence of str) are those of ``expected``,
    naming the extra and missing ones; ``what`` names the parts, ``where`` the list compared with."""
    extra, lost = sorted(set(got) - set(expected)), sorted(set(expected) - set(got))
    if extra or lost:
        raise DataError(f"{what} cover shard(s) not in {where}: {', '.join(extra) or 'none'}; shard(s) missing: {', '.join(lost) or 'none'}; "
                        "give the part of every shard of the dataset, once")


def quantile_tops(model, layers: list[str], paths, total_images: int, q: float, preset: str, batch_size: int, device, top_images: int = 8, cache: str | Path | None = None, memory_format: str = "auto", values_only: bool = False) -> QuantilePart:
    """The first pass: stream shards through ``model``; per layer count every activation into
    the level-0 key histograms, keep the top-activating images, and (with ``cache``, a file path)
    write the values at or above each unit's running floor that the threshold merge refines
    (and, unless ``values_only``, the neighbourhoods the tally needs; see ``cache``).

    ``total_images`` is the image count of the whole dataset (all shards of all jobs), which fixes
    the floor's rank. Returns the ``QuantilePart`` of these shards.
    """
    shards = shard_names(paths)
    hists: dict[str, KeyHistogram] = {}
    shapes: dict[str, tuple] = {}
    from_top: dict[str, int] = {}
    tops = {name: TopImages(top_images) for name in layers}
    keep = keep_values if values_only else keep_for_tally
    images = 0
    stream = activation_batches(model, layers, paths, preset, batch_size, device, desc="quantiles", memory_format=memory_format)

    def count_and_keep(name, a):
        hists[name].add(a)
        return keep(a, _at_floor(hists[name], from_top[name], a)) if writer is not None else None

    with closing(stream), (open_cache(cache, background=True) if cache else nullcontext()) as writer, layer_pool() as pool:
        for batch, acts in stream:
            for name, a in acts.items():
                if name not in hists:
                    shapes[name] = tuple(a.shape[2:])
                    hists[name] = KeyHistogram(a.shape[1])
                    from_top[name] = ThresholdSearch(total_images * a.shape[2] * a.shape[3], q, a.shape[1]).from_top()
                tops[name].add(a, batch["keys"], a.amax(dim=(2, 3)))
            kept = pool.map(count_and_keep, acts)  # layers in parallel, each in data order
            if writer is not None:
                writer.write(batch["keys"], kept)
            images += len(batch["keys"])
        if images == 0:
            raise DataError(f"no images in {', '.join(map(str, paths))}")
    return QuantilePart(images, {name: LayerQuantiles(shapes[name], hists[name], tops[name], from_top[name]) for name in hists}, shards)


def _at_floor(hist: KeyHistogram, from_top: int, acts):
    """The pixels of ``acts`` at or above the histogram's floor (``candidates.Located``), or None
    while there is no floor."""
    import torch

    floor = hist.floor(from_top)
    if floor is None:
        return None
    return cand.locate(acts, torch.from_numpy(floor).to(acts.device))


def merge_thresholds(parts, layers: list[str], total_images: int, q: float, caches=(), shards: list[str] | None = None) -> Thresholds:
    """Merge quantile parts (``QuantilePart`` or paths of saved ones, read one at a time) and
    refine with the activation caches of the same shards into exact thresholds.

    Memory: one merged part and one part being read (U x 8,192 counts per layer plus the top
    images), and one cache batch; each of the two refinement levels reads every cache once.
    Returns the ``Thresholds`` of ``layers`` (with the merged top images). DataError if the parts
    do not cover exactly ``total_images`` images, their caches were bounded for a smaller
    quantile than ``q``, or a cache is missing or repeated (the caches' image keys are checked
    on their first read: each image once, ``total_images`` in all; the caches are not read when
    the parts' histograms already settle every threshold). Parts that share a shard do not merge;
    with ``shards`` (the dataset's shard names, ``manifest_shards``) the parts must cover exactly
    those (parts built in memory without shard names are not compared).
    """
    merged = merge_states(parts, QuantilePart, "quantile parts to merge")
    if shards is not None and merged.shards:
        compare_shards(merged.shards, shards, "quantile parts", "the shard list")
    if merged.images != total_images:
        raise DataError(f"quantile parts cover {merged.images} images, the shards hold {total_images}: a shard is missing or repeated")
    missing = [name for name in layers if name not in merged.layers]
    if missing:
        raise DataError(f"quantile parts have no layer(s) {', '.join(missing)}")
    searches = {}
    for name in layers:
        layer = merged.layers[name]
        n = total_images * layer.hw[0] * layer.hw[1]
        searches[name] = ThresholdSearch(n, q, layer.histogram.units)
        if layer.floor_from_top < searches[name].from_top():
            raise DataError(f"layer {name}: the quantile parts bounded their caches for a quantile below {q} (the {layer.floor_from_top} largest values of {n}, {q} needs {searches[name].from_top()}): rerun the quantile jobs with a cache quantile >= {q}")
        searches[name].step(layer.histogram)
    checked = False
    while not all(s.done for s in searches.values()):
        if not caches:
            raise DataError("exact thresholds need the activation caches of the quantile jobs (none given)")
        level = {name: s.next_histogram() for name, s in searches.items()}
        seen: set | None = None if checked else set()  # the first read checks the caches' images
        with layer_pool() as pool:
            for path in caches:
                for keys, acts in read_cache(path):
                    if seen is not None:
                        _check_new_keys(seen, keys, path)
                    missing = [name for name in layers if name not in acts]
                    if missing:
                        raise DataError(f"activation cache {path} has no layer {missing[0]}")
                    pool.map(lambda name, item: _count_cached(level[name], item), {name: acts[name] for name in layers})
        if seen is not None and len(seen) != total_images:
            raise DataError(f"the activation caches hold {len(seen)} images, the quantile parts {total_images}: a cache is missing; "
                            "give the cache of every quantile job, once")
        checked = True
        for name, s in searches.items():
            try:
                s.step(level[name])
            except ValueError as err:
                raise DataError(f"layer {name}: the activation caches do not hold the values the quantile parts counted ({err}); rerun the quantile jobs") from None
    return Thresholds(total_images, q, {name: LayerThresholds(merged.layers[name].hw, searches[name].thresholds(), merged.layers[name].tops) for name in layers})


def _check_new_keys(seen: set, keys: list[str], path) -> None:
    """Add a cache batch's image ``keys`` to ``seen``; DataError naming the cache ``path`` and the
    image if one was seen before (a cache given twice, or two caches of the same shard)."""
    for key in keys:
        if key in seen:
            raise DataError(f"activation cache {path} repeats image {key!r} of an earlier cache: a cache given twice, or two of the same shard; "
                            "give the cache of every quantile job, once")
        seen.add(key)


def _count_cached(hist: KeyHistogram, item) -> None:
    """Count a cache item (maps float32 (B, U, h, w), Candidates or Centres) into ``hist``: the
    maps' every value, the candidates' centres, the centres' values."""
    import torch

    if isinstance(item, torch.Tensor):
        hist.add(item)
        return
    values = item.values[:, cand.CENTRE] if isinstance(item, cand.Candidates) else item.values
    hist.add_ids(item.ids, values, item.shape)


def tally(model, layers: list[str], paths, thresholds: Thresholds, manifest: dict, preset: str, batch_size: int, device, cache: str | Path | None = None, memory_format: str = "auto") -> TallyPart:
    """The second pass: count intersections, activation terms and label areas over the shards.

    With ``cache`` (written by ``quantile_tops`` over the same shards) the activations come from
    it and ``model`` is not run (it may be None); without, ``model`` runs again on ``device``
    (the counting itself runs on the host either way, see ``tally_kernels``). ``thresholds``: the
    ``Thresholds`` of (at least) ``layers``. Returns the ``TallyPart`` of these shards (every count
    is a sum over images, so per-shard parts merge).
    """
    shards = shard_names(paths)
    vocab = vocabulary(manifest)
    num_labels, ncat = vocab["num_labels"], len(vocab["categories"])
    thr = {name: np.asarray(layer.threshold, np.float32) for name, layer in thresholds.select(layers).layers.items()}
    tallies: dict[str, LayerTally] = {}
    area = np.zeros(num_labels, dtype=np.int64)
    whole = WholeImageLabels()
    images = 0
    batches = _cached_batches(cache, paths, layers) if cache else activation_batches(model, layers, paths, preset, batch_size, device, desc="tally", memory_format=memory_format)
    # closing(): hooks come off at once even when this loop raises (a traceback would keep the
    # generator alive otherwise)
    with closing(batches) as stream, layer_pool() as pool:
        for batch, acts in stream:
            image_labels = [[n for ns in s["image_labels"].values() for n in ns] for s in batch["samples"]]
            try:
                labels = make_label_batch(batch["seg"], image_labels, vocab["primary"], num_labels, ncat)
            except DataError:
                raise _blame_image(batch, paths, vocab) from None
            area += labels.area
            whole.add(labels)
            for name in layers:
                a = acts[name]
                if thr[name].size != a.shape[1]:
                    raise DataError(f"thresholds for layer {name} have {thr[name].size} units, the model's layer has {a.shape[1]}")
                if name not in tallies:
                    tallies[name] = LayerTally(a.shape[1], num_labels, ncat)
            pool.map(lambda name, a: tallies[name].add(a, thr[name], labels), {name: acts[name] for name in layers})
            images += len(batch["keys"])
    if images == 0:
        raise DataError(f"no images in {', '.join(map(str, paths))}")
    return TallyPart(images, area, {name: tallies[name] for name in layers}, thresholds.digest(layers), shards, whole)


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
        if any(isinstance(a, Centres) for a in acts.values()):
            raise DataError(f"activation cache {cache} holds values for the thresholds only, not what the tally needs; run the tally with the model")
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


def merge_states(states, cls, what: str):
    """Merge mergeable states of class ``cls`` (instances, or paths of saved ones, read one at a
    time so memory holds two) in the given order; DataError "no <what>" if there are none."""
    merged = None
    for state in states:
        if not isinstance(state, cls):
            state = read_state(state, cls)
        merged = state if merged is None else merged.merge(state)
    if merged is None:
        raise DataError(f"no {what}")
    return merged


def dataset_images(manifest: dict, splits: list[str] | None = None) -> int:
    """Return the number of images in the manifest's splits (all when None)."""
    return sum(v["samples"] for k, v in manifest["splits"].items() if splits is None or k in splits)
