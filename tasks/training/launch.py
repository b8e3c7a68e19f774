"""Run a pretraining job on Ray Train and publish its final weights.

Checkpoints go through Ray Train to `<storage root>/ray/` (local disk or S3). Ray Train resumes a
run with the same name and storage path from its latest checkpoint, so rerunning an interrupted
pipeline loses at most one checkpoint interval. The final checkpoint is then exported to plain
torch weights (`model.pt`, loaded with `weights_only=True`) plus `model_config.json`.
"""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import torch

from infra import storage
from tasks.artifacts import StageOutput
from tasks.tracking.compute import measured
from tasks.training.address import STAGE, VERSION, plan  # noqa: F401 (the stage's address)
from tasks.training.errors import BudgetSpent, TrainingStopped
from tasks.training.job import CHECKPOINT_FILE, PretrainJob
from tasks.training.record import PretrainOutputs, PretrainRecord, SampleOrder

if TYPE_CHECKING:  # progress.py imports Lightning and Ray: loaded when training starts
    from tasks.training.progress import TrainStatus


def _ray_storage(root: str) -> tuple[str, Any]:
    """Ray Train's storage path and filesystem for a Werk storage root."""
    if root.startswith("s3://"):
        from pyarrow import fs as pafs

        endpoint = storage.s3_endpoint()
        kwargs: dict[str, Any] = {}
        if endpoint:
            scheme, _, host = endpoint.partition("://")
            kwargs = {"endpoint_override": host, "scheme": scheme}
        # Keys are read from the environment in each process, never pickled into the job.
        return root.removeprefix("s3://").rstrip("/") + "/ray", pafs.S3FileSystem(**kwargs)
    return str(Path(root).resolve() / "ray"), None


def run_name(out: StageOutput) -> str:
    return f"pretrain-{out.key}"


def best_checkpoint_uri(root: str, out: StageOutput) -> str:
    if root.startswith("s3://"):
        return f"{root.rstrip('/')}/ray/{run_name(out)}/best"
    return str(Path(root).resolve() / "ray" / run_name(out) / "best")


def _resources(job: PretrainJob) -> dict[str, float]:
    resources = {"CPU": job.compute.cpus_per_worker, **job.compute.resources_per_worker}
    if job.compute.use_gpu:
        resources["GPU"] = job.compute.gpus_per_worker
    return resources


