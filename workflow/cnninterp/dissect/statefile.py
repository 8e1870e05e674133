"""The file format of the dissection's typed states (quantile parts, thresholds, tally parts,
top images): one uncompressed ``.npz`` per state, written atomically.

Layout: ``format`` (the string ``FORMAT``), then the state's own ``state_dict()`` flattened, a
nested key joined by ``/`` (e.g. ``layers/0/histogram/counts``). Every state dict starts with
``kind`` (which class wrote it) and ``version`` (of that class's layout); layers are numbered in
the order of a ``layer_names`` array, so a layer's name is never part of a key. A file without
``format`` (the ``"<layer>|<what>"`` arrays of earlier versions, or any other ``.npz``), of
another kind than asked for, or of another version is refused with a ``DataError`` naming it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..atomic import atomic_path
from ..errors import DataError

FORMAT = "cnninterp.dissect.state"


def flatten(state: dict, prefix: str = "") -> dict:
    """Nested dicts of arrays -> one level, keys joined by ``/`` (keys must not contain ``/``)."""
    out = {}
    for key, value in state.items():
        if "/" in str(key):
            raise ValueError(f"state key {key!r} contains '/'")
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, name + "/"))
        else:
            out[name] = np.asarray(value)
    return out


def unflatten(arrays: dict) -> dict:
    """Inverse of ``flatten``."""
    out: dict = {}
    for name, value in arrays.items():
        *path, last = name.split("/")
        node = out
        for key in path:
            node = node.setdefault(key, {})
        node[last] = value
    return out


def write_state(path: str | Path, state) -> None:
    """Atomically write ``state`` (a typed state, or its ``state_dict()``, which holds ``kind``
    and ``version``) to ``path``."""
    if not isinstance(state, dict):
        state = state.state_dict()
    if "kind" not in state or "version" not in state:
        raise ValueError("a state dict without kind and version")
    arrays = {"format": np.array(FORMAT), **flatten(state)}
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.savez(handle, **arrays)


def read_state(path: str | Path, *classes):
    """Read the typed state in ``path`` (one of ``classes``, each with ``KIND``, ``VERSION`` and
    ``from_state_dict``; any dissection state when none are given).

    DataError naming the file if it is missing, not a readable .npz, written in the earlier
    ``"<layer>|<what>"`` layout or by something else, of another kind, version or incomplete.
    """
    if not classes:
        from .states import STATE_CLASSES

        classes = STATE_CLASSES
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except FileNotFoundError:
        raise DataError(f"{path} is missing") from None
    except Exception as err:
        raise DataError(f"{path} is not a readable .npz file: {err}") from None
    wanted = " or ".join(c.KIND for c in classes)
    if str(arrays.pop("format", "")) != FORMAT:
        old = any("|" in k for k in arrays)
        what = "in the '<layer>|<what>' layout of an earlier version" if old else "not a dissection state file"
        raise DataError(f"{path} is {what} (expected a {wanted}): delete it and rerun the step that writes it")
    state = unflatten(arrays)
    kind = str(state.get("kind", ""))
    by_kind = {c.KIND: c for c in classes}
    if kind not in by_kind:
        raise DataError(f"{path} holds a {kind or 'state of no kind'}, expected a {wanted}")
    cls = by_kind[kind]
    if int(state.get("version", -1)) != cls.VERSION:
        raise DataError(f"{path} holds a {kind} of layout version {int(state.get('version', -1))}, this code reads version {cls.VERSION}: rerun the step that writes it")
    try:
        return cls.from_state_dict(state)
    except (KeyError, ValueError, TypeError, IndexError) as err:
        if isinstance(err, DataError):
            raise DataError(f"{path}: {err}") from None
        raise DataError(f"{path} holds an incomplete {kind} ({type(err).__name__}: {err}): rerun the step that writes it") from None
