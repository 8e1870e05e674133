"""Write outputs so that a final path exists only once its content is complete."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
from pathlib import Path


def temp_sibling(path: str | Path) -> Path:
    """Return a hidden temporary path beside ``path``, unique to this process."""
    path = Path(path)
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def remove_stale_temps(path: str | Path) -> None:
    """Delete the temporary siblings of ``path`` that earlier writers left (a process killed with
    SIGKILL runs no cleanup). Safe because one job writes a given path at a time: when its job
    runs again, every ``.<name>.tmp-<pid>`` beside it is a dead writer's."""
    path = Path(path)
    for stale in path.parent.glob(f".{path.name}.tmp-*"):
        _remove(stale)


@contextlib.contextmanager
def atomic_path(path: str | Path):
    """Yield a temporary file path; on success rename it to ``path``, on error delete it.

    Works for files and for folders (the caller creates whichever it needs at the yielded path).
    A folder replaces an existing folder; a file never replaces a folder (``IsADirectoryError``
    naming it, the folder kept): a mistaken path must not delete a user's folder.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path)
    tmp = temp_sibling(path)
    try:
        yield tmp
        if path.is_dir() and not path.is_symlink():
            if not tmp.is_dir():
                raise IsADirectoryError(errno.EISDIR, "is a folder, not replaced by a file", str(path))
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        _remove(tmp)


def _remove(path: Path) -> None:
    """Delete a file or folder if it exists."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def write_json(path: str | Path, data, indent: int = 2) -> None:
    """Atomically write ``data`` as JSON with sorted keys (byte-stable for equal data)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=indent, sort_keys=True) + "\n")



@contextlib.contextmanager
def atomic_files(out_dir: str | Path, names: list[str]):
    """Write a set of files that is complete or absent: yield a staging folder to write ``names`` into.

    The last name is the set's completion marker. An old set is removed first (marker first), so
    old and new files never mix; on success every staged file is renamed into ``out_dir``, the
    marker last; on any error the staged files and any already moved are deleted: the set is
    complete or absent.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in reversed(names):
        _remove(out_dir / name)
    remove_stale_temps(out_dir / ".staging")
    staging = temp_sibling(out_dir / ".staging")
    staging.mkdir()
    moved: list[Path] = []
    try:
        yield staging
        for name in names:
            if not (staging / name).is_file():
                raise FileNotFoundError(f"atomic_files: {name} was not written into {staging}")
        for name in names:
            os.replace(staging / name, out_dir / name)
            moved.append(out_dir / name)
    except BaseException:
        for path in moved:
            _remove(path)
        raise
    finally:
        _remove(staging)
