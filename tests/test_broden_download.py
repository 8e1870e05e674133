"""broden.source = download through the CLI: a Broden zip served over HTTP -> folder -> shards.

The zip has the official archive's shape (everything under broden1_224/); the manifest records
the archive's computed sha256 and that it was not verified when no checksum was configured.
"""

import functools
import hashlib
import http.server
import json
import subprocess
import sys
import threading
import zipfile

import pytest


@pytest.fixture
def served_zip(broden_dir, tmp_path):
    archive = tmp_path / "www" / "broden1_224.zip"
    archive.parent.mkdir()
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(broden_dir.rglob("*")):
            if path.is_file():
                zf.write(path, "broden1_224/" + path.relative_to(broden_dir).as_posix())
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(archive.parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/broden1_224.zip", hashlib.sha256(archive.read_bytes()).hexdigest()
    server.shutdown()


def cli(*args):
    return subprocess.run([sys.executable, "-m", "cnninterp.cli", *args], capture_output=True, text=True)


def test_download_unzip_shard_records_the_archive_checksum(served_zip, tmp_path):
    url, digest = served_zip
    folder, info, shards = tmp_path / "download", tmp_path / "download.json", tmp_path / "shards"
    proc = cli("data", "fetch-broden", "--url", url, "--archive", str(tmp_path / "b.zip"), "--out", str(folder), "--info", str(info))
    assert proc.returncode == 0, proc.stderr
    assert "without a checksum to verify it against" in proc.stderr and digest in proc.stderr
    proc = cli("data", "shard-broden", "--broden", str(folder), "--out", str(shards), "--shard-size", "50", "--source", json.dumps({"kind": "download"}), "--source-file", str(info))
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads((shards / "manifest.json").read_text())
    assert manifest["source"] == {**manifest["source"], "kind": "download", "url": url, "sha256": digest, "verified": False}
    assert sum(s["samples"] for s in manifest["splits"].values()) == 40


def test_wrong_checksum_stops_before_anything_is_extracted(served_zip, tmp_path):
    url, digest = served_zip
    wrong = ("0" if digest[0] != "0" else "1") + digest[1:]
    proc = cli("data", "fetch-broden", "--url", url, "--sha256", wrong, "--archive", str(tmp_path / "b.zip"), "--out", str(tmp_path / "download"))
    assert proc.returncode == 2
    assert wrong in proc.stderr and digest in proc.stderr
    assert not (tmp_path / "download").exists() and not (tmp_path / "b.zip").exists()
