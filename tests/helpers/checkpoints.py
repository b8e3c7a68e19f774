"""What pretraining has checkpointed so far, read the way a resumed run would."""

from __future__ import annotations

from pathlib import Path


def checkpoint_steps(home: Path) -> list[int]:
    """Global steps of the checkpoints Ray Train has published (its checkpoint dirs hold the ckpt)."""
    import torch

    steps = []
    for ckpt in sorted(home.glob("store/ray/pretrain-*/step-*/checkpoint.ckpt")):
        try:
            steps.append(int(torch.load(ckpt, map_location="cpu", weights_only=True)["global_step"]))
        except Exception:  # still being written
            continue
    return steps
