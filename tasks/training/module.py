"""The LightningModule: the GPT from `models/`, its loss, its optimiser and schedule."""

from __future__ import annotations

import math
from dataclasses import asdict
from functools import partial

import lightning as L
import torch

from models.gpt import GPT, GPTConfig
from tasks.training.config import ComputeConfig, TrainConfig
from tasks.training.parallelize import plain_name, prepare
from tasks.training.schedule import lr_factor


class GPTModule(L.LightningModule):
    def __init__(self, model_config: GPTConfig, train_config: TrainConfig,
                 compute_config: ComputeConfig | None = None, token_bytes: torch.Tensor | None = None,
                 tokenizer_uri: str | None = None) -> None:
        super().__init__()
        self.model = GPT(model_config)
        self.tokenizer_uri = tokenizer_uri
        # UTF-8 bytes per token id: validation then also reports bits per byte, comparable across tokenizers.
        self.register_buffer("token_bytes", token_bytes, persistent=False)
        self._val_sums: torch.Tensor | None = None
        self.train_config = train_config
        self.compute_config = compute_config or ComputeConfig(num_workers=1)
        # Decided on the bare model: wrappers may rename or flatten the parameters later.
        # No weight decay on biases and norm gains (1-D parameters), as in GPT-2 training.
        self.no_decay = {name for name, p in self.model.named_parameters() if p.dim() < 2}
        self._prepared = False

    def configure_model(self) -> None:
        # Called by Lightning once the strategy is set up (and again on resume): wrap once.
        if not self._prepared:
            prepare(self.model, self.train_config, self.compute_config)
            self._prepared = True

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = self.model.loss(x, y)
        self.log("train/loss", loss, on_step=True, on_epoch=False, prog_bar=True)
        self.log("train/lr", self.optimizers().param_groups[0]["lr"], on_step=True, on_epoch=False)
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        loss = self.model.loss(x, y)
        self.log("val/loss", loss, on_epoch=True, sync_dist=True)
        if self.token_bytes is not None:
            sums = torch.stack([loss.detach().float() * y.numel(), self.token_bytes[y].sum().float(),
                                torch.tensor(float(y.numel()), device=y.device)])
            self._val_sums = sums if self._val_sums is None else self._val_sums + sums

    def on_validation_epoch_end(self) -> None:
        if self._val_sums is not None:
            nats, n_bytes, tokens = self.trainer.strategy.reduce(self._val_sums, reduce_op="sum")
            # The sums are already global (every rank holds the same values), so averaging them
            # across ranks changes nothing; logging from every rank with sync_dist says so to
            # Lightning, which otherwise warns about unsynchronised epoch-level metrics.
            self.log_dict({"val/bpb": nats / math.log(2) / n_bytes, "val/perplexity": torch.exp(nats / tokens)},
                          sync_dist=True)
            self._val_sums = None

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        # Enough to rebuild and evaluate the model from this file alone (`werk evaluate --checkpoint`).
        checkpoint["werk"] = {"model_config": asdict(self.model.config), "tokenizer": self.tokenizer_uri}

    def configure_optimizers(self):
        cfg = self.train_config
        named = [(plain_name(n), p) for n, p in self.named_parameters() if p.requires_grad]
        decay = [p for n, p in named if n.removeprefix("model.") not in self.no_decay]
        no_decay = [p for n, p in named if n.removeprefix("model.") in self.no_decay]
        opt = torch.optim.AdamW(
            [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=cfg.lr,
            betas=(0.9, 0.95),
        )
        schedule = torch.optim.lr_scheduler.LambdaLR(
            opt,
            partial(lr_factor, warmup_steps=cfg.warmup_steps, max_steps=cfg.max_steps, min_ratio=cfg.min_lr_ratio,
                    schedule=cfg.schedule, decay_fraction=cfg.decay_fraction),
        )
        return {"optimizer": opt, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}
