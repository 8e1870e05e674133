"""The shard writer refuses what the reader would silently change, and leaves nothing behind."""

import pytest

from cnninterp.data.shards import iter_samples, shard_paths, write_shards
from cnninterp.errors import DataError


def _samples(field):
    return [("train", {"__key__": f"{i:04d}", field: b"x" * (i + 1)}) for i in range(3)]


def test_a_lower_case_field_round_trips(tmp_path):
    write_shards(_samples("seg.npy"), tmp_path, 2, {})
    back = list(iter_samples(shard_paths(tmp_path)))
    assert [s["__key__"] for s in back] == ["0000", "0001", "0002"]
    assert [s["seg.npy"] for s in back] == [b"x", b"xx", b"xxx"]


def test_the_reader_lower_cases_suffixes_so_the_writer_refuses_capitals(tmp_path):
    # what the check protects against: webdataset's own writer and reader turn "K.npy" into "k.npy"
    import webdataset as wds

    with wds.TarWriter(str(tmp_path / "raw.tar")) as sink:
        sink.write({"__key__": "0000", "K.npy": b"abc"})
    from webdataset.tariterators import group_by_keys, tar_file_expander

    with (tmp_path / "raw.tar").open("rb") as stream:
        (sample,) = group_by_keys(tar_file_expander([{"stream": stream, "url": "raw"}]))
    assert "K.npy" not in sample and sample["k.npy"] == b"abc"

    out = tmp_path / "shards"
    with pytest.raises(DataError, match=r"field name 'K\.npy' must be lower-case.*'k\.npy'"):
        write_shards(_samples("K.npy"), out, 2, {})
    assert not any(out.iterdir())  # no shard, no manifest, no temporary file
