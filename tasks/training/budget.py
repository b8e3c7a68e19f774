"""The compute budget: device-hours counted across every attempt of a run, and a clean stop.

Device-seconds are the training's wall time times its devices (GPUs, or workers on CPU), from
the start of fitting: validation and checkpoints count, waiting for a node does not. The count
travels in every checkpoint (this callback's state), so a resumed run goes on counting where the
last one stopped. With `compute.budget_device_hours` set, once the count reaches it, all ranks
agree after the same optimizer step, a checkpoint is written and training stops; a run resumed
with the budget already spent stops before its first step. Raise the budget to go on.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import lightning as L

STATE_KEY = "BudgetGuard"


class BudgetGuard(L.Callback):
    def __init__(self, budget_device_hours: float | None, devices: int, checkpoint: Callable[[L.Trainer], None]) -> None:
        self.budget_s = budget_device_hours * 3600.0 if budget_device_hours else None
        self.devices, self.checkpoint = devices, checkpoint
        self.before_s = 0.0  # device-seconds of earlier attempts (from the checkpoint resumed)
        self._since: float | None = None
        self.exhausted = False

    @property
    def state_key(self) -> str:
        return STATE_KEY

    def spent_s(self) -> float:
        running = time.monotonic() - self._since if self._since is not None else 0.0
        return self.before_s + running * self.devices

    def state_dict(self) -> dict[str, Any]:
        return {"device_seconds": self.spent_s(), "exhausted": self.exhausted}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.before_s = float(state.get("device_seconds", 0.0))

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._since = time.monotonic()
        if self.budget_s is not None and self.before_s >= self.budget_s:
            self.exhausted = True
            trainer.should_stop = True  # resumed with nothing left: not one more step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.budget_s is None or (batch_idx + 1) % trainer.accumulate_grad_batches:
            return  # only between optimizer steps: a checkpoint holds no half-accumulated gradients
        over = self.spent_s() >= self.budget_s if trainer.is_global_zero else False
        if trainer.strategy.reduce_boolean_decision(over, all=False):
            self.exhausted = True
            self.checkpoint(trainer)
            trainer.should_stop = True
