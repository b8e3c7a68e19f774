"""Token windows for training and validation, read from memory-mapped shards.

Training draws random windows of `block_size + 1` tokens. The draw is a pure function of
(seed, round, rank): a run resumed from the checkpoint at the end of round r sees exactly the
windows an uninterrupted run would have seen from round r + 1 on. One "round" is the
checkpoint interval, which Lightning sees as an epoch. Batches are gathered with one vectorised
index per shard, not one Python call per row.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from tasks.encode.shard_format import open_shard


class TokenWindows(Dataset):
    """All windows of `block_size + 1` tokens in a list of shards, addressed by global start."""

    def __init__(self, shard_paths: list[str | Path], block_size: int) -> None:
        self.block_size = block_size
        self.shards = []
        starts = []
        for path in shard_paths:
            _, tokens = open_shard(path)
            n = len(tokens) - block_size  # valid starts: 0 .. len - (block_size + 1)
            if n > 0:
                self.shards.append(tokens)
                starts.append(n)
        if not self.shards:
            raise ValueError(f"no shard holds more than block_size={block_size} tokens")
        self.cum = np.cumsum([0, *starts])

    def __len__(self) -> int:
        return int(self.cum[-1])

    def __getitem__(self, positions: list[int] | np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        pos = np.asarray(positions, dtype=np.int64)
        shard_of = np.searchsorted(self.cum, pos, side="right") - 1
        out = np.empty((pos.size, self.block_size + 1), dtype=np.int64)
        offsets = np.arange(self.block_size + 1)
        for s in np.unique(shard_of):
            rows = np.nonzero(shard_of == s)[0]
            local = pos[rows] - self.cum[s]
            out[rows] = self.shards[s][local[:, None] + offsets]
        t = torch.from_numpy(out)
        return t[:, :-1], t[:, 1:]


class RandomRounds(Sampler[list[int]]):
    """`steps` batches of random window starts per round, distinct per rank, seeded per round."""

    def __init__(self, n_windows: int, batch_size: int, steps: int, seed: int, rank: int, world_size: int):
        self.n, self.batch_size, self.steps = n_windows, batch_size, steps
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:  # Lightning calls this at the start of each round
        self.epoch = epoch

    def __len__(self) -> int:
        return self.steps

    def __iter__(self):
        rng = np.random.default_rng([self.seed, self.epoch, self.rank, self.world_size])
        for _ in range(self.steps):
            yield rng.integers(0, self.n, size=self.batch_size).tolist()


class StridedBatches(Sampler[list[int]]):
    """Non-overlapping windows from the start, split across ranks: the same every time."""

    def __init__(self, n_windows: int, block_size: int, batch_size: int, max_batches: int, rank: int, world_size: int):
        starts = np.arange(0, n_windows, block_size)[rank::world_size]
        usable = min(len(starts) // batch_size, max_batches) * batch_size
        if usable == 0 and len(starts):
            usable = min(len(starts), batch_size)
        self.batches = [starts[i : i + batch_size].tolist() for i in range(0, usable, batch_size)]

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self):
        return iter(self.batches)
