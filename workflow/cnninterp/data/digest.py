"""SHA-256 of files: the digests shards, manifests, checkpoints and downloads are checked by.

A module of its own so that the jobs that only read shards do not have the downloader as code
(an edit of ``download.py`` reran every training, dissection and method job).
"""

from __future__ import annotations

import hashlib
import os

_MIB = 1 << 20


def sha256_file(path: str | os.PathLike) -> str:
    """Return the SHA-256 hex digest (lower case) of the file at ``path``.

    The file is read in 1 MiB chunks, so memory use does not depend on the file size.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while True:
            block = fh.read(_MIB)
            if not block:
                break
            digest.update(block)
    return digest.hexdigest()
