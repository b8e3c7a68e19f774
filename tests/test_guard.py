"""The divergence guard: a non-finite step changes nothing and is counted; `patience` of them in a
row roll the model and optimizer back to the last checkpoint; with nothing to roll back to, or
too many rollbacks, the run fails with a clear error."""

from __future__ import annotations

import io
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch

from tasks.encode.shard_format import write_shard

pytestmark = pytest.mark.slow  # imports Lightning


def _shard(path: Path, vocab: int = 64) -> Path:
    buf = io.BytesIO()
    write_shard(buf, np.random.default_rng(0).integers(0, vocab, 20_000), 1, vocab)
    path.write_bytes(buf.getvalue())
    return path


def _train(tmp_path: Path, poison: set[int], save_at: int | None, max_steps: int = 14, max_rollbacks: int = 3):
    import lightning as L

    from models.gpt import GPTConfig
    from tasks.training.config import TrainConfig
    from tasks.training.datamodule import TokenDataModule
    from tasks.training.guard import GradientGuard
    from tasks.training.module import GPTModule

    class Poisoned(GPTModule):
        def training_step(self, batch, batch_idx):
            loss = super().training_step(batch, batch_idx)
            return loss * float("nan") if self.trainer.global_step in poison else loss

    class Watch(L.Callback):
        def __init__(self):
            self.before: dict[int, dict] = {}
            self.after: dict[int, dict] = {}
            self.adam_steps: dict[int, float] = {}

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            self.before[trainer.global_step] = {k: v.clone() for k, v in pl_module.model.state_dict().items()}

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            step = trainer.global_step - 1
            self.after[step] = {k: v.clone() for k, v in pl_module.model.state_dict().items()}
            state = trainer.optimizers[0].state[next(pl_module.model.parameters())]
            self.adam_steps[step] = float(state["step"]) if state else 0.0
            if save_at is not None and trainer.global_step == save_at:
                trainer.save_checkpoint(tmp_path / "last.ckpt")

    @contextmanager
    def last_checkpoint():
        path = tmp_path / "last.ckpt"
        yield str(path) if path.exists() else None

    tmp_path.mkdir(parents=True, exist_ok=True)
    shard = _shard(tmp_path / "train.bin")
    data = TokenDataModule([shard], [shard], block_size=16, batch_size=4, steps_per_round=100, val_batches=1,
                           seed=3, rank=0, world_size=1)
    module = Poisoned(GPTConfig(vocab_size=64, block_size=16, n_layer=1, n_head=1, n_embd=16),
                      TrainConfig(max_steps=max_steps, batch_size=4, warmup_steps=0))
    guard = GradientGuard(max_norm=1.0, patience=3, max_rollbacks=max_rollbacks, last_checkpoint=last_checkpoint)
    watch = Watch()
    trainer = L.Trainer(max_steps=max_steps, max_epochs=-1, accelerator="cpu", devices=1, logger=False,
                        callbacks=[watch, guard], enable_progress_bar=False, enable_model_summary=False,
                        num_sanity_val_steps=0, use_distributed_sampler=False, enable_checkpointing=False,
                        limit_val_batches=0)
    torch.manual_seed(0)
    trainer.fit(module, datamodule=data)
    return trainer, guard, watch


def _equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_non_finite_step_is_skipped_and_counted(tmp_path):
    trainer, guard, watch = _train(tmp_path, poison={6}, save_at=4)
    assert trainer.global_step == 14  # the step still counts; the schedule and data move on
    assert _equal(watch.before[6], watch.after[6])  # no parameter moved
    assert watch.adam_steps[6] == watch.adam_steps[5]  # nor did AdamW's state
    assert not _equal(watch.before[7], watch.after[7])  # training goes on
    assert guard.skipped == 1 and guard.rollbacks == 0
    assert trainer.callback_metrics["train/skipped_steps"] == 1
    assert all(torch.isfinite(v).all() for v in watch.after[13].values())


def test_several_in_a_row_roll_back_to_the_last_checkpoint(tmp_path):
    trainer, guard, watch = _train(tmp_path, poison={6, 7, 8}, save_at=4)
    saved = torch.load(tmp_path / "last.ckpt", weights_only=True)["state_dict"]
    saved = {k.removeprefix("model."): v for k, v in saved.items()}
    assert not _equal(watch.before[8], saved)  # steps 4 and 5 had moved the model on
    assert _equal(watch.after[8], saved)  # after the third bad step, back to step 4's weights
    assert watch.adam_steps[8] == 4.0  # and step 4's optimizer state
    assert guard.skipped == 3 and guard.rollbacks == 1
    assert trainer.callback_metrics["train/rollbacks"] == 1
    assert trainer.global_step == 14 and not _equal(watch.after[13], saved)


def test_divergence_without_a_checkpoint_or_past_the_rollback_budget_fails_clearly(tmp_path):
    from tasks.training.guard import DivergenceError

    with pytest.raises(DivergenceError, match="before its first checkpoint: 3 non-finite"):
        _train(tmp_path / "a", poison={1, 2, 3}, save_at=None)
    with pytest.raises(DivergenceError, match=r"after 1 rollback\(s\)"):
        _train(tmp_path / "b", poison=set(range(5, 12)), save_at=4, max_rollbacks=1)
