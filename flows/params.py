"""The typed run settings a Prefect deployment shows as a form (defaults and descriptions), turned
into recipe overrides. Anything else stays reachable through free-form `overrides`."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

STAGES = ("ingest", "tokenizer", "encode", "pretrain", "evaluate", "register")
Stage = Literal["ingest", "tokenizer", "encode", "pretrain", "evaluate", "register"]


class RunSettings(BaseModel):
    """Common knobs of a run; a field left empty keeps the recipe's value."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_steps: int | None = Field(None, ge=1, description="Optimizer steps of pretraining (train.max_steps).")
    num_workers: int | None = Field(None, ge=1, description="Ray Train workers (compute.num_workers).")
    use_gpu: bool | None = Field(None, description="Train on GPUs, one per worker (compute.use_gpu).")
    seed: int | None = Field(None, description="Seed of initialisation, data order and dropout (train.seed).")
    storage_root: str | None = Field(
        None, description="Where stage outputs go: a local path or s3://bucket/prefix (storage_root)."
    )

    KEYS: ClassVar[dict[str, str]] = {"max_steps": "train.max_steps", "num_workers": "compute.num_workers", "use_gpu": "compute.use_gpu",
            "seed": "train.seed", "storage_root": "storage_root"}

    def overrides(self) -> list[str]:
        values = self.model_dump(exclude_none=True)
        return [f"{self.KEYS[k]}={str(v).lower() if isinstance(v, bool) else v}" for k, v in values.items()]
