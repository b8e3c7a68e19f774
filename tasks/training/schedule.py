"""Learning-rate schedules, as a factor of the peak lr for each optimizer step.

`cosine`: linear warm-up, then cosine decay to a floor over the remaining steps.
`wsd` (warm-up-stable-decay): linear warm-up, a constant plateau, then a linear decay to the floor
over the last `decay_fraction` of the steps; the plateau's checkpoints can seed longer runs.
"""

from __future__ import annotations

import math


def lr_factor(step: int, warmup_steps: int, max_steps: int, min_ratio: float, schedule: str = "cosine",
              decay_fraction: float = 0.2) -> float:
    if warmup_steps and step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "wsd":
        decay_steps = max(1, round(decay_fraction * max_steps))
        decay_start = max(warmup_steps, max_steps - decay_steps)
        if step < decay_start:
            return 1.0
        progress = min(1.0, (step - decay_start) / max(1, max_steps - decay_start))
        return 1.0 - (1.0 - min_ratio) * progress
    progress = min(1.0, (step - warmup_steps) / max(1, max_steps - warmup_steps))
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))
