"""What one pretraining job needs, as one serialisable config handed to every Ray Train worker."""

from __future__ import annotations

from pydantic import Field

from tasks.config_base import StageConfig
from tasks.training.config import ComputeConfig, ModelConfig, TrainConfig

CHECKPOINT_FILE = "checkpoint.ckpt"  # inside each Ray Train checkpoint folder


class PretrainJob(StageConfig):
    model: ModelConfig
    train: TrainConfig
    compute: ComputeConfig
    vocab_size: int = Field(ge=1)
    train_shards: list[str]
    val_shards: list[str]
    train_sha256: list[str] | None = None
    val_sha256: list[str] | None = None
    # Tokens per shard (the encode manifest): sample counts without opening any shard.
    train_tokens: list[int] | None = None
    val_tokens: list[int] | None = None
    mlflow_tracking_uri: str | None = None
    mlflow_run_id: str | None = None
    best_checkpoint_uri: str | None = None
    tokenizer_uri: str | None = None
    init_sha256: str | None = None  # of model.init_from's config and weights (`tasks/export/init_from.py`)
    stop_actor: str | None = None
    stop_namespace: str | None = None  # of the stop and progress actors
    progress_actor: str | None = None


def accumulation_steps(job: PretrainJob, world_size: int) -> int:
    """Micro-batches per optimizer step that keep `global_batch_tokens` for this many workers."""
    if not job.train.global_batch_tokens:
        return 1
    per_micro = job.train.batch_size * world_size * job.model.block_size
    steps, rest = divmod(job.train.global_batch_tokens, per_micro)
    if rest or not steps:
        raise ValueError(
            f"train.global_batch_tokens={job.train.global_batch_tokens} is not a multiple of batch_size x workers x "
            f"block_size = {per_micro}"
        )
    return steps
