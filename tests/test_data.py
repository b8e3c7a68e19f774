import io

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from tasks.encode.shard_format import write_shard
from tasks.training.data import OrderedBatches, TokenSamples
from tasks.training.sampling import GlobalOrderSampler, sample_order
from tasks.training.schedule import lr_factor


def _shards(tmp_path, sizes):
    paths, start = [], 0
    for i, n in enumerate(sizes):
        buf = io.BytesIO()
        write_shard(buf, np.arange(start, start + n) % 60000, n_docs=1, vocab_size=65536)
        p = tmp_path / f"s{i}.bin"
        p.write_bytes(buf.getvalue())
        paths.append(p)
        start += n
    return paths


def test_samples_span_shards_and_targets_shift_by_one(tmp_path):
    ds = TokenSamples(_shards(tmp_path, [100, 50, 5]), block_size=8)
    assert len(ds) == 99 // 8 + 49 // 8  # the 5-token shard is too short to hold a sample
    x, y = ds[[0, 11, 12, 17]]
    assert x.shape == (4, 8) and x.dtype == torch.int64
    assert torch.equal(x[:, 1:], y[:, :-1])
    assert x[0, 0] == 0 and x[1, 0] == 88 and x[2, 0] == 100 and x[3, 0] == 140
    with pytest.raises(IndexError):
        ds[[len(ds)]]


def _stream(n, batch, steps, world, rounds=2, seed=3):
    """The global batches of `rounds` rounds: each step's rank batches concatenated."""
    samplers = [GlobalOrderSampler(n, batch, steps, seed, r, world) for r in range(world)]
    out = []
    for rnd in range(rounds):
        per_rank = []
        for s in samplers:
            s.set_epoch(rnd)
            per_rank.append(list(s))
        out += [sum((per_rank[r][i] for r in range(world)), []) for i in range(steps)]
    return out


def test_global_stream_is_the_same_for_one_or_two_ranks():
    assert _stream(100, batch=8, steps=5, world=1) == _stream(100, batch=4, steps=5, world=2)


def test_every_sample_seen_once_per_epoch_across_ranks():
    n, batch, world = 96, 4, 2
    stream = _stream(n, batch=batch, steps=n // (batch * world), world=world, rounds=1)
    flat = [i for b in stream for i in b]
    assert sorted(flat) == list(range(n))
    # The next epoch is another permutation.
    assert list(sample_order(np.arange(n, 2 * n), n, 3)) != flat


def test_order_does_not_depend_on_loader_workers(tmp_path):
    ds = TokenSamples(_shards(tmp_path, [4000]), block_size=16)
    batches = {}
    for workers in (0, 2):
        sampler = GlobalOrderSampler(len(ds), 4, 6, seed=1, rank=0, world_size=1)
        sampler.set_epoch(0)
        loader = DataLoader(ds, sampler=sampler, batch_size=None, num_workers=workers)
        batches[workers] = [x for x, _ in loader]
    assert all(torch.equal(a, b) for a, b in zip(batches[0], batches[2])) and len(batches[0]) == 6


def test_state_after_k_batches_resumes_with_exactly_the_next_batch():
    full = GlobalOrderSampler(1000, 4, 10, seed=7, rank=1, world_size=2)
    full.set_epoch(2)
    reference = list(full)
    first = GlobalOrderSampler(1000, 4, 10, seed=7, rank=1, world_size=2)
    first.set_epoch(2)
    it = iter(first)
    seen = [next(it) for _ in range(3)]
    state = first.state_dict()
    resumed = GlobalOrderSampler(1000, 4, 10, seed=7, rank=1, world_size=2)
    resumed.load_state_dict(state)
    resumed.set_epoch(2)  # Lightning's call on restart must not undo the restored position
    assert len(resumed) == 7  # the round still ends where it would have
    assert seen + list(resumed) == reference


def test_empty_training_set_is_refused():
    with pytest.raises(ValueError, match="no training samples"):
        GlobalOrderSampler(0, 4, 10, seed=1, rank=0, world_size=1)


def test_ordered_batches_split_ranks_without_overlap():
    r0 = [p for batch in OrderedBatches(100, 4, 100, rank=0, world_size=2) for p in batch]
    r1 = [p for batch in OrderedBatches(100, 4, 100, rank=1, world_size=2) for p in batch]
    assert not set(r0) & set(r1) and sorted(r0 + r1) == list(range(100))


def test_lr_schedule_warms_up_then_decays_to_floor():
    f = [lr_factor(s, warmup_steps=10, max_steps=100, min_ratio=0.1) for s in range(101)]
    assert f[0] == 0.1 and f[9] == 1.0
    assert all(a >= b for a, b in zip(f[10:], f[11:]))
    assert abs(f[100] - 0.1) < 1e-9
