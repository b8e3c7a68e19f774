import io

import numpy as np
import torch

from tasks.encode.shard_format import write_shard
from tasks.pretrain.data import RandomRounds, StridedBatches, TokenWindows
from tasks.pretrain.schedule import lr_factor


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


def test_windows_span_shards_and_targets_shift_by_one(tmp_path):
    ds = TokenWindows(_shards(tmp_path, [100, 50, 5]), block_size=8)
    assert len(ds) == (100 - 8) + (50 - 8)  # the 5-token shard is too short to hold a window
    x, y = ds[[0, 91, 92, 133]]
    assert x.shape == (4, 8) and x.dtype == torch.int64
    assert torch.equal(x[:, 1:], y[:, :-1])
    assert x[0, 0] == 0 and x[1, 0] == 91 and x[2, 0] == 100 and x[3, 0] == 141


def test_random_rounds_are_deterministic_per_round_and_rank():
    a = RandomRounds(1000, 4, 5, seed=1, rank=0, world_size=2)
    b = RandomRounds(1000, 4, 5, seed=1, rank=0, world_size=2)
    other_rank = RandomRounds(1000, 4, 5, seed=1, rank=1, world_size=2)
    a.set_epoch(3)
    b.set_epoch(3)
    other_rank.set_epoch(3)
    assert list(a) == list(b) and len(list(a)) == 5
    assert list(a) != list(other_rank)
    b.set_epoch(4)
    assert list(a) != list(b)


def test_strided_batches_split_ranks_without_overlap():
    r0 = [p for batch in StridedBatches(1000, 10, 4, 100, rank=0, world_size=2) for p in batch]
    r1 = [p for batch in StridedBatches(1000, 10, 4, 100, rank=1, world_size=2) for p in batch]
    assert not set(r0) & set(r1)
    assert all(p % 10 == 0 for p in r0 + r1)


def test_lr_schedule_warms_up_then_decays_to_floor():
    f = [lr_factor(s, warmup_steps=10, max_steps=100, min_ratio=0.1) for s in range(101)]
    assert f[0] == 0.1 and f[9] == 1.0
    assert all(a >= b for a, b in zip(f[10:], f[11:]))
    assert abs(f[100] - 0.1) < 1e-9
