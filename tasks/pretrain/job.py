"""What one pretraining job needs, as one serialisable config handed to every Ray Train worker."""

from __future__ import annotations

from pydantic import Field

from tasks.config_base import StageConfig
from tasks.pretrain.config import ComputeConfig, ModelConfig, TrainConfig


class PretrainJob(StageConfig):
    model: ModelConfig
    train: TrainConfig
    compute: ComputeConfig
    vocab_size: int = Field(ge=1)
    train_shards: list[str]
    val_shards: list[str]
    train_sha256: list[str] | None = None
    val_sha256: list[str] | None = None
    mlflow_tracking_uri: str | None = None
    mlflow_run_id: str | None = None
