"""The training stream replayed with the samplers each rank uses: the ground truth lineage is checked against."""

from __future__ import annotations

import numpy as np

from tasks.lineage.seen import samples_per_shard
from tasks.training.record import SampleOrder
from tasks.training.sampling import GlobalOrderSampler, WindowedOrder


def first_step_by_replay(order: SampleOrder, shard: int, start: int, end: int, world: int) -> int | None:
    """Replay the training stream with the samplers each rank uses and return the first step
    (from 1) whose batch held a sample overlapping tokens [start, end) of `shard`."""
    counts = samples_per_shard(order)
    kept = counts[counts > 0]
    first = np.concatenate([[0], np.cumsum(counts)])
    windowed = WindowedOrder(kept, order.seed, order.window) if order.window else None
    batches = [list(GlobalOrderSampler(int(kept.sum()), order.samples_per_step // world, order.steps, order.seed, r,
                                       world, windowed)) for r in range(world)]
    b = order.block_size
    for step in range(order.steps):
        for rank in range(world):
            for g in batches[rank][step]:
                s = int(np.searchsorted(first, g, side="right") - 1)
                i = g - first[s]
                if s == shard and i * b <= end - 1 and i * b + b >= start:
                    return step + 1
    return None
