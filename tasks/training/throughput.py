"""A callback that logs tokens per second over the whole job (all workers), from rank 0."""

from __future__ import annotations

import time

import lightning as L


class TokensPerSecond(L.Callback):
    def __init__(self, every_n_steps: int) -> None:
        self.every = every_n_steps
        self._t0: float | None = None
        self._tokens = 0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if self._t0 is None:
            self._t0 = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._tokens += batch[0].numel() * trainer.world_size
        if trainer.global_step % self.every == 0 and self._t0 is not None:
            elapsed = time.perf_counter() - self._t0
            pl_module.log("train/tokens_per_sec", self._tokens / elapsed, rank_zero_only=True)
            pl_module.log("train/tokens_seen", float(trainer.global_step * batch[0].numel() * trainer.world_size), rank_zero_only=True)
            self._t0, self._tokens = time.perf_counter(), 0
