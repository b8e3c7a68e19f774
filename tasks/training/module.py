"""The LightningModule: the GPT from `models/`, its loss, its optimiser and schedule."""

from __future__ import annotations

from functools import partial

import lightning as L
import torch

from models.gpt import GPT, GPTConfig
from tasks.training.config import TrainConfig
from tasks.training.schedule import lr_factor


class GPTModule(L.LightningModule):
    def __init__(self, model_config: GPTConfig, train_config: TrainConfig) -> None:
        super().__init__()
        self.model = GPT(model_config)
        self.train_config = train_config

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = self.model.loss(x, y)
        self.log("train/loss", loss, on_step=True, on_epoch=False, prog_bar=True)
        self.log("train/lr", self.optimizers().param_groups[0]["lr"], on_step=True, on_epoch=False)
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        self.log("val/loss", self.model.loss(x, y), on_epoch=True, sync_dist=True)

    def configure_optimizers(self):
        cfg = self.train_config
        # No weight decay on biases and norm gains (1-D parameters), as in GPT-2 training.
        decay = [p for p in self.model.parameters() if p.dim() >= 2]
        no_decay = [p for p in self.model.parameters() if p.dim() < 2]
        opt = torch.optim.AdamW(
            [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=cfg.lr,
            betas=(0.9, 0.95),
        )
        schedule = torch.optim.lr_scheduler.LambdaLR(
            opt,
            partial(lr_factor, warmup_steps=cfg.warmup_steps, max_steps=cfg.max_steps, min_ratio=cfg.min_lr_ratio),
        )
        return {"optimizer": opt, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}
