"""Tests of cnninterp.data.download against a local HTTP server on 127.0.0.1 (no internet)."""

from __future__ import annotations

import hashlib
import random
import stat
import sys
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

try:
    import cnninterp  # noqa: F401
except ImportError:  # running from a checkout without an installed package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow"))

from cnninterp.data.download import (  # noqa: E402
    DataError,
    check_download_record,
    download,
    fetch_and_extract,
    safe_extract_zip,
    sha256_file,
)

# ---------------------------------------------------------------------------------------------
# Local HTTP server
# ---------------------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    """Serves files from ``server.root``; honours ``Range: bytes=N-`` unless told not to.

    Settings on the server object:
      * ``ignore_range``: answer 200 with the whole file even when a Range was asked for;
      * ``cut_after``: send only this many body bytes, then close the connection (one-shot);
      * ``requests``: a list of ``(path, Range header or None)`` for every GET seen.
    """

    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # noqa: A002 - silence the default stderr logging
        pass

    def do_GET(self):  # noqa: N802 - http.server's naming
        server = self.server
        range_header = self.headers.get("Range")
        with server.lock:
            server.requests.append((self.path, range_header))
            cut_after = server.cut_after
            server.cut_after = None

        path = server.root / self.path.lstrip("/")
        if not path.is_file():
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            return
        data = path.read_bytes()
        size = len(data)

        start = None
        if range_header and not server.ignore_range:
            spec = range_header.strip()
            assert spec.startswith("bytes=") and spec.endswith("-"), spec
            start = int(spec[len("bytes=") : -1])

        if start is not None and start >= size:
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{size}")
            self.send_header("Content-Length", "0")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            return

        if start is not None:
            body = data[start:]
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
        else:
            body = data
            self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Connection", "close")
        self.end_headers()
        if cut_after is not None:
            body = body[:cut_after]
        self.wfile.write(body)
        self.wfile.flush()
        self.close_connection = True


@pytest.fixture
def http_server(tmp_path):
    root = tmp_path / "served"
    root.mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    server.root = root
    server.ignore_range = False
    server.cut_after = None
    server.requests = []
    server.lock = threading.Lock()
    server.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _payload(size: int = 300_000, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


def _serve(server, name: str, data: bytes) -> tuple[str, str]:
    (server.root / name).write_bytes(data)
    return f"{server.base_url}/{name}", hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------------------------------------
# sha256_file / download
# ---------------------------------------------------------------------------------------------


def test_sha256_file_matches_hashlib(tmp_path):
    data = _payload(3 * (1 << 20) + 17)
    path = tmp_path / "blob"
    path.write_bytes(data)
    assert sha256_file(path) == hashlib.sha256(data).hexdigest()


def test_full_download(http_server, tmp_path):
    data = _payload()
    url, digest = _serve(http_server, "file.bin", data)
    dest = tmp_path / "out" / "file.bin"

    result = download(url, dest, sha256=digest, chunk_size=8192)

    assert result == digest
    assert dest.read_bytes() == data
    assert not (tmp_path / "out" / "file.bin.part").exists()
    assert http_server.requests == [("/file.bin", None)]


def test_existing_dest_with_matching_checksum_is_not_downloaded(http_server, tmp_path):
    data = _payload()
    url, digest = _serve(http_server, "file.bin", data)
    dest = tmp_path / "file.bin"
    dest.write_bytes(data)

    assert download(url, dest, sha256=digest) == digest
    assert http_server.requests == []


def test_interrupted_download_resumes_with_range(http_server, tmp_path):
    data = _payload()
    url, digest = _serve(http_server, "file.bin", data)
    dest = tmp_path / "file.bin"
    part = tmp_path / "file.bin.part"
    cut = 100_000

    http_server.cut_after = cut
    with pytest.raises(DataError) as excinfo:
        download(url, dest, sha256=digest, chunk_size=8192)
    assert url in str(excinfo.value)
    assert part.exists() and part.stat().st_size == cut
    assert not dest.exists()

    assert download(url, dest, sha256=digest, chunk_size=8192) == digest
    assert http_server.requests[-1] == ("/file.bin", f"bytes={cut}-")
    assert dest.read_bytes() == data
    assert not part.exists()


def test_server_ignoring_range_restarts_from_zero(http_server, tmp_path):
    data = _payload()
    url, digest = _serve(http_server, "file.bin", data)
    dest = tmp_path / "file.bin"
    part = tmp_path / "file.bin.part"
    part.write_bytes(data[:50_000])
    http_server.ignore_range = True

    assert download(url, dest, sha256=digest, chunk_size=8192) == digest
    assert http_server.requests[-1] == ("/file.bin", "bytes=50000-")
    assert dest.read_bytes() == data
    assert not part.exists()


def test_complete_part_answered_416_is_finalised(http_server, tmp_path):
    data = _payload()
    url, digest = _serve(http_server, "file.bin", data)
    dest = tmp_path / "file.bin"
    (tmp_path / "file.bin.part").write_bytes(data)

    assert download(url, dest, sha256=digest) == digest
    assert http_server.requests[-1] == ("/file.bin", f"bytes={len(data)}-")
    assert dest.read_bytes() == data


def test_checksum_mismatch_raises_and_cleans_up(http_server, tmp_path):
    data = _payload()
    url, actual = _serve(http_server, "file.bin", data)
    wrong = hashlib.sha256(b"something else").hexdigest()
    dest = tmp_path / "file.bin"

    with pytest.raises(DataError) as excinfo:
        download(url, dest, sha256=wrong)
    message = str(excinfo.value)
    assert url in message and wrong in message and actual in message
    assert not dest.exists()
    assert not (tmp_path / "file.bin.part").exists()


def test_no_checksum_warns_and_returns_digest(http_server, tmp_path):
    data = _payload()
    url, digest = _serve(http_server, "file.bin", data)
    dest = tmp_path / "file.bin"

    with pytest.warns(UserWarning, match="checksum") as record:
        result = download(url, dest)
    assert result == digest
    assert any(url in str(w.message) and digest in str(w.message) for w in record)
    assert dest.read_bytes() == data


def test_http_error_raises_data_error(http_server, tmp_path):
    url = f"{http_server.base_url}/missing.bin"
    with pytest.raises(DataError, match="404") as excinfo:
        download(url, tmp_path / "missing.bin", sha256="0" * 64)
    assert url in str(excinfo.value)
    assert not (tmp_path / "missing.bin").exists()


def test_connection_refused_raises_data_error(tmp_path):
    with ThreadingHTTPServer(("127.0.0.1", 0), _Handler) as probe:
        port = probe.server_address[1]
    url = f"http://127.0.0.1:{port}/file.bin"  # nothing listens there any more
    with pytest.raises(DataError) as excinfo:
        download(url, tmp_path / "file.bin", sha256="0" * 64, timeout=5)
    assert url in str(excinfo.value)


# ---------------------------------------------------------------------------------------------
# safe_extract_zip
# ---------------------------------------------------------------------------------------------


def _write_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _listing(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def test_valid_zip_extracts_exactly_its_members(tmp_path):
    members = {
        "a.txt": b"alpha\n",
        "sub/b.bin": _payload(70_000, seed=1),
        "sub/deeper/c.txt": b"",
    }
    archive = _write_zip(tmp_path / "good.zip", members)
    target = tmp_path / "extracted"

    names = safe_extract_zip(archive, target)

    assert sorted(names) == sorted(members)
    files = {str(p.relative_to(target)).replace("\\", "/") for p in target.rglob("*") if p.is_file()}
    assert files == set(members)
    for name, data in members.items():
        assert (target / name).read_bytes() == data
    # nothing else next to the target (the temporary sibling directory was renamed away)
    assert {p.name for p in tmp_path.iterdir()} == {"good.zip", "extracted"}


def test_zip_with_parent_component_is_refused(tmp_path):
    archive = _write_zip(tmp_path / "evil.zip", {"good.txt": b"ok", "../evil.txt": b"pwned"})
    before = _listing(tmp_path)
    target = tmp_path / "sub" / "target"

    with pytest.raises(DataError) as excinfo:
        safe_extract_zip(archive, target)
    message = str(excinfo.value)
    assert "../evil.txt" in message and str(archive) in message
    assert not target.exists()
    assert not (tmp_path / "sub" / "evil.txt").exists()
    assert not (tmp_path / "evil.txt").exists()
    assert _listing(tmp_path) - before <= {"sub"}
    assert not (tmp_path / "sub").exists() or not any((tmp_path / "sub").iterdir())


def test_zip_with_absolute_path_is_refused(tmp_path):
    archive = _write_zip(
        tmp_path / "abs.zip", {"ok.txt": b"ok", "/tmp/cnninterp-abs-evil.txt": b"pwned"}
    )
    with zipfile.ZipFile(archive) as zf:
        assert "/tmp/cnninterp-abs-evil.txt" in zf.namelist()
    target = tmp_path / "target"

    with pytest.raises(DataError, match="cnninterp-abs-evil"):
        safe_extract_zip(archive, target)
    assert not target.exists()


def test_zip_with_drive_letter_is_refused(tmp_path):
    archive = _write_zip(tmp_path / "drive.zip", {"C:/windows/evil.txt": b"pwned"})
    target = tmp_path / "target"
    with pytest.raises(DataError, match="drive"):
        safe_extract_zip(archive, target)
    assert not target.exists()


def test_zip_with_symlink_entry_is_refused(tmp_path):
    archive = tmp_path / "link.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("regular.txt", b"ok")
        info = zipfile.ZipInfo("link")
        info.create_system = 3  # Unix, so the mode bits in external_attr count
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "/etc/passwd")
    target = tmp_path / "target"

    with pytest.raises(DataError, match="link") as excinfo:
        safe_extract_zip(archive, target)
    assert "'link'" in str(excinfo.value)
    assert not target.exists()
    assert _listing(tmp_path) == {"link.zip"}


def test_truncated_zip_is_reported_as_corrupt(tmp_path):
    good = _write_zip(tmp_path / "full.zip", {"a.bin": _payload(50_000), "b.txt": b"bee"})
    raw = good.read_bytes()
    archive = tmp_path / "half.zip"
    archive.write_bytes(raw[: len(raw) // 2])
    target = tmp_path / "target"

    with pytest.raises(DataError, match="truncated or corrupt") as excinfo:
        safe_extract_zip(archive, target)
    assert str(archive) in str(excinfo.value)
    assert "download" in str(excinfo.value)
    assert not target.exists()


def test_crc_error_leaves_nothing_behind(tmp_path):
    data = b"x" * 10_000
    archive = tmp_path / "crc.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr("first.txt", b"first")
        zf.writestr("data.txt", data)
    raw = bytearray(archive.read_bytes())
    offset = raw.index(data)
    raw[offset + 5000] ^= 0xFF  # flip one stored byte: the CRC check fails on read
    archive.write_bytes(bytes(raw))
    target = tmp_path / "target"

    with pytest.raises(DataError, match="truncated or corrupt"):
        safe_extract_zip(archive, target)
    assert not target.exists()
    assert _listing(tmp_path) == {"crc.zip"}  # the temporary directory was removed


def test_existing_target_raises_file_exists(tmp_path):
    archive = _write_zip(tmp_path / "good.zip", {"a.txt": b"a"})
    target = tmp_path / "target"
    target.mkdir()
    (target / "keep.txt").write_text("keep")

    with pytest.raises(FileExistsError):
        safe_extract_zip(archive, target)
    assert _listing(target) == {"keep.txt"}


# ---------------------------------------------------------------------------------------------
# fetch_and_extract
# ---------------------------------------------------------------------------------------------


def test_fetch_and_extract(http_server, tmp_path):
    members = {"x/one.txt": b"one", "two.bin": _payload(20_000, seed=2)}
    src = _write_zip(tmp_path / "src.zip", members)
    url, digest = _serve(http_server, "data.zip", src.read_bytes())
    archive = tmp_path / "dl" / "data.zip"
    target = tmp_path / "dataset"

    result = fetch_and_extract(url, digest, archive, target)

    assert result == {"archive": str(archive), "sha256": digest, "verified": True}
    for name, data in members.items():
        assert (target / name).read_bytes() == data


# ---------------------------------------------------------------------------------------------
# check_download_record: a pinned digest against the one a finished download recorded
# ---------------------------------------------------------------------------------------------


def _record(tmp_path: Path, url: str, data: bytes) -> tuple[Path, str]:
    digest = hashlib.sha256(data).hexdigest()
    path = tmp_path / "download.json"
    path.write_text('{"url": "%s", "sha256": "%s", "verified": false}' % (url, digest))
    return path, digest


def test_pinned_digest_equal_to_the_recorded_one_passes(tmp_path):
    path, digest = _record(tmp_path, "http://x/a.zip", b"archive a")
    assert check_download_record(path, "http://x/a.zip", None)["sha256"] == digest
    assert check_download_record(path, "http://x/a.zip", digest.upper())["sha256"] == digest


def test_pinned_digest_other_than_the_recorded_one_names_key_and_both_digests(tmp_path):
    path, digest = _record(tmp_path, "http://x/a.zip", b"archive a")
    pin = hashlib.sha256(b"archive b").hexdigest()
    with pytest.raises(DataError) as info:
        check_download_record(path, "http://x/a.zip", pin, key="broden.download.sha256")
    message = str(info.value)
    assert "broden.download.sha256" in message and pin in message and digest in message
    assert str(path) in message


def test_no_record_or_a_record_of_another_url_is_not_checked_yet(tmp_path):
    pin = hashlib.sha256(b"archive b").hexdigest()
    assert check_download_record(tmp_path / "absent.json", "http://x/a.zip", pin) is None
    path, _ = _record(tmp_path, "http://x/a.zip", b"archive a")
    assert check_download_record(path, "http://x/other.zip", pin) is None


@pytest.mark.parametrize("text", ["{not json", '["a"]', '{"url": "http://x/a.zip", "sha256": "abc"}'])
def test_unreadable_record_names_the_file(tmp_path, text):
    path = tmp_path / "download.json"
    path.write_text(text)
    with pytest.raises(DataError, match="download.json"):
        check_download_record(path, "http://x/a.zip", None)
