"""Training shards are opened when first read and checked once per node, and an epoch read
window by window still sees every sample once, in an order that does not depend on the world size."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest

from tasks.encode.shard_format import ShardFormatError, write_shard
from tasks.training.data import TokenSamples
from tasks.training.sampling import GlobalOrderSampler, WindowedOrder
from tasks.training.shard_store import Shard, ShardStore


def _shard(path, n, start=0):
    buf = io.BytesIO()
    write_shard(buf, np.arange(start, start + n) % 500, n_docs=1, vocab_size=512)
    path.write_bytes(buf.getvalue())
    import hashlib

    return Shard(str(path), n, hashlib.sha256(buf.getvalue()).hexdigest())


def test_a_local_shard_is_checked_once_per_node(tmp_path):
    shard = _shard(tmp_path / "a.bin", 100)
    store = ShardStore(tmp_path / "cache", vocab_size=512)
    assert store.local(shard) == tmp_path / "a.bin"
    # Change a token without changing size or time: a second worker on the node trusts the verdict
    # (no second read of the whole shard)...
    st = os.stat(shard.uri)
    data = bytearray((tmp_path / "a.bin").read_bytes())
    data[-1] ^= 1
    (tmp_path / "a.bin").write_bytes(bytes(data))
    os.utime(shard.uri, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert ShardStore(tmp_path / "cache", vocab_size=512).local(shard)
    # ...and checks again once the file has changed.
    os.utime(shard.uri, ns=(st.st_atime_ns, st.st_mtime_ns + 1))
    with pytest.raises(ShardFormatError, match="sha256"):
        ShardStore(tmp_path / "cache", vocab_size=512).local(shard)
    # Another vocabulary is another verdict.
    with pytest.raises(ShardFormatError):
        ShardStore(tmp_path / "cache", vocab_size=300).local(_shard(tmp_path / "b.bin", 50))


def test_samples_open_no_shard_until_a_batch_reads_it(tmp_path):
    present = _shard(tmp_path / "a.bin", 100)
    missing = Shard(str(tmp_path / "not-yet.bin"), 1000, "0" * 64)
    ds = TokenSamples([present, missing], block_size=8, store=ShardStore(tmp_path / "cache", vocab_size=512))
    assert len(ds) == 99 // 8 + 999 // 8  # counted from the manifest's token counts
    x, _ = ds[[0, 1]]
    assert x[1, 0] == 8
    with pytest.raises(FileNotFoundError):
        ds[[len(ds) - 1]]
    # A shard whose header disagrees with the manifest is refused by name.
    wrong = Shard(present.uri, 99, present.sha256)
    with pytest.raises(ShardFormatError, match="a.bin"):
        TokenSamples([wrong], 8, ShardStore(tmp_path / "cache2", vocab_size=512))[[0]]


def test_an_epoch_read_window_by_window_sees_every_sample_once():
    counts = np.array([5, 3, 0, 7, 2, 9, 4, 6])
    first = np.concatenate([[0], np.cumsum(counts)])
    order = WindowedOrder(counts, seed=3, window=3)
    n = int(counts.sum())
    for epoch in (0, 1):
        got = order(np.arange(epoch * n, (epoch + 1) * n))
        assert sorted(got) == list(range(n))
        shards = np.searchsorted(first, got, side="right") - 1
        # The stream is the windows one after another: each stretch reads exactly its 3 shards.
        shuffled, starts = order._layout(epoch)
        for w, (a, b) in enumerate(zip(starts, starts[1:])):
            window = shuffled[w * 3:(w + 1) * 3]
            assert set(shards[a:b]) == {s for s in window if counts[s]} and b - a == counts[window].sum()
    assert list(order(np.arange(n))) != list(order(np.arange(n, 2 * n)))  # reshuffled per epoch
    assert list(WindowedOrder(counts, 3, 3)(np.arange(n))) == list(order(np.arange(n)))  # pure function


def test_windowed_stream_is_the_same_for_any_world_size():
    counts = np.array([40, 25, 60, 10, 33])
    n = int(counts.sum())

    def stream(world):
        samplers = [GlobalOrderSampler(n, 4 // world, 5, 7, r, world, WindowedOrder(counts, 7, 2)) for r in range(world)]
        steps = []
        for s in samplers:
            s.set_epoch(0)
        for batches in zip(*[iter(s) for s in samplers]):
            steps.append(sorted(i for b in batches for i in b))
        return steps

    assert stream(1) == stream(2) == stream(4)
