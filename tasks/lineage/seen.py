"""The first optimizer step that trained on a range of tokens, recomputed from the sample order.

Training reads samples in an order that is a pure function of (seed, position) (`tasks/training/
sampling.py`), so which step saw which token needs no log: it is inverted here from the same
functions the sampler uses. Sample `i` of a shard holds tokens `[i * B, i * B + B]` (B inputs and
the last target), so a document's tokens `[start, end)` lie in the contiguous samples
`ceil((start - B) / B) .. floor((end - 1) / B)` of its shard.

Cost, per epoch that training reached: one permutation of all N training samples (8 bytes each)
and one pass over it, ~1.5 s per 10^7 samples here (the same permutation the training sampler
draws; kept for the next documents of the same run); with `train.shuffle_window_shards`, only the
permutation of the window holding the shard (4 ms for a 16-shard window of 10^7 samples in all).
Nothing is stored per sample. `benchmarks/lineage.py` measures a whole `trace_doc`.
"""

from __future__ import annotations

import math

import numpy as np

from tasks.training.record import SampleOrder
from tasks.training.sampling import WindowedOrder, _permutation, _window_permutation


def samples_per_shard(order: SampleOrder) -> np.ndarray:
    """Samples of each listed shard (0 for one shorter than a sample, which training skips)."""
    return np.array([max(0, (t - 1) // order.block_size) for t in order.shard_tokens], dtype=np.int64)


def sample_range(order: SampleOrder, shard: int, start: int, end: int) -> tuple[int, int] | None:
    """Global indices [lo, hi] of the training samples holding any of the shard's tokens [start, end)."""
    counts = samples_per_shard(order)
    if end <= start or counts[shard] == 0:
        return None
    b = order.block_size
    lo, hi = max(0, math.ceil((start - b) / b)), min(int(counts[shard]) - 1, (end - 1) // b)
    if lo > hi:
        return None  # the tokens lie past the shard's last whole sample: never read
    first = int(counts[:shard].sum())  # samples before this shard (skipped shards hold none)
    return first + lo, first + hi


def first_position(order: SampleOrder, lo: int, hi: int) -> int | None:
    """The first position of the training stream (counted in samples) holding a sample in [lo, hi],
    among the positions trained on, or None."""
    counts = samples_per_shard(order)
    counts = counts[counts > 0]
    n, consumed = int(counts.sum()), order.steps * order.samples_per_step
    for epoch in range(-(-consumed // n) if n else 0):
        if order.window:
            found = _in_window(WindowedOrder(counts, order.seed, order.window), epoch, lo, hi)
        else:
            perm = _permutation(n, order.seed, epoch)
            hits = np.flatnonzero((perm >= lo) & (perm <= hi))
            found = int(hits[0]) if hits.size else None
        if found is not None:
            position = epoch * n + found
            return position if position < consumed else None
    return None


def _in_window(windowed: WindowedOrder, epoch: int, lo: int, hi: int) -> int | None:
    """Offset within the epoch of the first sample in [lo, hi] (all in one shard), window by window."""
    shard = int(np.searchsorted(windowed.first, lo, side="right") - 1)
    order, starts = windowed._layout(epoch)
    at = int(np.flatnonzero(order == shard)[0])
    w = at // windowed.window
    shards = order[w * windowed.window:(w + 1) * windowed.window]
    inside = np.concatenate([[0], np.cumsum(windowed.counts[shards])])
    k = int(np.flatnonzero(shards == shard)[0])
    local_lo = inside[k] + (lo - windowed.first[shard])
    local_hi = inside[k] + (hi - windowed.first[shard])
    perm = _window_permutation(int(inside[-1]), windowed.seed, epoch, w)
    hits = np.flatnonzero((perm >= local_lo) & (perm <= local_hi))
    return int(starts[w] + hits[0]) if hits.size else None


def first_step(order: SampleOrder, shard: int, start: int, end: int) -> int | None:
    """The optimizer step (counted from 1) whose batch first held any of the shard's tokens
    [start, end): every checkpoint from that step on has trained on them. None: never trained on."""
    found = sample_range(order, shard, start, end)
    if found is None:
        return None
    position = first_position(order, *found)
    return None if position is None else position // order.samples_per_step + 1
