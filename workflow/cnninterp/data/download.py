"""Download files over HTTP(S) with resume and checksum checks, and unpack zip archives safely.

Standard library only (``tqdm`` is used for a progress bar when it is importable).

* :func:`download` writes to ``<dest>.part``, resumes an interrupted download with an HTTP
  ``Range`` request, verifies the SHA-256 digest and only then moves the file to ``dest``.
* :func:`safe_extract_zip` refuses archives whose entries would escape the target directory
  (absolute paths, drive letters, ``..`` components, symlinks) and never leaves a partially
  extracted directory behind.
* :func:`fetch_and_extract` chains the two.
* :func:`check_download_record` compares a configured (pinned) digest with the one a finished
  download recorded, so that a workflow can verify a pin without downloading again.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import secrets
import shutil
import socket
import stat
import sys
import urllib.error
import urllib.request
import warnings
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from ..errors import DataError
from .digest import sha256_file


__all__ = [
    "DataError",
    "sha256_file",
    "download",
    "safe_extract_zip",
    "fetch_and_extract",
    "check_download_record",
]

_MIB = 1 << 20
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_DRIVE = re.compile(r"^[A-Za-z]:")
_CONTENT_RANGE = re.compile(r"^\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*$", re.IGNORECASE)
_CONTENT_RANGE_UNSAT = re.compile(r"^\s*bytes\s+\*/(\d+)\s*$", re.IGNORECASE)
_USER_AGENT = "cnninterp-download/1.0 (python urllib)"

# Errors that mean "the network or server let us down"; the .part file is kept for resuming.
_NETWORK_ERRORS = (
    urllib.error.URLError,
    http.client.HTTPException,
    ConnectionError,
    socket.timeout,
    TimeoutError,
)


def _normalise_sha256(sha256: str | None) -> str | None:
    """Return ``sha256`` stripped and lower-cased; raise DataError if it is not 64 hex digits."""
    if sha256 is None:
        return None
    value = str(sha256).strip().lower()
    if not _HEX64.match(value):
        raise DataError(
            f"expected SHA-256 {sha256!r} is not 64 hexadecimal digits; "
            "fix the checksum in the configuration"
        )
    return value


def _part_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part")


def _make_progress(total: int | None, initial: int, desc: str):
    """Return a tqdm bar (disabled when stderr is not a terminal) or None if tqdm is missing."""
    try:
        from tqdm import tqdm  # noqa: PLC0415 - optional dependency
    except ImportError:
        return None
    try:
        disable = not sys.stderr.isatty()
    except (AttributeError, ValueError):
        disable = True
    return tqdm(
        total=total,
        initial=initial,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        desc=desc,
        disable=disable,
        leave=False,
    )


def _open(url: str, offset: int, timeout: float):
    """Open ``url``; ask for bytes from ``offset`` on when it is positive.

    Returns ``(response, status, total)``. For a ``416`` answer (the range starts at or past
    the end of the remote file) ``response`` is None and ``total`` is the size the server
    announces in ``Content-Range: bytes */N`` (None when absent); otherwise ``total`` is None.
    Non-HTTP URLs (no status) count as ``200``.
    """
    headers = {"User-Agent": _USER_AGENT, "Accept-Encoding": "identity"}
    if offset > 0:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 - caller's URL
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset > 0:
            total = None
            match = _CONTENT_RANGE_UNSAT.match(exc.headers.get("Content-Range", "") or "")
            if match:
                total = int(match.group(1))
            exc.close()
            return None, 416, total
        exc.close()
        raise DataError(
            f"download of {url} failed: HTTP {exc.code} {exc.reason}; "
            "check the URL and try again later"
        ) from exc
    status = getattr(response, "status", None) or response.getcode() or 200
    return response, status, None


def _fetch_into_part(url: str, part: Path, chunk_size: int, timeout: float) -> None:
    """Fetch ``url`` into ``part``, resuming from its current size. Raises DataError."""
    restarted = False
    while True:
        offset = part.stat().st_size if part.exists() else 0
        response, status, total = _open(url, offset, timeout)

        if status == 416:
            if total is not None and total != offset:
                # The partial file does not fit the remote file: start over once.
                if restarted:
                    raise DataError(
                        f"download of {url} failed: server answered 416 to a resume at byte "
                        f"{offset} but reports {total} bytes; delete {part} and try again"
                    )
                part.unlink()
                restarted = True
                continue
            return  # the partial file already holds every byte

        with response:
            if status == 206:
                start = None
                match = _CONTENT_RANGE.match(response.headers.get("Content-Range", "") or "")
                if match:
                    start = int(match.group(1))
                if start != offset:
                    # A range we did not ask for: throw the partial file away and start over.
                    if restarted:
                        raise DataError(
                            f"download of {url} failed: server sent an unexpected range "
                            f"({response.headers.get('Content-Range')!r}) for a request from "
                            f"byte {offset}; delete {part} and try again"
                        )
                    response.close()
                    part.unlink(missing_ok=True)
                    restarted = True
                    continue
                mode = "ab"
            elif status == 200:
                offset = 0  # the server ignored Range (or none was sent): start from zero
                mode = "wb"
            else:
                raise DataError(
                    f"download of {url} failed: unexpected HTTP status {status}; "
                    "check the URL and try again later"
                )

            length_header = response.headers.get("Content-Length")
            expected = int(length_header) if length_header and length_header.isdigit() else None
            total = offset + expected if expected is not None else None
            received = 0
            bar = _make_progress(total, offset, part.name[: -len(".part")])
            try:
                with open(part, mode) as out:
                    try:
                        while True:
                            block = response.read(chunk_size)
                            if not block:
                                break
                            out.write(block)
                            received += len(block)
                            if bar is not None:
                                bar.update(len(block))
                    finally:
                        out.flush()
                        os.fsync(out.fileno())
            except _NETWORK_ERRORS + (OSError,) as exc:
                if isinstance(exc, DataError):
                    raise
                raise DataError(
                    f"download of {url} was interrupted after {offset + received} bytes "
                    f"({type(exc).__name__}: {exc}); the partial file {part} is kept, "
                    "call again to resume"
                ) from exc
            finally:
                if bar is not None:
                    bar.close()

            if expected is not None and received < expected:
                raise DataError(
                    f"download of {url} was interrupted after {offset + received} of "
                    f"{offset + expected} bytes (connection closed early); the partial file "
                    f"{part} is kept, call again to resume"
                )
            return


def download(
    url: str,
    dest: str | os.PathLike,
    sha256: str | None = None,
    chunk_size: int = 1 << 20,
    timeout: float = 60.0,
) -> str:
    """Download ``url`` to ``dest`` and return the file's SHA-256 hex digest.

    Args:
        url: the address to fetch (anything ``urllib`` opens; HTTP(S) for resuming).
        dest: where the finished file goes. Bytes are written to ``<dest>.part`` first; if
            that partial file exists, the download resumes with ``Range: bytes=N-``. A server
            that answers 200 (ignoring Range) makes the download restart from zero, 206
            appends, 416 means the partial file is already complete.
        sha256: the expected SHA-256 hex digest, or None. When given and ``dest`` already
            exists with that digest, nothing is downloaded. When given and the downloaded
            bytes differ, the ``.part`` file is deleted and DataError is raised. When None,
            the digest is computed, a warning says the file was not verified, and the digest
            is returned.
        chunk_size: bytes read per network read.
        timeout: socket timeout in seconds for connecting and for each read.

    Returns:
        The lower-case SHA-256 hex digest of ``dest``.

    Raises:
        DataError: network/HTTP failure (the ``.part`` file is kept so that the next call
            resumes), or checksum mismatch (naming the URL and both digests).
    """
    expected = _normalise_sha256(sha256)
    if chunk_size <= 0:
        raise ValueError(f"chunk_size must be positive, got {chunk_size}")
    dest = Path(dest)
    part = _part_path(dest)

    if expected is not None and dest.is_file():
        if sha256_file(dest) == expected:
            return expected

    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        _fetch_into_part(url, part, chunk_size, timeout)
    except DataError:
        raise
    except _NETWORK_ERRORS as exc:
        raise DataError(
            f"download of {url} failed ({type(exc).__name__}: {exc}); check the network and "
            f"the URL; any partial file {part} is kept, call again to resume"
        ) from exc

    actual = sha256_file(part)
    if expected is not None and actual != expected:
        part.unlink(missing_ok=True)
        raise DataError(
            f"checksum mismatch for {url}: expected SHA-256 {expected}, got {actual}; "
            "the download was deleted. Check the URL and the expected checksum, then retry"
        )
    os.replace(part, dest)
    if expected is None:
        warnings.warn(
            f"{url} was downloaded to {dest} without a checksum to verify it against; "
            f"its SHA-256 is {actual} (to pin this file, give it as broden.download.sha256: the workflow checks a pinned "
            f"digest against the recorded one when it plans, so this step itself is never given the pin)",
            UserWarning,
            stacklevel=2,
        )
    return actual


def _unsafe_reason(info: zipfile.ZipInfo) -> str | None:
    """Return why the zip entry ``info`` must not be extracted, or None if it is safe."""
    name = info.filename
    mode = (info.external_attr >> 16) & 0xFFFF
    if stat.S_ISLNK(mode):
        return "is a symbolic link"
    if not name or "\x00" in name:
        return "has an empty or invalid name"
    if name.startswith(("/", "\\")):
        return "has an absolute path"
    if _DRIVE.match(name):
        return "has a drive letter"
    parts = name.replace("\\", "/").split("/")
    if ".." in parts:
        return "has a '..' component"
    return None


def _corrupt(zip_path: Path, exc: BaseException) -> DataError:
    return DataError(
        f"zip archive {zip_path} is truncated or corrupt ({type(exc).__name__}: {exc}); "
        "delete it and download it again"
    )


def _make_temp_sibling(target: Path) -> Path:
    """Create and return a new, empty, hidden directory next to ``target`` (umask applies)."""
    while True:
        candidate = target.with_name(f".{target.name}.extracting-{secrets.token_hex(6)}")
        try:
            os.mkdir(candidate)
        except FileExistsError:
            continue
        return candidate


def safe_extract_zip(zip_path: str | os.PathLike, target_dir: str | os.PathLike) -> list[str]:
    """Extract the zip archive ``zip_path`` into the new directory ``target_dir``.

    Every entry is checked before anything is written: an absolute path, a drive letter, a
    ``..`` component or a symbolic-link entry makes the whole archive refused. The members
    are extracted into a temporary sibling directory that is renamed to ``target_dir`` only
    when every member has been written; on any failure it is removed, so ``target_dir`` is
    either complete or absent.

    Args:
        zip_path: the archive to read.
        target_dir: the directory to create; it must not exist yet.

    Returns:
        The archive's member names (as stored in the archive, directories included), in
        archive order.

    Raises:
        FileExistsError: ``target_dir`` already exists.
        DataError: the archive is missing, truncated/corrupt (including CRC errors), or
            has an unsafe entry (naming the archive and the entry).
    """
    zip_path = Path(zip_path)
    target = Path(target_dir)
    if target.exists() or target.is_symlink():
        raise FileExistsError(
            f"extraction target {target} already exists; delete it to extract {zip_path} again"
        )
    if not zip_path.is_file():
        raise DataError(f"zip archive {zip_path} does not exist; download it first")

    try:
        archive = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
        raise _corrupt(zip_path, exc) from exc

    with archive:
        infos = archive.infolist()
        for info in infos:
            reason = _unsafe_reason(info)
            if reason is not None:
                raise DataError(
                    f"zip archive {zip_path} has an unsafe entry {info.filename!r} ({reason}); "
                    "refusing to extract anything from it"
                )

        target.parent.mkdir(parents=True, exist_ok=True)
        temp = _make_temp_sibling(target)
        try:
            root = temp.resolve()
            for info in infos:
                relative = PurePosixPath(info.filename.replace("\\", "/"))
                out_path = temp.joinpath(*[p for p in relative.parts if p not in ("", ".")])
                # Defence in depth: the checks above should make this impossible.
                if root != out_path.resolve() and root not in out_path.resolve().parents:
                    raise DataError(
                        f"zip archive {zip_path} has an unsafe entry {info.filename!r} "
                        "(it resolves outside the target directory); refusing to extract"
                    )
                if info.is_dir():
                    out_path.mkdir(parents=True, exist_ok=True)
                    continue
                out_path.parent.mkdir(parents=True, exist_ok=True)
                try:
                    with archive.open(info) as src, open(out_path, "wb") as dst:
                        shutil.copyfileobj(src, dst, _MIB)
                except (zipfile.BadZipFile, EOFError, zlib.error, NotImplementedError) as exc:
                    raise _corrupt(zip_path, exc) from exc
            if target.exists() or target.is_symlink():
                raise FileExistsError(
                    f"extraction target {target} appeared while extracting {zip_path}; "
                    "delete it to extract again"
                )
            os.rename(temp, target)
        except BaseException:
            shutil.rmtree(temp, ignore_errors=True)
            raise
        return [info.filename for info in infos]


def fetch_and_extract(
    url: str,
    sha256: str | None,
    archive_path: str | os.PathLike,
    target_dir: str | os.PathLike,
) -> dict:
    """Download the zip at ``url`` to ``archive_path`` and extract it into ``target_dir``.

    See :func:`download` (resume, checksum) and :func:`safe_extract_zip` (safety, atomicity).

    Args:
        url: where the archive lives.
        sha256: its expected SHA-256 hex digest, or None (a warning says it was not verified).
        archive_path: where the downloaded archive is kept.
        target_dir: the directory to create with the archive's contents (must not exist).

    Returns:
        ``{"archive": str(archive_path), "sha256": digest, "verified": bool}`` where
        ``verified`` tells whether the digest was checked against ``sha256``.
    """
    digest = download(url, archive_path, sha256=sha256)
    safe_extract_zip(archive_path, target_dir)
    return {"archive": str(archive_path), "sha256": digest, "verified": sha256 is not None}


def check_download_record(
    record_path: str | os.PathLike,
    url: str,
    sha256: str | None,
    key: str = "broden.download.sha256",
    url_key: str = "broden.download.url",
) -> dict | None:
    """Check a pinned SHA-256 against the digest a finished download recorded.

    ``record_path`` is the JSON object a download wrote (``cnninterp data fetch-broden --info``:
    ``{"url": ..., "sha256": <the archive's computed digest>, "verified": ...}``). The pin is
    a check, not a setting that changes the data: the archive is what ``url`` served, and its
    digest is recorded whether or not a pin was given. So a workflow can pin the digest a run
    recorded without downloading (or re-sharding) anything, and still refuse an archive whose
    bytes differ from the pin.

    Args:
        record_path: the download's record (JSON).
        url: the configured URL.
        sha256: the configured (pinned) digest, 64 hex digits, or None (nothing to check).
        key: the configuration key of ``sha256``, named in errors.
        url_key: the configuration key of ``url``, named in errors.

    Returns:
        The record (a dict) when it describes a download of ``url``; None when there is no
        record yet or it records another URL (the archive is to be downloaded, and checked once
        that is done).

    Raises:
        DataError: the record is unreadable or has no 64-hex ``sha256`` (naming the file), or
            ``sha256`` is given and differs from the recorded digest (naming ``key``, the
            expected and the actual digest, and the URL).
    """
    path = Path(record_path)
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise DataError(
            f"download record {path} is unreadable ({exc}); delete it to download {url} again"
        ) from None
    if not isinstance(record, dict) or not _HEX64.match(str(record.get("sha256", ""))):
        raise DataError(
            f"download record {path} has no SHA-256 of 64 hexadecimal digits; "
            f"delete it to download {url} again"
        )
    if record.get("url") != url:
        return None
    expected = _normalise_sha256(sha256)
    actual = record["sha256"]
    if expected is not None and actual != expected:
        raise DataError(
            f"{key} is {expected} but the archive downloaded from {url} has SHA-256 {actual} "
            f"(recorded in {path}). If that archive is the one you want, set {key} to {actual}; "
            f"otherwise fix {url_key} (or delete {path} to download again)"
        )
    return record
