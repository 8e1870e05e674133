"""Decoding ahead in a thread: the same items in the same order, errors where they happen, no
thread left behind; the dissection's activation stream equals its serial path."""

import threading

import pytest
import torch

from cnninterp.data.prefetch import prefetch
from cnninterp.data.shards import shard_paths
from cnninterp.dissect.activations import activation_batches
from cnninterp.models.backbones import random_model


def test_order_and_content_equal_the_serial_iterator():
    assert list(prefetch(iter(range(100)), depth=3)) == list(range(100))
    assert list(prefetch(iter(range(5)), depth=0)) == list(range(5))


def test_a_producer_error_is_raised_at_its_item():
    def items():
        yield 1
        yield 2
        raise ValueError("bad sample 3")

    got = []
    with pytest.raises(ValueError, match="bad sample 3"):
        for item in prefetch(items(), depth=2):
            got.append(item)
    assert got == [1, 2]


def test_stopping_early_joins_the_thread():
    before = threading.active_count()
    stream = prefetch(iter(range(10_000)), depth=2)
    assert next(stream) == 0
    stream.close()
    assert threading.active_count() == before


def test_activation_stream_with_prefetch_equals_the_serial_stream(broden_shards):
    model = random_model("resnet10", seed=0)
    paths = shard_paths(broden_shards)
    serial = list(activation_batches(model, ["layer2", "layer4"], paths, "imagenet", 7, "cpu", prefetch_depth=0))
    ahead = list(activation_batches(model, ["layer2", "layer4"], paths, "imagenet", 7, "cpu", prefetch_depth=2))
    assert [b["keys"] for b, _ in serial] == [b["keys"] for b, _ in ahead]
    for (_, a), (_, b) in zip(serial, ahead):
        for name in a:
            assert torch.equal(a[name], b[name])
