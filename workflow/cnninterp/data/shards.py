"""The project's one shard format: deterministic WebDataset tar shards plus ``manifest.json``.

``write_shards`` takes samples in key order, splits them into ``<split>-NNNNNN.tar`` files of at
most ``shard_size`` samples, fixes every tar header field (mtime 0, uid/gid 0, mode 0o444, fields
in sorted order), so equal input gives byte-identical shards, and writes the manifest last.
``read_manifest`` and ``iter_samples`` read them back.
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Callable, Iterable, Iterator

from ..atomic import atomic_path, write_json
from .digest import sha256_file
from ..errors import DataError

MANIFEST = "manifest.json"
FORMAT_VERSION = 1
_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
_SHARD_NAME = re.compile(r"^[a-z]+-\d{6}\.tar$")
# webdataset's reader lower-cases every member suffix ("K.npy" comes back as "k.npy"), so a field
# name with capitals would silently go missing on read: the writer refuses it.
_FIELD = re.compile(r"^[a-z0-9_]+(\.[a-z0-9_]+)*$")


def shard_name(split: str, index: int) -> str:
    """Return the file name of shard ``index`` of ``split``, e.g. ``train-000003.tar``."""
    return f"{split}-{index:06d}.tar"


class _ShardSink:
    """Writes one split's samples into consecutive shards, each through a temporary name."""

    def __init__(self, out_dir: Path, split: str, shard_size: int):
        self.out_dir, self.split, self.shard_size = out_dir, split, shard_size
        self.shards: list[dict] = []
        self._writer = self._file = self._tmp = None
        self._count = 0

    def write(self, sample: dict) -> None:
        import webdataset as wds

        if self._writer is None:
            name = shard_name(self.split, len(self.shards))
            self._ctx = atomic_path(self.out_dir / name)
            self._tmp = self._ctx.__enter__()
            self._file = open(self._tmp, "wb")
            self._writer = wds.TarWriter(self._file, encoder=False, mtime=0, user="", group="", mode=0o444)
            self._name, self._count = name, 0
        ordered = {"__key__": sample["__key__"]}
        ordered.update({k: sample[k] for k in sorted(sample) if k != "__key__"})
        self._writer.write(ordered)
        self._count += 1
        if self._count >= self.shard_size:
            self.close()

    def close(self, error: BaseException | None = None) -> None:
        if self._writer is None:
            return
        self._writer.close()
        self._file.close()
        self._writer = None
        if error is not None:
            self._ctx.__exit__(type(error), error, None)
            return
        digest = sha256_file(self._tmp)
        self._ctx.__exit__(None, None, None)
        self.shards.append({"name": self._name, "samples": self._count, "sha256": digest})


