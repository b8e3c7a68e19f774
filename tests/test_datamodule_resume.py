"""A Lightning run restored from a checkpoint taken in the middle of a round sees exactly the
batches the uninterrupted run saw after that point."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from tasks.encode.shard_format import write_shard

pytestmark = pytest.mark.slow


def _shard(path, n=20_000, vocab=64):
    buf = io.BytesIO()
    write_shard(buf, np.random.default_rng(0).integers(0, vocab, n), 1, vocab)
    path.write_bytes(buf.getvalue())
    return path


def _fit(tmp_path, max_steps, ckpt_path=None, save_every=None):
    import lightning as L
    from lightning.pytorch.callbacks import ModelCheckpoint

    from models.gpt import GPTConfig
    from tasks.training.config import TrainConfig
    from tasks.training.datamodule import TokenDataModule
    from tasks.training.module import GPTModule

    class Record(L.Callback):
        def __init__(self):
            self.seen = []

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            self.seen.append((trainer.current_epoch, batch[0][:, 0].tolist()))

    shard = _shard(tmp_path / "train.bin")
    data = TokenDataModule([shard], [shard], block_size=16, batch_size=4, steps_per_round=5, val_batches=1,
                           seed=11, rank=0, world_size=1)
    module = GPTModule(GPTConfig(vocab_size=64, block_size=16, n_layer=1, n_head=1, n_embd=16),
                       TrainConfig(max_steps=max_steps, batch_size=4, warmup_steps=0, steps_per_checkpoint=5))
    record = Record()
    callbacks = [record]
    if save_every:
        callbacks.append(ModelCheckpoint(dirpath=tmp_path / "ckpt", every_n_train_steps=save_every, save_top_k=-1))
    trainer = L.Trainer(max_steps=max_steps, max_epochs=-1, accelerator="cpu", devices=1, logger=False,
                        callbacks=callbacks, enable_progress_bar=False, enable_model_summary=False,
                        num_sanity_val_steps=0, use_distributed_sampler=False, enable_checkpointing=bool(save_every))
    torch.manual_seed(0)
    trainer.fit(module, datamodule=data, ckpt_path=ckpt_path, weights_only=True if ckpt_path else None)
    return record.seen


def test_resume_mid_round_continues_with_the_next_batch(tmp_path):
    full = _fit(tmp_path, max_steps=12, save_every=7)  # step 7 is in the middle of round 2 (steps 5-9)
    (ckpt,) = [p for p in (tmp_path / "ckpt").glob("*.ckpt") if "step=7" in p.name]
    resumed = _fit(tmp_path, max_steps=12, ckpt_path=str(ckpt))
    # Same samples and same round (epoch) boundaries: round 1 still ends after step 9.
    assert len(full) == 12 and resumed == full[7:]
    assert [epoch for epoch, _ in full] == [0] * 5 + [1] * 5 + [2] * 2