@measured
def run_pretrain(job: PretrainJob, out: StageOutput, root: str, on_status: Callable[[TrainStatus], None] | None = None) -> PretrainRecord:
    """Train until `train.max_steps`, resuming the run's latest checkpoint if there is one.

    Raises `TrainingStopped` when SIGTERM/SIGUSR1 ended training early: the checkpoint is
    written and the same call later resumes from it. `on_status` hears rank 0's numbers and
    milestones every few seconds (from a driver thread; `progress.py`).
    """
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    from tasks.training.progress import watch_training
    from tasks.training.stop import stop_on_signals
    from tasks.training.train_loop import train_loop

    storage_path, filesystem = _ray_storage(root)
    name = run_name(out)
    with stop_on_signals(f"werk-stop-{out.key}") as stop, contextlib.ExitStack() as watching:
        progress = watching.enter_context(watch_training(f"werk-progress-{out.key}", on_status)) if on_status else None
        job = job.model_copy(update={"best_checkpoint_uri": best_checkpoint_uri(root, out), "progress_actor": progress,
                                     "stop_actor": stop.actor_name, "stop_namespace": stop.namespace})
        trainer = TorchTrainer(
            train_loop_per_worker=train_loop,
            train_loop_config=job.model_dump(mode="json"),
            scaling_config=ScalingConfig(
                num_workers=job.compute.num_workers, use_gpu=job.compute.use_gpu, resources_per_worker=_resources(job)
            ),
            run_config=RunConfig(
                name=name,
                storage_path=storage_path,
                storage_filesystem=filesystem,
                # The newest K; Ray never deletes the latest. The best is kept apart by CheckpointReporter.
                checkpoint_config=CheckpointConfig(num_to_keep=job.train.keep_checkpoints),
                failure_config=FailureConfig(max_failures=job.compute.max_failures),
            ),
        )
        result = trainer.fit()
    if result.checkpoint is None:
        raise RuntimeError("pretraining finished without a checkpoint")
    metrics = {k: float(v) for k, v in (result.metrics or {}).items() if isinstance(v, (int, float))}
    with result.checkpoint.as_directory() as ckpt_dir:
        state = torch.load(Path(ckpt_dir) / CHECKPOINT_FILE, map_location="cpu", weights_only=True)
    step = int(state.get("global_step", 0))
    budget = _budget_state(state)
    limit = job.compute.budget_device_hours
    spent = budget.get("exhausted") or (limit is not None and budget.get("device_seconds", 0.0) >= limit * 3600)
    if step < job.train.max_steps and spent:
        raise BudgetSpent(
            f"pretraining used its compute budget ({job.compute.budget_device_hours:g} device-hours; "
            f"{budget['device_seconds'] / 3600:.4g} spent) at step {step} of {job.train.max_steps}; its checkpoint is "
            f"saved at {result.checkpoint.path}: raise compute.budget_device_hours and run again to go on")
    if step < job.train.max_steps:
        raise TrainingStopped(
            f"pretraining stopped by {stop.reason or 'request'} at step {step} of {job.train.max_steps}; its "
            f"checkpoint is saved at {result.checkpoint.path}: run the same command again to resume"
        )
    weights = {k.removeprefix("model."): v for k, v in state["state_dict"].items() if k.startswith("model.")}
    model_config = {"vocab_size": job.vocab_size, **job.model.gpt_kwargs()}
    with tempfile.TemporaryDirectory() as tmp:
        torch.save(weights, Path(tmp) / "model.pt")
        storage.upload_file(Path(tmp) / "model.pt", out.path("model.pt"))
    storage.write_json(out.path("model_config.json"), model_config)
    best = storage.join(job.best_checkpoint_uri, "best.json")
    scheme = "s3://" if root.startswith("s3://") else ""
    kept = sorted(({"uri": f"{scheme}{c.path}/{CHECKPOINT_FILE}", "step": int(m.get("step", -1)), "val_loss": m.get("val/loss")}
                   for c, m in result.best_checkpoints or []), key=lambda k: k["step"])
    summary = {
        "global_step": step,
        "metrics": metrics,
        "checkpoint": result.checkpoint.path,
        "best": {**storage.read_json(best), "checkpoint": storage.join(job.best_checkpoint_uri, CHECKPOINT_FILE)}
        if storage.exists(best) else None,
        "kept_checkpoints": kept,
        "parameters": sum(v.numel() for k, v in weights.items() if k != "lm_head.weight"),
        "mlflow_run_id": job.mlflow_run_id,  # where the training curves are, also when this output is reused
        "device_hours": budget.get("device_seconds", 0.0) / 3600,
        "flops": training_flops(job, step),
    }
    from tasks.tracking.compute import so_far

    used = so_far(device_s=summary["device_hours"] * 3600, device="gpu" if job.compute.use_gpu else "cpu-worker",
                  flops=summary["flops"], device_energy_j=_device_joules(state) if job.compute.use_gpu else None)
    return out.publish(PretrainRecord, summary=summary,
                       outputs=PretrainOutputs(weights=out.path("model.pt"), config=out.path("model_config.json")),
                       data=sample_order(job, step), compute=used)


def _budget_state(state: dict[str, Any]) -> dict[str, Any]:
    """The budget guard's state in a Lightning checkpoint (its callbacks' states, by key)."""
    from tasks.training.budget import STATE_KEY

    return (state.get("callbacks") or {}).get(STATE_KEY) or {}


def _device_joules(state: dict[str, Any]) -> float | None:
    """The training GPUs' energy, summed over ranks and attempts (`device_energy.py`); None unmeasured."""
    from tasks.training.device_energy import STATE_KEY

    joules = ((state.get("callbacks") or {}).get(STATE_KEY) or {}).get("joules")
    return float(joules) if joules is not None else None


def training_flops(job: PretrainJob, steps: int) -> float:
    """Training FLOPs: (6·N + attention) per token (`mfu.py`) times the tokens trained."""
    from models.gpt import GPT, GPTConfig
    from tasks.training.job import accumulation_steps
    from tasks.training.mfu import flops_per_token

    with torch.device("meta"):  # counts parameters without allocating them
        model = GPT(GPTConfig(vocab_size=job.vocab_size, **job.model.gpt_kwargs()))
    world = job.compute.num_workers
    tokens = steps * job.train.batch_size * world * accumulation_steps(job, world) * job.model.block_size
    return flops_per_token(model) * tokens


def sample_order(job: PretrainJob, steps: int) -> SampleOrder:
    """What lineage needs to recompute which tokens each step trained on."""
    from tasks.encode.shard_format import open_shard
    from tasks.training.job import accumulation_steps

    world = job.compute.num_workers
    tokens = job.train_tokens or [open_shard(storage.local_copy(u))[0].n_tokens for u in job.train_shards]
    return SampleOrder(train_shards=job.train_shards, shard_tokens=tokens, block_size=job.model.block_size,
                       seed=job.train.seed, samples_per_step=job.train.batch_size * world * accumulation_steps(job, world),
                       window=job.train.shuffle_window_shards, steps=steps)


def load_model(weights_uri: str, config_uri: str):
    """The trained GPT, in eval mode on CPU, loaded with `weights_only=True`."""
    from models.gpt import GPT, GPTConfig

    cfg = GPTConfig(**storage.read_json(config_uri))
    model = GPT(cfg)
    state = torch.load(storage.local_copy(weights_uri), map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    return model.eval()
