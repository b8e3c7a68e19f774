"""The order in which training samples are seen: a pure function of (seed, global position).

Sample `i` is the window of `block_size + 1` tokens starting at token `i * block_size` of a
shard (windows never cross shards). Position `p` of the training stream is sample
`perm(seed, epoch)[p mod N]` with `epoch = p // N`: every sample is seen exactly once per epoch,
and the stream does not depend on the number of ranks or data-loader workers. Rank `r` of `W`,
with `B` samples per rank per step, takes positions `step * W * B + r * B + [0, B)`, so the global
batch of a step is the same set of samples whatever the world size.

With `window` set (a corpus read through a bounded shard cache), an epoch is read window by
window instead: the shards' order is permuted per epoch, cut into windows of `window` shards, and
each window's samples are permuted and read before the next window's. Every sample is still seen
once per epoch and the order is still a pure function of (seed, position), but a step reads from
at most two windows' shards, not from the whole corpus.

A sampler's state is one number, the next position, so a resumed run continues with exactly the
next sample.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from torch.utils.data import Sampler


@lru_cache(maxsize=4)
def _permutation(n: int, seed: int, epoch: int) -> np.ndarray:
    return np.random.default_rng([seed, epoch]).permutation(n)


def sample_order(positions: np.ndarray, n_samples: int, seed: int) -> np.ndarray:
    """Sample indices at these global positions of the training stream."""
    positions = np.asarray(positions, dtype=np.int64)
    epochs, offsets = np.divmod(positions, n_samples)
    out = np.empty_like(positions)
    for epoch in np.unique(epochs):
        mask = epochs == epoch
        out[mask] = _permutation(n_samples, seed, int(epoch))[offsets[mask]]
    return out


@lru_cache(maxsize=2)  # the window being read and the next: each is one entry per sample of a window
def _window_permutation(n: int, seed: int, epoch: int, window: int) -> np.ndarray:
    return np.random.default_rng([seed, epoch, 1, window]).permutation(n)


class WindowedOrder:
    """Sample indices at global positions, window by window (see the module's docstring).
    Memory: a few arrays of one entry per shard, and one permutation per window in use."""

    def __init__(self, counts: np.ndarray, seed: int, window: int) -> None:
        self.counts = np.asarray(counts, dtype=np.int64)
        self.first = np.concatenate([[0], np.cumsum(self.counts)])  # first sample index of each shard
        self.n, self.seed, self.window = int(self.first[-1]), seed, window

    @lru_cache(maxsize=4)
    def _layout(self, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        """This epoch's shard order, and the stream offset at which each window starts."""
        order = np.random.default_rng([self.seed, epoch, 0]).permutation(len(self.counts))
        sizes = np.add.reduceat(self.counts[order], np.arange(0, len(order), self.window))
        return order, np.concatenate([[0], np.cumsum(sizes)])

    def __call__(self, positions: np.ndarray) -> np.ndarray:
        positions = np.asarray(positions, dtype=np.int64)
        epochs, offsets = np.divmod(positions, self.n)
        out = np.empty_like(positions)
        for epoch in np.unique(epochs):
            order, starts = self._layout(int(epoch))
            mask = np.flatnonzero(epochs == epoch)
            windows = np.searchsorted(starts, offsets[mask], side="right") - 1
            for w in np.unique(windows):
                rows = mask[windows == w]
                shards = order[w * self.window:(w + 1) * self.window]
                inside = np.concatenate([[0], np.cumsum(self.counts[shards])])
                q = _window_permutation(int(inside[-1]), self.seed, int(epoch), int(w))[offsets[rows] - starts[w]]
                k = np.searchsorted(inside, q, side="right") - 1
                out[rows] = self.first[shards[k]] + (q - inside[k])
        return out


class GlobalOrderSampler(Sampler[list[int]]):
    """Batches of sample indices for one rank, `steps` batches per Lightning epoch ("round").

    Rounds end at global steps that are multiples of `steps`. Each round starts where the last
    one ended; `load_state_dict` sets the next position (a resume, possibly in the middle of a
    round), and the round then runs to the next boundary. Lightning's epoch number is not used:
    after some resumes Lightning counts epochs differently from the uninterrupted run, and the
    data must not follow it. `state_dict` says where the next batch would start.
    """

    def __init__(self, n_samples: int, batch_size: int, steps: int, seed: int, rank: int, world_size: int,
                 order: WindowedOrder | None = None):
        if n_samples < 1:
            raise ValueError("no training samples: the corpus is shorter than one block")
        self.n, self.batch, self.steps, self.seed = n_samples, batch_size, steps, seed
        self.order = order
        self.rank, self.world = rank, world_size
        self.global_batch = batch_size * world_size
        self._next = 0  # global position of the next step's first sample
        self._count = steps  # steps left in the current round
        self._resume: int | None = None

    def set_epoch(self, epoch: int) -> None:
        if self._resume is not None:
            self._next, self._resume = self._resume, None
        # Round boundaries sit at multiples of `steps` global steps: a resumed round ends where the
        # uninterrupted run's round ends.
        self._count = self.steps - (self._next // self.global_batch) % self.steps

    def state_dict(self) -> dict[str, int]:
        return {"position": self._next}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self._resume = self._next = int(state["position"])

    def __len__(self) -> int:
        return self._count

    def __iter__(self):
        start = self._next
        offsets = self.rank * self.batch + np.arange(self.batch)
        for step in range(self._count):
            positions = start + step * self.global_batch + offsets
            self._next = start + (step + 1) * self.global_batch
            yield (self.order(positions) if self.order else sample_order(positions, self.n, self.seed)).tolist()
