"""broden.source = download through the CLI: a Broden zip served over HTTP -> folder -> shards.

The zip has the official archive's shape (everything under broden1_224/); the manifest records
the archive's computed sha256 and that it was not verified when no checksum was configured.
"""

import functools
import hashlib
import http.server
import json
import re
import subprocess
import sys
import threading
import zipfile
from collections import Counter

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


def _zip_folder(folder, archive, extra=b""):
    """``folder`` zipped as the official archive is laid out (everything under broden1_224/);
    ``extra`` bytes, when given, go into one more member (another archive, another digest)."""
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zf.write(path, "broden1_224/" + path.relative_to(folder).as_posix())
        if extra:
            zf.writestr("broden1_224/README.txt", extra)
    return archive.as_uri(), hashlib.sha256(archive.read_bytes()).hexdigest()


@pytest.mark.slow
def test_pinning_the_recorded_digest_reruns_nothing_and_a_wrong_pin_is_refused(broden_dir, tmp_path):
    """broden.source = download in the real Snakefile, served from a file:// URL (no network):
    the download and the shards run unpinned; pinning the digest they recorded plans exactly
    what the unpinned config plans (no download, no sharding); a new URL downloads again, and
    an archive whose digest is not the pin is refused, naming the key and both digests, before
    any shard is made (check_download_record's other cases: tests/test_download.py). On the
    way: the dissection jobs' memory requests follow the image size the shards recorded (64
    px), not 224 px."""
    import yaml

    from dag import edited_plan, JOB, make_workdir, methods_off, snakemake, TINY, WILDCARDS

    url, digest = _zip_folder(broden_dir, tmp_path / "a.zip")
    config = yaml.safe_load(TINY + methods_off())
    config["broden"].update(source="download", download={"url": url, "sha256": None})
    # a batch whose maps at 224 px would need more than the 2000-MB floor, at 64 px less
    config["dissect"]["defaults"]["batch_size"] = 500
    work = make_workdir(tmp_path / "work", yaml.safe_dump(config))
    manifest = work / "results/shards/broden/manifest.json"
    proc = snakemake(work, "--cores", "1", str(manifest.relative_to(work)))
    assert proc.returncode == 0, proc.stderr[-3000:]
    recorded = json.loads(manifest.read_text())["source"]
    assert recorded["sha256"] == digest and recorded["url"] == url

    def rules(plan):
        return {rule for rule, _ in plan}

    plan_text = snakemake(work, "-n").stdout  # what planned() parses, read here for the requests too
    unpinned = Counter((name, (WILDCARDS.search(body) or [None, ""])[1]) for name, body in JOB.findall(plan_text))
    assert not rules(unpinned) & {"broden_download", "broden_shards"}, unpinned
    assert "dissect_quantiles" in rules(unpinned)  # the shards exist: the dissections are planned

    # the requests follow the images' own size (64 px, recorded in the manifest), not 224 px
    assert json.loads(manifest.read_text())["image_size"] == {"max_height": 64, "max_width": 64}
    from cnninterp.dissect.resources import job_resources, layer_shapes

    at_224 = job_resources("quantiles", layer_shapes("resnet10", ["layer3", "layer4"], 224), 500, 1, 1, 1)
    assert at_224["mem_mb"] > 2000, at_224
    requests = [re.search(r"mem_mb=(\d+)", body).group(1) for name, body in JOB.findall(plan_text) if name == "dissect_quantiles"]
    assert requests and set(requests) == {"2000"}, requests
    pinned = edited_plan(work, lambda c: c["broden"]["download"].update(sha256=digest))
    assert pinned == unpinned

    # another archive at another URL, pinned to the first one's digest: the URL change plans the
    # download and the sharding again; the new archive is downloaded, then refused before sharding
    url_b, digest_b = _zip_folder(broden_dir, tmp_path / "b.zip", extra=b"another archive\n")
    config["broden"]["download"] = {"url": url_b, "sha256": digest}
    (work / "tiny.yaml").write_text(yaml.safe_dump(config))
    before = manifest.read_bytes()
    proc = snakemake(work, "--cores", "1", str(manifest.relative_to(work)))
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    stats = dict(re.findall(r"^(broden_\w+) +(\d+)$", output, re.M))  # the run's job stats
    assert stats == {"broden_download": "1", "broden_shards": "1"}, output[-3000:]
    for text in ("broden.download.sha256", digest, digest_b):
        assert text in output, output[-3000:]
    assert json.loads((work / "results/data/broden/download.json").read_text())["url"] == url_b
    assert manifest.read_bytes() == before  # no shard job ran on the refused archive
