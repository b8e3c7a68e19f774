"""Gradient norm, clipping and the divergence guard, at every optimizer step.

The gradient norm is taken after the gradients are reduced across workers (all-reduced by DDP,
summed over shards for FSDP), so every rank sees the same value and takes the same decision
without another collective. A non-finite norm (which a non-finite loss on any rank produces)
skips the update: the gradients are dropped, AdamW leaves every parameter without a gradient
untouched, and the step counter, schedule and data stream move on. After `patience` such steps
in a row the model and optimizer are rolled back to the last checkpoint; the data stream does not
go back, so the batches that diverged are not replayed.
"""

from __future__ import annotations

import math
from contextlib import AbstractContextManager
from typing import Any, Callable

import lightning as L
import torch
import torch.distributed as dist


class DivergenceError(RuntimeError):
    """Training kept producing non-finite gradients and cannot recover by rolling back."""


class GradientGuard(L.Callback):
    def __init__(self, max_norm: float, patience: int, max_rollbacks: int,
                 last_checkpoint: Callable[[], AbstractContextManager[str | None]], sharded: bool = False) -> None:
        self.max_norm = max_norm
        self.patience = patience
        self.max_rollbacks = max_rollbacks
        self.last_checkpoint = last_checkpoint
        self.sharded = sharded
        self.skipped = 0
        self.in_a_row = 0
        self.rollbacks = 0

    def state_dict(self) -> dict[str, Any]:
        return {"skipped": self.skipped, "rollbacks": self.rollbacks}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.skipped, self.rollbacks = state_dict["skipped"], state_dict["rollbacks"]

    def _norm(self, grads: list[torch.Tensor]) -> torch.Tensor:
        if not grads:
            return torch.zeros(())
        norm = torch.nn.utils.get_total_norm(grads, norm_type=2.0)
        if self.sharded and dist.is_initialized():
            squared = norm.float() ** 2
            dist.all_reduce(squared)
            norm = squared.sqrt()
        return norm

    def on_before_optimizer_step(self, trainer: L.Trainer, pl_module: L.LightningModule, optimizer) -> None:
        params = [p for p in pl_module.parameters() if p.grad is not None]
        norm = self._norm([p.grad for p in params])
        if math.isfinite(norm.item()):  # one host sync per optimizer step
            self.in_a_row = 0
            if self.max_norm:
                torch.nn.utils.clip_grads_with_norm_(params, self.max_norm, norm)
            pl_module.log("train/grad_norm", norm, on_step=True, on_epoch=False)
            return
        optimizer.zero_grad(set_to_none=True)
        self.skipped += 1
        self.in_a_row += 1
        if self.in_a_row >= self.patience:
            self._rollback(trainer, pl_module)
        pl_module.log_dict({"train/skipped_steps": float(self.skipped), "train/rollbacks": float(self.rollbacks)},
                           on_step=True, on_epoch=False, rank_zero_only=True)

    def _rollback(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        where = f"{self.in_a_row} non-finite gradient norms in a row at step {trainer.global_step}"
        if self.rollbacks >= self.max_rollbacks:
            raise DivergenceError(f"training diverged: {where}, after {self.rollbacks} rollback(s)")
        with self.last_checkpoint() as path:
            if path is None:
                raise DivergenceError(f"training diverged before its first checkpoint: {where}")
            checkpoint = trainer.strategy.load_checkpoint(path, weights_only=True)
            trainer.strategy.load_model_state_dict(checkpoint, strict=True)
            trainer.strategy.load_optimizer_state_dict(checkpoint)
        self.rollbacks += 1
        self.in_a_row = 0
        if trainer.is_global_zero:
            print(f"werk: {where}; rolled back to the checkpoint of step {checkpoint['global_step']}", flush=True)
