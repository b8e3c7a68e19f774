"""Every random number generator of every rank, saved in each checkpoint and restored on resume.

Lightning's checkpoint holds the model, optimizer, schedulers and loop state but not the RNGs;
without them, dropout after a resume draws different masks and the run departs from the one it
replaces. The states are gathered from all ranks when a checkpoint is written (every rank takes
part in saving) and each rank takes its own back. Saved as tensors and plain numbers, so the
checkpoint still loads with `weights_only=True`.
"""

from __future__ import annotations

import random
import warnings
from typing import Any

import lightning as L
import numpy as np
import torch
import torch.distributed as dist


def capture() -> dict[str, Any]:
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos), "has_gauss": int(has_gauss),
                  "gauss": float(gauss)},
        "python": {"version": version, "internal": list(internal), "gauss_next": gauss_next},
    }


def restore(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["internal"]), p["gauss_next"]))


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


class RngState(L.Callback):
    def state_dict(self) -> dict[str, Any]:
        state = capture()
        if not _distributed():
            return {"ranks": [state]}
        gathered: list[Any] = [None] * dist.get_world_size()
        dist.all_gather_object(gathered, state)
        return {"ranks": gathered}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        ranks = state_dict["ranks"]
        rank, world = (dist.get_rank(), dist.get_world_size()) if _distributed() else (0, 1)
        if len(ranks) != world:
            warnings.warn(f"checkpoint holds RNG states of {len(ranks)} ranks, this run has {world}: "
                          "the resumed run is not bitwise identical to an uninterrupted one", stacklevel=2)
        restore(ranks[rank % len(ranks)])
