"""The function each Ray Train worker runs: an ordinary Lightning Trainer, made distributed by Ray.

Scaling (how many workers, CPU or GPU) is decided outside, in `launch.py`; this function only
builds the model, the data and the Trainer, and resumes from Ray Train's latest checkpoint if the
run is being restarted.
"""

from __future__ import annotations

import os

import lightning as L
import ray.train
import torch
from lightning.pytorch.loggers import MLFlowLogger
from ray.train.lightning import (
    RayDDPStrategy,
    RayLightningEnvironment,
    RayTrainReportCallback,
    prepare_trainer,
)

from infra.storage import local_copy
from models.gpt import GPTConfig
from tasks.encode.shard_format import verify_shard
from tasks.training.datamodule import TokenDataModule
from tasks.training.job import PretrainJob, accumulation_steps
from tasks.training.module import GPTModule
from tasks.training.throughput import TokensPerSecond

CHECKPOINT_FILE = "checkpoint.ckpt"  # the name RayTrainReportCallback saves under


def gpt_config(job: PretrainJob) -> GPTConfig:
    return GPTConfig(vocab_size=job.vocab_size, **job.model.gpt_kwargs())


def _verified(uris: list[str], sha256: list[str] | None, vocab_size: int) -> list:
    """Local copies of the shards, each checked against the encode manifest before use."""
    paths = [local_copy(u) for u in uris]
    for path, digest in zip(paths, sha256 or [None] * len(paths)):
        verify_shard(path, digest, vocab_size)
    return paths


def train_loop(config: dict) -> None:
    job = PretrainJob.model_validate(config)
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    threads = job.compute.torch_threads or max(1, int(job.compute.cpus_per_worker))
    torch.set_num_threads(threads)
    L.seed_everything(job.train.seed, workers=True, verbose=False)

    block = job.model.block_size
    accumulate = accumulation_steps(job, world)
    data = TokenDataModule(
        _verified(job.train_shards, job.train_sha256, job.vocab_size),
        _verified(job.val_shards, job.val_sha256, job.vocab_size),
        block_size=block, batch_size=job.train.batch_size, steps_per_round=job.train.steps_per_checkpoint,
        val_batches=job.train.val_batches, seed=job.train.seed, rank=rank, world_size=world, accumulate=accumulate,
    )

    logger = False
    if job.mlflow_run_id:
        logger = MLFlowLogger(tracking_uri=job.mlflow_tracking_uri, run_id=job.mlflow_run_id)
    trainer = L.Trainer(
        max_steps=job.train.max_steps,
        max_epochs=-1,
        accelerator="gpu" if job.compute.use_gpu else "cpu",
        devices="auto",
        strategy=RayDDPStrategy(),
        plugins=[RayLightningEnvironment()],
        callbacks=[TokensPerSecond(job.train.log_every_n_steps), RayTrainReportCallback()],
        logger=logger,
        precision=job.train.precision,
        gradient_clip_val=job.train.grad_clip or None,
        accumulate_grad_batches=accumulate,
        log_every_n_steps=job.train.log_every_n_steps,
        check_val_every_n_epoch=1,
        num_sanity_val_steps=0,
        enable_checkpointing=False,  # Ray Train owns checkpoints (RayTrainReportCallback)
        enable_progress_bar=False,
        enable_model_summary=rank == 0,
        use_distributed_sampler=False,  # our samplers already split the data across ranks
    )
    trainer = prepare_trainer(trainer)

    module = GPTModule(gpt_config(job), job.train)
    checkpoint = ray.train.get_checkpoint()
    if checkpoint:
        with checkpoint.as_directory() as ckpt_dir:
            trainer.fit(module, datamodule=data, ckpt_path=os.path.join(ckpt_dir, CHECKPOINT_FILE),
                        weights_only=True)
    else:
        trainer.fit(module, datamodule=data)
