"""Training samples read from memory-mapped token shards.

Sample `i` is a window of `block_size + 1` tokens (inputs and next-token targets) starting at
token `i * block_size` of its shard; windows never cross shards. Batches are gathered with one
vectorised index per shard, not one Python call per row. The order samples are drawn in lives in
`sampling.py`.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from tasks.encode.shard_format import ShardFormatError, open_shard
from tasks.training.shard_store import Shard, ShardStore, touch


class TokenSamples(Dataset):
    """The samples of a list of shards: local paths (opened now), or `Shard`s with their token
    counts, made local by `store` when a batch first reads from them (at most `open_limit` kept
    mapped at once: the rest of the corpus costs nothing until it is read)."""

    def __init__(self, shard_paths: list[str | Path | Shard], block_size: int, store: ShardStore | None = None,
                 open_limit: int = 64) -> None:
        self.block_size, self.store, self.open_limit = block_size, store, open_limit
        self.sources: list[str | Path | Shard] = []  # size: the shards (not their tokens)
        self._open: OrderedDict[int, np.ndarray] = OrderedDict()  # size: at most open_limit maps
        self._touched: dict[int, float] = {}  # when each open shard was last marked as in use
        counts = []
        for source in shard_paths:
            tokens = source.tokens if isinstance(source, Shard) else None
            if tokens is None:
                self._open[len(self.sources)] = tokens_of = open_shard(self._path(source))[1]
                tokens = len(tokens_of)
            n = (tokens - 1) // block_size
            if n > 0:
                self.sources.append(source)
                counts.append(n)
            else:
                self._open.pop(len(self.sources), None)
        self.counts = np.asarray(counts, dtype=np.int64)
        self.cum = np.cumsum([0, *counts])

    def _path(self, source: str | Path | Shard) -> Path:
        if isinstance(source, Shard):
            return self.store.local(source) if self.store else Path(source.uri)
        return Path(source)

    def _tokens(self, s: int) -> np.ndarray:
        tokens = self._open.get(s)
        if tokens is None:
            source = self.sources[s]
            for attempt in range(3):
                try:
                    header, tokens = open_shard(self._path(source))
                    break
                except FileNotFoundError:  # evicted from the node cache by another worker meanwhile
                    if attempt == 2 or not isinstance(source, Shard):
                        raise
            if isinstance(source, Shard) and source.tokens is not None and header.n_tokens != source.tokens:
                raise ShardFormatError(f"{source.uri}: {header.n_tokens} tokens, the encode manifest says {source.tokens}")
            self._open[s] = tokens
            while len(self._open) > self.open_limit:
                self._open.popitem(last=False)
        elif self.store is not None and isinstance(tokens, np.memmap) and time.monotonic() - self._touched.get(s, 0) > 60:
            # Still being read: keep it from looking least recently used in the node cache.
            touch(Path(tokens.filename))
            self._touched[s] = time.monotonic()
        self._open.move_to_end(s)
        return tokens

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
            out[rows] = self._tokens(int(s))[starts[:, None] + offsets]
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
