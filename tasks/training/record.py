"""What a finished pretraining publishes (`_SUCCESS.json`): the exported weights and how they came to be."""

from __future__ import annotations

from typing import ClassVar

from pydantic import ConfigDict, Field

from tasks.stage_record import Record, StageRecord


class BestCheckpoint(Record):
    """The checkpoint with the lowest validation loss, kept apart from the newest ones."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    step: int
    checkpoint: str
    val_loss: float | None = Field(default=None, alias="val/loss")


class KeptCheckpoint(Record):
    uri: str
    step: int
    val_loss: float | None = None


class PretrainSummary(Record):
    global_step: int
    metrics: dict[str, float]  # rank 0's last reported metrics
    checkpoint: str  # the last checkpoint's folder
    best: BestCheckpoint | None = None
    kept_checkpoints: list[KeptCheckpoint] = []  # the newest `train.keep_checkpoints`
    parameters: int  # without the tied output head
    mlflow_run_id: str | None = None  # where the training curves are, also when this output is reused
    device_hours: float | None = None  # over every attempt (`budget.py`); version 2 on
    flops: float | None = None  # (6·N + attention) per token x tokens trained; version 2 on


class PretrainOutputs(Record):
    weights: str  # model.pt, a plain state dict
    config: str  # model_config.json


class SampleOrder(Record):
    """What decides which tokens each optimizer step trained on (`sampling.py`): with these, the
    step at which any token was first seen is recomputed exactly (`tasks/lineage/seen.py`)."""

    train_shards: list[str]  # as the job listed them (shards shorter than one sample hold none)
    shard_tokens: list[int]  # tokens per shard, same order
    block_size: int
    seed: int
    samples_per_step: int  # per optimizer step, all ranks and micro-batches together
    window: int | None = None  # train.shuffle_window_shards
    steps: int  # optimizer steps trained

    @property
    def tokens_trained(self) -> int:
        return self.steps * self.samples_per_step * self.block_size


class PretrainRecord(StageRecord):
    STAGE: ClassVar[str] = "pretrain"
    VERSION: ClassVar[int] = 2

    summary: PretrainSummary
    outputs: PretrainOutputs
    data: SampleOrder | None = None  # version 2 on
