"""The function each Ray Train worker runs: an ordinary Lightning Trainer, made distributed by Ray.

Scaling (how many workers, CPU or GPU, DDP or FSDP) is decided outside, in `launch.py`; this
function builds the model, the data, the callbacks and the Trainer, and resumes from Ray Train's
latest registered checkpoint if the run is being restarted (after a failure, a preemption or a
new launch of the same run).
"""

from __future__ import annotations


import lightning as L
import ray.train
import torch
from lightning.pytorch.loggers import MLFlowLogger
from ray.train.lightning import RayLightningEnvironment, prepare_trainer

from models.gpt import GPTConfig
from tasks.training import mfu, parallelize
from tasks.training.budget import BudgetGuard
from tasks.training.device_energy import DeviceEnergy, nvml_reader
from tasks.training.checkpointing import CheckpointReporter, latest_checkpoint
from tasks.training.datamodule import TokenDataModule
from tasks.training.guard import GradientGuard
from tasks.training.job import PretrainJob, accumulation_steps
from tasks.training.metrics import StepMetrics
from tasks.training.module import GPTModule
from tasks.training.progress import ReportProgress
from tasks.training.rng import RngState
from tasks.training.shard_store import ShardStore, shards
from tasks.training.stop import StopOnRequest


def gpt_config(job: PretrainJob) -> GPTConfig:
    return GPTConfig(vocab_size=job.vocab_size, **job.model.gpt_kwargs())


def _peak_flops(job: PretrainJob, world: int) -> float | None:
    tflops = job.compute.peak_tflops
    if tflops is None and job.compute.use_gpu and torch.cuda.is_available():
        tflops = mfu.device_peak_tflops(torch.cuda.get_device_name())
    return tflops * 1e12 * world if tflops else None


def _system_metrics(job: PretrainJob):
    """MLflow's CPU/GPU/memory/network sampler for the pretraining run (rank 0 only)."""
    from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

    monitor = SystemMetricsMonitor(job.mlflow_run_id, sampling_interval=job.compute.system_metrics_interval_s,
                                   samples_before_logging=1, tracking_uri=job.mlflow_tracking_uri)
    monitor.start()
    return monitor


def _finish_system_metrics(monitor) -> None:
    monitor.finish()
    # The sampler publishes once per period: a run shorter than one period would record nothing,
    # so take one last sample. Metrics must never fail training, hence the broad except.
    try:
        monitor.collect_metrics()
        monitor.publish_metrics(monitor.aggregate_metrics())
        monitor.mlflow_logger.flush()
    except Exception as exc:  # noqa: BLE001
        print(f"werk: last system-metrics sample not logged: {exc}", flush=True)


def train_loop(config: dict) -> None:
    job = PretrainJob.model_validate(config)
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    threads = job.compute.torch_threads or max(1, int(job.compute.cpus_per_worker))
    torch.set_num_threads(threads)
    L.seed_everything(job.train.seed, workers=True, verbose=False)

    block = job.model.block_size
    accumulate = accumulation_steps(job, world)
    # Shards are made local and checked when first read, through the node's cache (shard_store.py).
    data = TokenDataModule(
        shards(job.train_shards, job.train_tokens, job.train_sha256),
        shards(job.val_shards, job.val_tokens, job.val_sha256),
        block_size=block, batch_size=job.train.batch_size, steps_per_round=job.train.steps_per_checkpoint,
        val_batches=job.train.val_batches, seed=job.train.seed, rank=rank, world_size=world, accumulate=accumulate,
        store=ShardStore.for_node(job.compute.shard_cache_gb, job.vocab_size), window=job.train.shuffle_window_shards,
    )
    token_bytes = None
    if job.tokenizer_uri:
        from tasks.tokenizer.byte_lengths import token_byte_lengths
        from tasks.tokenizer.train import load_tokenizer

        token_bytes = torch.from_numpy(token_byte_lengths(load_tokenizer(job.tokenizer_uri)))
    module = GPTModule(gpt_config(job), job.train, job.compute, token_bytes=token_bytes, tokenizer_uri=job.tokenizer_uri)
    if job.model.init_from and ray.train.get_checkpoint() is None:  # a resumed run starts from its checkpoint
        from tasks.export.init_from import load_weights

        module.model.load_state_dict(load_weights(job.model.init_from))

    logger = False
    monitor = None
    if job.mlflow_run_id:
        logger = MLFlowLogger(tracking_uri=job.mlflow_tracking_uri, run_id=job.mlflow_run_id)
        if rank == 0 and job.compute.system_metrics_interval_s:
            monitor = _system_metrics(job)
    callbacks = [
        StepMetrics(job.train.log_every_n_steps, tokens_per_step=job.train.batch_size * block * world * accumulate,
                    flops_per_token=mfu.flops_per_token(module.model), peak_flops_total=_peak_flops(job, world)),
        GradientGuard(job.train.grad_clip, job.train.divergence_patience, job.train.max_rollbacks,
                      latest_checkpoint, sharded=job.compute.strategy == "fsdp"),
        RngState(),
        reporter := CheckpointReporter(job.best_checkpoint_uri),
    ]
    devices = world * (job.compute.gpus_per_worker if job.compute.use_gpu else 1)
    callbacks.append(BudgetGuard(job.compute.budget_device_hours, devices, reporter.save))
    callbacks.append(DeviceEnergy(nvml_reader if job.compute.use_gpu else lambda: None, job.compute.gpus_per_worker))
    if job.stop_actor:
        callbacks.append(StopOnRequest(job.stop_actor, job.stop_namespace, reporter.save))
    if job.progress_actor:
        callbacks.append(ReportProgress(job.progress_actor, job.stop_namespace))
    trainer = L.Trainer(
        max_steps=job.train.max_steps,
        max_epochs=-1,
        accelerator="gpu" if job.compute.use_gpu else "cpu",
        devices="auto",
        strategy=parallelize.strategy(job.train, job.compute),
        plugins=[RayLightningEnvironment()],
        callbacks=callbacks,
        logger=logger,
        precision=job.train.precision,
        deterministic=job.train.deterministic,
        gradient_clip_val=None,  # GradientGuard clips, after checking the norm is finite
        accumulate_grad_batches=accumulate,
        log_every_n_steps=job.train.log_every_n_steps,
        check_val_every_n_epoch=1,
        num_sanity_val_steps=0,
        enable_checkpointing=False,  # CheckpointReporter writes checkpoints through Ray Train
        enable_progress_bar=False,
        enable_model_summary=rank == 0,
        use_distributed_sampler=False,  # our samplers already split the data across ranks
    )
    trainer = prepare_trainer(trainer)

    try:
        with latest_checkpoint() as ckpt_path:
            trainer.fit(module, datamodule=data, ckpt_path=ckpt_path, weights_only=True)
    finally:
        if monitor is not None:
            _finish_system_metrics(monitor)