def write_shards(
    samples: Iterable[tuple[str, dict]],
    out_dir: str | Path,
    shard_size: int,
    manifest: dict | Callable[[], dict],
) -> dict:
    """Write ``(split, sample)`` pairs as shards under ``out_dir`` and return the manifest.

    Each sample is a dict with ``__key__`` (letters, digits, ``_`` or ``-``; no dots) and field
    name -> bytes; field names are lower-case (``seg.npy``), since webdataset's reader lower-cases
    suffixes and a ``K.npy`` would come back as ``k.npy``. Keys must arrive in strictly increasing order within each split. ``manifest``
    holds the dataset-specific entries (labels, source, config), or is a function returning
    them, called once all samples are written (for entries such as a digest of the content);
    this adds ``format_version``,
    ``splits`` (per split: sample count and the shards with name, samples, sha256). Shards of a
    previous run that this run does not write are removed. On error nothing new is left behind
    and no manifest is written.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / MANIFEST).unlink(missing_ok=True)
    for stale in out_dir.iterdir():
        if _SHARD_NAME.match(stale.name) or ".tmp-" in stale.name:
            stale.unlink()
    sinks: dict[str, _ShardSink] = {}
    last_key: dict[str, str] = {}
    try:
        for split, sample in samples:
            key = sample.get("__key__", "")
            if not _KEY.match(key):
                raise DataError(f"sample key {key!r} must be letters, digits, '_' or '-' (no dots)")
            if split in last_key and key <= last_key[split]:
                raise DataError(f"sample keys must increase within split {split!r}: {key!r} after {last_key[split]!r}")
            last_key[split] = key
            for name, value in sample.items():
                if name != "__key__" and not _FIELD.match(name):
                    raise DataError(
                        f"sample {key!r}: field name {name!r} must be lower-case letters, digits and '_' "
                        f"separated by dots (webdataset's reader lower-cases suffixes, so {name!r} would "
                        f"come back as {name.lower()!r})")
                if name != "__key__" and not isinstance(value, (bytes, bytearray)):
                    raise DataError(f"sample {key!r}: field {name!r} must be bytes, got {type(value).__name__}")
            sink = sinks.get(split) or sinks.setdefault(split, _ShardSink(out_dir, split, shard_size))
            sink.write(sample)
    except BaseException as err:
        for sink in sinks.values():
            sink.close(err)
        for sink in sinks.values():
            for shard in sink.shards:
                (out_dir / shard["name"]).unlink(missing_ok=True)
        raise
    for sink in sinks.values():
        sink.close()
    full = dict(manifest() if callable(manifest) else manifest)
    full["format_version"] = FORMAT_VERSION
    full["splits"] = {
        split: {"samples": sum(s["samples"] for s in sink.shards), "shards": sink.shards}
        for split, sink in sorted(sinks.items())
    }
    write_json(out_dir / MANIFEST, full)
    return full


def read_manifest(shard_dir: str | Path) -> dict:
    """Return the manifest of a shard folder; DataError if it is missing or unreadable."""
    import json

    path = Path(shard_dir) / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(f"{path} is missing: build the shards first (the dataset's data step, e.g. `snakemake {path}`)") from None
    except json.JSONDecodeError as err:
        raise DataError(f"{path} is not valid JSON: {err}") from None
    if manifest.get("format_version") != FORMAT_VERSION:
        raise DataError(f"{path}: format_version {manifest.get('format_version')!r}, expected {FORMAT_VERSION}")
    return manifest


def shard_paths(shard_dir: str | Path, splits: Iterable[str] | None = None) -> list[Path]:
    """Return the shard files of the manifest in ``shard_dir`` (all splits, or those named), sorted."""
    manifest = read_manifest(shard_dir)
    wanted = manifest["splits"] if splits is None else list(splits)
    paths = []
    for split in wanted:
        if split not in manifest["splits"]:
            raise DataError(f"{Path(shard_dir) / MANIFEST} has no split {split!r} (has {', '.join(manifest['splits'])})")
        paths += [Path(shard_dir) / s["name"] for s in manifest["splits"][split]["shards"]]
    return sorted(paths)


_VERIFIED: set[tuple[str, int, int]] = set()


def verify_shard(path: str | Path) -> None:
    """Check a shard file's sha256 against the manifest in its folder; DataError naming the shard on
    a mismatch or when the manifest does not list it. Each file version is hashed once per process."""
    path = Path(path)
    st = path.stat()
    stamp = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if stamp in _VERIFIED:
        return
    manifest = read_manifest(path.parent)
    entries = {s["name"]: s for split in manifest["splits"].values() for s in split["shards"]}
    if path.name not in entries:
        raise DataError(f"shard {path} is not listed in {path.parent / MANIFEST}; rebuild the shards")
    digest = sha256_file(path)
    if digest != entries[path.name]["sha256"]:
        raise DataError(
            f"shard {path}: its sha256 {digest[:16]}... differs from the manifest's {entries[path.name]['sha256'][:16]}...; "
            f"the file changed after it was written: delete {path.parent} and rebuild the shards"
        )
    _VERIFIED.add(stamp)


def iter_samples(paths: Iterable[str | Path], verify: bool = True) -> Iterator[dict]:
    """Yield raw samples (``__key__`` plus field name -> bytes) from tar shards, in stored order.

    With ``verify`` (the default) each shard's sha256 is first checked against the manifest beside
    it (``verify_shard``). Reads with webdataset's tar iterator; an empty or unreadable shard
    raises DataError naming it.
    """
    from webdataset.tariterators import group_by_keys, tar_file_expander

    for path in paths:
        path = Path(path)
        if not path.is_file():
            raise DataError(f"shard {path} is missing")
        if verify:
            verify_shard(path)
        count = 0
        try:
            with path.open("rb") as stream:
                files = tar_file_expander([{"stream": stream, "url": str(path)}], handler=_reraise)
                for sample in group_by_keys(files):
                    sample.pop("__url__", None)
                    sample.pop("__local_path__", None)
                    count += 1
                    yield sample
        except DataError:
            raise
        except Exception as err:
            raise DataError(f"shard {path} is unreadable: {err}") from None
        if count == 0:
            raise DataError(f"shard {path} holds no samples")


def _reraise(exn: Exception) -> bool:
    raise exn


def npy_bytes(array) -> bytes:
    """Serialise a numpy array in .npy format (deterministic bytes for equal arrays)."""
    import numpy as np

    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


_NPY_MAGIC = b"\x93NUMPY\x01\x00"


def npy_load(data: bytes):
    """Inverse of ``npy_bytes``: a read-only array viewing ``data`` (no copy).

    Version 1.0 headers (what ``npy_bytes`` writes) are parsed directly, which is several times
    faster than ``numpy.load`` on small arrays; anything else goes through ``numpy.load``.
    """
    import numpy as np

    if data[:8] == _NPY_MAGIC:
        end = 10 + int.from_bytes(data[8:10], "little")
        header = data[10:end].decode("latin1")
        match = _NPY_HEADER.match(header)
        if match:
            shape = tuple(int(v) for v in match.group(3).split(",") if v.strip())
            return np.frombuffer(data, dtype=np.dtype(match.group(1)), offset=end).reshape(shape)
    return np.load(io.BytesIO(data), allow_pickle=False)


_NPY_HEADER = re.compile(r"^\{'descr': '([<>|][a-z]\d+)', 'fortran_order': (False), 'shape': \(([\d, ]*)\), \}\s*$")
