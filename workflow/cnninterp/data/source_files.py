"""The files of a user's data folder that a shard job reads, listed for the DAG.

A shard job whose input is only a folder path reruns when the folder's own modification time
changes, which an edit of a file inside it does not change; so the rules list these files as
inputs, and editing one (a new row in Broden's ``index.csv``, a replaced Udacity
``interpolated.csv``, a re-exported comma.ai ``.h5``) reruns the shards and what follows. The
image files of Broden and Udacity folders are not listed (tens of thousands; their names and
sizes come from the tables listed here); comma.ai's frames live in the listed ``.h5`` files.
Planning-time code: imports no torch.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import DataError
from .broden import find_root

BRODEN_TABLES = ("index.csv", "label.csv", "category.csv")  # plus every c_<category>.csv


def broden_tables(path: str | Path) -> list[Path]:
    """The tables of the Broden folder at ``path`` (itself or its single subfolder holding
    index.csv, as ``find_root`` decides): index.csv, label.csv, category.csv and the c_*.csv
    files, in that order. DataError (from ``find_root``) if ``path`` is not a Broden folder."""
    root = find_root(Path(path))
    return [root / name for name in BRODEN_TABLES if (root / name).is_file()] + sorted(root.glob("c_*.csv"))


def udacity_tables(path: str | Path) -> list[Path]:
    """The ``interpolated.csv`` of the Udacity folder at ``path``, or of each of its subfolders
    (one drive each, in name order), as ``driving.read_udacity`` reads them. DataError naming the
    folder if it holds neither."""
    path = Path(path)
    if (path / "interpolated.csv").is_file():
        return [path / "interpolated.csv"]
    tables = sorted(path.glob("*/interpolated.csv"))
    if not tables:
        raise DataError(f"{path} holds no interpolated.csv, nor do its subfolders: is it a Udacity folder?")
    return tables


def comma_files(path: str | Path) -> list[Path]:
    """The ``camera/<name>.h5`` files of the comma.ai folder at ``path`` and their ``log/<name>.h5``
    (each camera file then its log), in name order. DataError naming the folder if there is no
    camera file, or naming the camera file whose log is missing."""
    path = Path(path)
    cams = sorted((path / "camera").glob("*.h5"))
    if not cams:
        raise DataError(f"{path / 'camera'} holds no .h5 files: expected camera/<name>.h5 and log/<name>.h5")
    files = []
    for cam in cams:
        log = path / "log" / cam.name
        if not log.is_file():
            raise DataError(f"{cam} has no log file {log}")
        files += [cam, log]
    return files


def driving_files(source: str, path: str | Path) -> list[Path]:
    """The files the driving shards of ``source`` read from ``path``: none for ``synthetic``,
    ``udacity_tables`` for ``udacity``, ``comma_files`` for ``comma``."""
    if source == "synthetic":
        return []
    if source == "udacity":
        return udacity_tables(path)
    if source == "comma":
        return comma_files(path)
    raise ValueError(f"unknown driving source {source!r}")
