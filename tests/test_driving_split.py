"""Real driving recordings: the held-out sequences lie a gap of at least one sequence away from
every training frame of their recording (neighbouring frames, 50 ms apart, are near copies)."""

import numpy as np
import pytest

from cnninterp.data import driving


def recordings(lengths):
    """Recordings whose angle is 1000 · recording + frame number, so a sequence read back says where it came from."""
    return [driving.Recording(f"r{k}", np.zeros((n, 3, 8, 8), np.uint8), (1000.0 * k + np.arange(n)).astype(np.float32))
            for k, n in enumerate(lengths)]


@pytest.mark.parametrize("lengths, test_every, rule", [
    ([400], 5, "block"),                # the reviewer's case: one 20 s recording, sequences of 8
    ([90, 45, 7, 200], 5, "block"),     # fewer recordings than test_every: a block at each end
    ([40, 33, 60, 25, 48, 30], 3, "whole"),
])
def test_no_test_frame_has_a_training_frame_of_its_recording_within_a_sequence(tmp_path, lengths, test_every, rule):
    seq_len = 8
    m = driving.convert_recordings(recordings(lengths), tmp_path / "s", seq_len=seq_len, test_every=test_every, source={"path": "x"})
    test, train = (driving.load_split(tmp_path / "s", split)["angle"].astype(np.int64) for split in ("test", "train"))
    windows = sum(n // seq_len for n in lengths)
    assert len(test) + len(train) + m["split"]["gap_sequences"] == windows  # every sequence counted once
    assert m["splits"]["test"]["samples"] == len(test) and len(test) >= windows // test_every // 2
    train_frames = {}
    for value in train.ravel():
        train_frames.setdefault(value // 1000, []).append(value % 1000)
    for value in test.ravel():
        near = np.asarray(train_frames.get(value // 1000, [10**6]))
        assert np.abs(near - value % 1000).min() > seq_len, (value // 1000, value % 1000)
    if rule == "whole":
        assert m["split"]["rule"] == "whole drives" and m["split"]["gap_sequences"] == 0
        assert m["split"]["test_recordings"] == ["r2", "r5"]  # every 3rd recording
    else:
        assert m["split"]["gap_sequences"] == sum(1 for n in lengths if n // seq_len >= 3)
        assert set(m["split"]["test_recordings"]) == {f"r{k}" for k, n in enumerate(lengths) if n // seq_len >= 3}


def test_split_windows_by_hand():
    assert driving.split_windows([10], 5) == [["train"] * 7 + ["gap"] + ["test"] * 2]
    assert driving.split_windows([2, 3], 5) == [["train"] * 2, ["train", "gap", "test"]]
    assert driving.split_windows([1, 0, 2, 1], 2) == [["train"], [], ["test"] * 2, ["train"]]


def test_pieces_of_a_udacity_drive_cut_at_a_time_gap_stay_on_one_side_of_the_split(tmp_path):
    """Four drives in the Udacity layout, each cut by a 2-s gap into two pieces: the split holds out
    whole drives (with the pieces counted as recordings, every 2nd piece was held out, the second
    piece of each drive tested seconds after its first piece trained)."""
    from test_attention_data import write_udacity

    for k in range(4):
        write_udacity(tmp_path / "ud" / f"drive{k}", n=8, gap_at=4, angle0=float(k))  # angle: drive k + 0.01 frame
    recs = driving.read_udacity(tmp_path / "ud", 8, 8, max_gap_s=0.5)
    assert [(r.drive, len(r.angle)) for r in recs] == [(f"drive{k}", 4) for k in range(4) for _ in range(2)]
    m = driving.convert_recordings(recs, tmp_path / "s", seq_len=2, test_every=2, source={"kind": "udacity"})
    drive_of = lambda split: set(np.floor(driving.load_split(tmp_path / "s", split)["angle"] + 1e-4).astype(int).ravel())  # noqa: E731
    assert drive_of("test") == {1, 3} and drive_of("train") == {0, 2}
    assert m["split"]["test_drives"] == ["drive1", "drive3"] and m["split"]["rule"] == "whole drives"
    assert m["splits"]["test"]["samples"] == m["splits"]["train"]["samples"] == 8  # 2 drives x 2 pieces x 2 sequences


def test_split_windows_keeps_a_drives_pieces_together_by_hand():
    # drives a (pieces 0, 1), b (2), c (3, 4); test_every 3: every 3rd drive (c) held out whole
    assert driving.split_windows([2, 1, 3, 1, 1], 3, ["a", "a", "b", "c", "c"]) == [
        ["train"] * 2, ["train"], ["train"] * 3, ["test"], ["test"]]
    # fewer drives than test_every: a block at the end of each drive over its pieces in order (a: n 5, block 1)
    assert driving.split_windows([3, 2, 1], 5, ["a", "a", "b"]) == [["train"] * 3, ["gap", "test"], ["train"]]
