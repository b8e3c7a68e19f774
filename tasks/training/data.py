"""Training samples read from memory-mapped token shards.

Sample `i` is a window of `block_size + 1` tokens (inputs and next-token targets) starting at
token `i * block_size` of its shard; windows never cross shards. Batches are gathered with one
vectorised index per shard, not one Python call per row. The order samples are drawn in lives in
`sampling.py`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from tasks.encode.shard_format import open_shard


class TokenSamples(Dataset):
    def __init__(self, shard_paths: list[str | Path], block_size: int) -> None:
        self.block_size = block_size
        self.shards = []
        counts = []
        for path in shard_paths:
            _, tokens = open_shard(path)
            n = (len(tokens) - 1) // block_size
            if n > 0:
                self.shards.append(tokens)
                counts.append(n)
        self.cum = np.cumsum([0, *counts])

    def __len__(self) -> int:
        return int(self.cum[-1])

    def __getitem__(self, samples: list[int] | np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        idx = np.asarray(samples, dtype=np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= len(self)):
            raise IndexError(f"sample index out of range [0, {len(self)})")
        shard_of = np.searchsorted(self.cum, idx, side="right") - 1
        out = np.empty((idx.size, self.block_size + 1), dtype=np.int64)
        offsets = np.arange(self.block_size + 1)
        for s in np.unique(shard_of):
            rows = np.nonzero(shard_of == s)[0]
            starts = (idx[rows] - self.cum[s]) * self.block_size
            out[rows] = self.shards[s][starts[:, None] + offsets]
        t = torch.from_numpy(out)
        return t[:, :-1], t[:, 1:]


class OrderedBatches(Sampler[list[int]]):
    """The first `max_batches * batch_size` samples, in order, split evenly across ranks
    (validation): the same samples whatever the number of ranks, and the same every time."""

    def __init__(self, n_samples: int, batch_size: int, max_batches: int, rank: int, world_size: int):
        total = min(max_batches * batch_size, n_samples) // world_size * world_size
        mine = np.arange(total)[rank::world_size]
        self.batches = [mine[i : i + batch_size].tolist() for i in range(0, len(mine), batch_size)]

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self):
        return iter(self.batches)
