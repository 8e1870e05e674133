"""The typed, mergeable states the dissection's stages hand to each other (and write to disk
through ``statefile``): what a quantile job found (``QuantilePart``), the merged ``Thresholds``
with the top images, and what a tally job counted (``TallyPart``).

Protocol of the statistics (``TopImages``, ``QuantilePart``, ``TallyPart``, and the per-layer
``quantiles.KeyHistogram`` and ``tally.LayerTally`` they hold): ``add``/``merge(other)`` (any
order and split of the data gives the same result), ``state_dict()`` / ``from_state_dict()``
(nested dicts of numpy arrays; the top-level states carry ``kind`` and ``version``),
``result()``. Layers are kept in a dict by name; on disk they are numbered (``layer_names``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import DataError
from .quantiles import KeyHistogram
from .tally import LayerTally, WholeImageLabels


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

    def merge(self, other: "TopImages") -> "TopImages":
        """Keep the top k of this keeper's and ``other``'s images (any order and split of the
        data gives the same result); return self."""
        if other.values is None:
            return self
        if self.values is None:
            self.values, self.keys, self.maps = other.values, other.keys, other.maps
            return self
        vals = np.concatenate([self.values, other.values], 1)
        keys = np.concatenate([self.keys.astype(str), other.keys.astype(str)], 1)
        maps = np.concatenate([self.maps, other.maps], 1)
        order = np.lexsort((keys, -vals), axis=-1)[:, : self.k]
        rows = np.arange(vals.shape[0])[:, None]
        self.values, self.keys, self.maps = vals[rows, order], keys[rows, order], np.take_along_axis(maps, order[:, :, None, None], 1)
        return self

    def state_dict(self) -> dict:
        """``k`` int64 (), ``values`` (U, k) float32, ``keys`` (U, k) str, ``maps`` (U, k, h, w) float32."""
        if self.values is None:
            raise ValueError("top images of no images have no state")
        return {"k": np.array(self.k), "values": self.values, "keys": self.keys.astype(str), "maps": self.maps.astype(np.float32)}

    @classmethod
    def from_state_dict(cls, state: dict) -> "TopImages":
        """Rebuild a keeper from ``state_dict()``'s arrays."""
        out = cls(int(state["k"]))
        out.values, out.keys, out.maps = np.asarray(state["values"]), np.asarray(state["keys"]).astype(str), np.asarray(state["maps"])
        return out

    def result(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(values (U, k) float32, keys (U, k) str, maps (U, k, h, w) float32), best first."""
        return self.values, self.keys.astype(str), self.maps.astype(np.float32)


def _check_kind(cls, state: dict) -> None:
    """ValueError unless ``state`` is a state dict of ``cls`` (its kind and layout version)."""
    kind, version = str(state.get("kind", "")), int(state.get("version", -1))
    if kind != cls.KIND or version != cls.VERSION:
        raise ValueError(f"a {kind or 'state'} of version {version} where a {cls.KIND} of version {cls.VERSION} was expected")


def merge_shards(mine: tuple, theirs: tuple, what: str) -> tuple:
    """The sorted union of two parts' shard names; DataError naming the shards both cover (a part
    given twice, or two parts of the same shard: equal-sized shards would pass an image count)."""
    both = sorted(set(mine) & set(theirs))
    if both:
        raise DataError(f"{what} both cover shard(s) {', '.join(both)}: a part given twice, or two parts of the same shard; "
                        "give each shard's part once")
    return tuple(sorted(set(mine) | set(theirs)))


def _shards_state(shards: tuple) -> np.ndarray:
    """Shard names as a str array (S,) (a 0-length one when none)."""
    return np.array(list(shards), dtype=str) if shards else np.zeros(0, dtype=str)


def _shards_from(value) -> tuple:
    """Inverse of ``_shards_state``."""
    return tuple(str(x) for x in np.atleast_1d(value)) if np.size(value) else ()


def _layers_state(layers: dict, states) -> dict:
    """``layer_names`` str (L,) and ``layers`` {"<i>": state of layer i}, from {name: object}."""
    names = list(layers)
    return {"layer_names": np.array(names, dtype=str), "layers": {str(i): states(layers[name]) for i, name in enumerate(names)}}


def _layers_from(state: dict, build) -> dict:
    """Inverse of ``_layers_state``: {name: build(state of the layer)}."""
    names = [str(n) for n in np.atleast_1d(state["layer_names"])] if np.size(state["layer_names"]) else []
    return {name: build(state["layers"][str(i)]) for i, name in enumerate(names)}


@dataclass
class LayerQuantiles:
    """One layer's state in a quantile part: map size ``hw`` (h, w), the level-0 ``histogram``
    (``quantiles.KeyHistogram``), the ``tops`` (``TopImages``) and ``floor_from_top``: the rank
    from the top whose running level-0 bin bounded what the activation cache kept (see
    ``KeyHistogram.floor``); the cache serves every quantile whose rank is at most this."""

    hw: tuple
    histogram: KeyHistogram
    tops: TopImages
    floor_from_top: int

    def state_dict(self) -> dict:
        """``hw`` int64 (2,), ``floor_from_top`` int64 (), ``histogram`` and ``tops`` states."""
        return {"hw": np.array(self.hw), "floor_from_top": np.array(self.floor_from_top), "histogram": self.histogram.state_dict(), "tops": self.tops.state_dict()}

    @classmethod
    def from_state_dict(cls, state: dict) -> "LayerQuantiles":
        """Rebuild from ``state_dict()``."""
        return cls(tuple(int(x) for x in state["hw"]), KeyHistogram.from_state_dict(state["histogram"]), TopImages.from_state_dict(state["tops"]), int(state["floor_from_top"]))


@dataclass
class QuantilePart:
    """What the quantile pass of some shards hands to the threshold merge (mergeable state):
    ``images`` read, ``layers`` {name: LayerQuantiles} and ``shards``, the sorted names of the
    shard files it read (version 2; merging refuses parts that share a shard). Its size does not
    depend on the number of images: U x 8,192 counts (sparse on disk) and the top images per layer."""

    KIND = "quantile_part"
    VERSION = 2
    images: int
    layers: dict
    shards: tuple = ()

    def merge(self, other: "QuantilePart") -> "QuantilePart":
        """Add ``other`` (the same layers and map sizes) into this part; return self. The merged
        floor rank is the smallest of the two (what every cache serves)."""
        if set(other.layers) != set(self.layers):
            raise DataError(f"quantile parts of different layers: {sorted(self.layers)} and {sorted(other.layers)}")
        shards = merge_shards(self.shards, other.shards, "quantile parts")
        self.images += other.images
        self.shards = shards
        for name, layer in self.layers.items():
            theirs = other.layers[name]
            if tuple(theirs.hw) != tuple(layer.hw):
                raise DataError(f"layer {name}: maps of {tuple(layer.hw)} and {tuple(theirs.hw)} in different parts (images of different sizes "
                                "in different shards?): resize the probe set to one size")
            layer.histogram.merge(theirs.histogram)
            layer.tops.merge(theirs.tops)
            layer.floor_from_top = min(layer.floor_from_top, theirs.floor_from_top)
        return self

    def state_dict(self) -> dict:
        """``kind``, ``version``, ``images`` int64 (), ``shards`` str (S,), ``layer_names`` and per layer its ``LayerQuantiles`` state."""
        return {"kind": np.array(self.KIND), "version": np.array(self.VERSION), "images": np.array(self.images), "shards": _shards_state(self.shards),
                **_layers_state(self.layers, LayerQuantiles.state_dict)}

    @classmethod
    def from_state_dict(cls, state: dict) -> "QuantilePart":
        """Rebuild a part from ``state_dict()``; ValueError or KeyError if it is not one."""
        _check_kind(cls, state)
        return cls(int(state["images"]), _layers_from(state, LayerQuantiles.from_state_dict), _shards_from(state["shards"]))

    def result(self) -> dict:
        """{layer: level-0 counts int64 (U, 1, 8192)}."""
        return {name: layer.histogram.result() for name, layer in self.layers.items()}


@dataclass
class LayerThresholds:
    """One layer's exact thresholds ``threshold`` float32 (U,), its map size ``hw`` (h, w) and
    its ``tops`` (``TopImages``)."""

    hw: tuple
    threshold: np.ndarray
    tops: TopImages

    def state_dict(self) -> dict:
        """``hw`` int64 (2,), ``threshold`` float32 (U,), ``tops`` state."""
        return {"hw": np.array(self.hw), "threshold": np.asarray(self.threshold, np.float32), "tops": self.tops.state_dict()}

    @classmethod
    def from_state_dict(cls, state: dict) -> "LayerThresholds":
        """Rebuild from ``state_dict()``."""
        return cls(tuple(int(x) for x in state["hw"]), np.asarray(state["threshold"], np.float32), TopImages.from_state_dict(state["tops"]))


@dataclass
class Thresholds:
    """The threshold merge's result (``thresholds.npz``; a dissection's ``top_images.npz`` holds
    the same state for its layers): ``images`` and ``quantile`` it was computed over, ``layers``
    {name: LayerThresholds}."""

    KIND = "thresholds"
    VERSION = 1
    images: int
    quantile: float
    layers: dict

    def select(self, layers: list[str]) -> "Thresholds":
        """The same state restricted to ``layers`` (in that order); DataError naming a missing one."""
        missing = [name for name in layers if name not in self.layers]
        if missing:
            raise DataError(f"thresholds have no layer(s) {', '.join(missing)} (have {', '.join(self.layers)})")
        return Thresholds(self.images, self.quantile, {name: self.layers[name] for name in layers})

    def state_dict(self) -> dict:
        """``kind``, ``version``, ``images`` int64 (), ``quantile`` float64 (), ``layer_names`` and per layer its ``LayerThresholds`` state."""
        return {"kind": np.array(self.KIND), "version": np.array(self.VERSION), "images": np.array(self.images), "quantile": np.array(self.quantile, np.float64), **_layers_state(self.layers, LayerThresholds.state_dict)}

    @classmethod
    def from_state_dict(cls, state: dict) -> "Thresholds":
        """Rebuild from ``state_dict()``; ValueError or KeyError if it is not one."""
        _check_kind(cls, state)
        return cls(int(state["images"]), float(state["quantile"]), _layers_from(state, LayerThresholds.from_state_dict))

    def result(self) -> dict:
        """{layer: threshold float32 (U,)}."""
        return {name: layer.threshold for name, layer in self.layers.items()}

    def digest(self, layers: list[str]) -> str:
        """sha256 hex of what a tally counted at: the quantile, the image count and the thresholds of
        ``layers`` (names and float32 values, in that order). A ``TallyPart`` records it, so gather can
        refuse parts counted at other thresholds (another model's, another quantile's)."""
        import hashlib

        h = hashlib.sha256(f"{self.quantile!r}|{self.images}".encode())
        for name, layer in self.select(layers).layers.items():
            h.update(f"|{name}|".encode())
            h.update(np.ascontiguousarray(layer.threshold, np.float32).tobytes())
        return h.hexdigest()


@dataclass
class TallyPart:
    """What the tally of some shards counted (mergeable state): ``images``, ``area`` int64 (C+1,)
    (pixels of each label, per dataset), ``layers`` {name: ``tally.LayerTally``} and ``thresholds``,
    the ``Thresholds.digest`` of the thresholds it counted at (version 2; parts of different
    thresholds do not merge, and gather checks the digest against its thresholds file) and
    ``shards``, the sorted names of the shard files it counted (version 3; merging refuses parts
    that share a shard, gather checks the union against the manifest); ``whole``, the
    ``tally.WholeImageLabels`` of its images that hold a whole-image label, whose rows line up with
    every layer's ``whole_active`` (version 4; the permutation null of ``chance``).

    Merging adds the sums and appends the per-image rows; ``canonical()`` (run by ``state_dict``
    and before the null is computed) puts the merged parts' row blocks in the order of their first
    shard names (a part without shard names sorts first, stably), so any merge order of parts
    gives the same rows (within one part, rows stay in the order its shards were read)."""

    KIND = "tally_part"
    VERSION = 4
    images: int
    area: np.ndarray
    layers: dict
    thresholds: str
    shards: tuple = ()
    whole: WholeImageLabels | None = None
    # (first shard name, rows) of each merged part's row block, in row order; None: one block
    _blocks: list | None = field(default=None, repr=False, compare=False)

    def __post_init__(self):
        if self.whole is None:
            self.whole = WholeImageLabels()

    def _row_blocks(self) -> list:
        """[(first shard name or "", per-image rows)] of the blocks this part's rows are made of."""
        return self._blocks if self._blocks is not None else [(min(self.shards) if self.shards else "", self.whole.images)]

    def canonical(self) -> "TallyPart":
        """Put the per-image rows (``whole`` and every layer's ``whole_active``) in the order of
        the merged parts' first shard names (see the class doc); return self."""
        blocks = self._row_blocks()
        order = sorted(range(len(blocks)), key=lambda b: blocks[b][0])
        if order != list(range(len(blocks))):
            starts = np.cumsum([0] + [n for _, n in blocks])
            rows = np.concatenate([np.arange(starts[b], starts[b + 1], dtype=np.int64) for b in order])
            self.whole.reorder(rows)
            for layer in self.layers.values():
                layer.whole_active = layer.whole_active[rows]
        self._blocks = None
        return self

    def merge(self, other: "TallyPart") -> "TallyPart":
        """Add ``other``'s counts (same layers and labels) into this part; return self."""
        if list(other.layers) != list(self.layers):
            raise DataError(f"tally parts of different layers: {list(self.layers)} and {list(other.layers)}")
        if other.area.shape != self.area.shape:
            raise DataError(f"tally parts over {self.area.size} and {other.area.size} label numbers: rerun the tallies")
        if other.thresholds != self.thresholds:
            raise DataError("tally parts counted at different thresholds: rerun the tallies")
        blocks = self._row_blocks() + other._row_blocks()
        shards = merge_shards(self.shards, other.shards, "tally parts")
        self.images += other.images
        self.shards = shards
        self.area = self.area + other.area
        self.whole.merge(other.whole)
        self._blocks = blocks
        for name, layer in self.layers.items():
            try:
                layer.merge(other.layers[name])
            except ValueError as err:
                raise DataError(f"layer {name}: {err}: rerun the tallies") from None
        return self

    def state_dict(self) -> dict:
        """``kind``, ``version``, ``images`` int64 (), ``area`` int64 (C+1,), ``thresholds`` (the digest), ``shards`` str (S,),
        ``whole`` (the ``WholeImageLabels`` state), ``layer_names`` and per layer its ``LayerTally`` state
        (rows in ``canonical()`` order)."""
        self.canonical()
        return {"kind": np.array(self.KIND), "version": np.array(self.VERSION), "images": np.array(self.images), "area": self.area,
                "thresholds": np.array(self.thresholds), "shards": _shards_state(self.shards), "whole": self.whole.state_dict(),
                **_layers_state(self.layers, LayerTally.state_dict)}

    @classmethod
    def from_state_dict(cls, state: dict) -> "TallyPart":
        """Rebuild from ``state_dict()``; ValueError or KeyError if it is not one."""
        _check_kind(cls, state)
        return cls(int(state["images"]), np.asarray(state["area"], np.int64).copy(), _layers_from(state, LayerTally.from_state_dict),
                   str(state["thresholds"]), _shards_from(state["shards"]), WholeImageLabels.from_state_dict(state["whole"]))

    def result(self) -> dict:
        """{layer: ``LayerTally.result()``}."""
        return {name: layer.result() for name, layer in self.layers.items()}


STATE_CLASSES = (QuantilePart, Thresholds, TallyPart)
