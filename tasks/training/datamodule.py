"""The Lightning DataModule over token shards: training stream, validation batches, resumable state.

Its state (the sampler's next global position) is saved in every Lightning checkpoint and
restored on resume, so a run restarted from a checkpoint continues with exactly the next sample,
whether the checkpoint was taken at the end of a round or in the middle of one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader

from tasks.training.data import OrderedBatches, TokenSamples
from tasks.training.sampling import GlobalOrderSampler, WindowedOrder
from tasks.training.shard_store import Shard, ShardStore


class TokenDataModule(L.LightningDataModule):
    def __init__(
        self, train_paths: list[str | Path | Shard], val_paths: list[str | Path | Shard], block_size: int, batch_size: int,
        steps_per_round: int, val_batches: int, seed: int, rank: int, world_size: int, num_workers: int = 0,
        accumulate: int = 1, store: ShardStore | None = None, window: int | None = None,
    ) -> None:
        super().__init__()
        self.train_set = TokenSamples(train_paths, block_size, store)
        self.val_set = TokenSamples(val_paths, block_size, store)
        if len(self.val_set) == 0:
            raise ValueError(f"the validation split holds no sample of {block_size + 1} tokens")
        order = WindowedOrder(self.train_set.counts, seed, window) if window else None
        # The sampler counts micro-batches: `accumulate` of them make one optimizer step.
        self.sampler = GlobalOrderSampler(len(self.train_set), batch_size, steps_per_round * accumulate, seed, rank,
                                          world_size, order)
        self.samples_per_step = batch_size * world_size * accumulate
        self.batch_size, self.val_batches = batch_size, val_batches
        self.rank, self.world_size, self.num_workers = rank, world_size, num_workers
        self._consumed: int | None = None

    def train_dataloader(self) -> DataLoader:
        # batch_size=None: each sampler item is already a whole batch of sample indices. The loader's
        # own generator keeps it from drawing on the global RNG, which dropout uses: a resumed run
        # then draws the same masks as an uninterrupted one.
        return DataLoader(self.train_set, sampler=self.sampler, batch_size=None, num_workers=self.num_workers,
                          generator=torch.Generator().manual_seed(self.sampler.seed))

    def val_dataloader(self) -> DataLoader:
        batches = OrderedBatches(len(self.val_set), self.batch_size, self.val_batches, self.rank, self.world_size)
        return DataLoader(self.val_set, sampler=batches, batch_size=None, num_workers=self.num_workers,
                          generator=torch.Generator().manual_seed(self.sampler.seed))

    def state_dict(self) -> dict[str, Any]:
        # What the trainer consumed, not what loader workers may have prefetched: one global batch
        # per optimizer step.
        step = self.trainer.global_step if self.trainer is not None else 0
        return {"position": step * self.samples_per_step, "seed": self.sampler.seed}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("seed", self.sampler.seed) != self.sampler.seed:
            raise ValueError(f"checkpoint was trained with seed {state['seed']}, this run uses {self.sampler.seed}")
        self.sampler.load_state_dict({"position": state["position"]})
