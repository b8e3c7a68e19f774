"""Typed configuration of pretraining: the model's shape, the optimisation, and the compute."""

from typing import Any, Literal

from pydantic import Field, model_validator

from models.presets import PRESETS

from tasks.config_base import StageConfig


class ModelConfig(StageConfig):
    """Shape of the model in `models/gpt.py`; the vocabulary size comes from the tokenizer.

    `preset` (debug, gpt2-124m, 124m, 350m, 1b; see `models/presets.py`) fills every field the
    recipe does not set itself.
    """

    preset: Literal[tuple(PRESETS)] | None = None  # type: ignore[valid-type]
    block_size: int = Field(256, ge=8)
    n_layer: int = Field(4, ge=1)
    n_head: int = Field(4, ge=1)
    n_embd: int = Field(256, ge=8)
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    bias: bool = False
    norm: Literal["layernorm", "rmsnorm"] = "layernorm"
    mlp: Literal["gelu", "swiglu"] = "gelu"
    position: Literal["learned", "rope"] = "learned"
    n_kv_head: int | None = Field(None, ge=1, description="Key/value heads (grouped-query attention).")
    tie_embeddings: bool = True
    rope_theta: float = Field(10000.0, gt=0.0)
    mlp_hidden: int | None = Field(None, ge=1)

    @model_validator(mode="before")
    @classmethod
    def _apply_preset(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("preset"):
            preset = PRESETS.get(data["preset"])
            if preset is not None:
                return {**preset, **data}
        return data

    def gpt_kwargs(self) -> dict[str, Any]:
        return self.model_dump(exclude={"preset"})


class TrainConfig(StageConfig):
    max_steps: int = Field(1000, ge=1)
    batch_size: int = Field(16, ge=1, description="Sequences per worker per micro-batch.")
    global_batch_tokens: int | None = Field(
        None, ge=1, description="Tokens per optimizer step over all workers; sets gradient accumulation so "
        "the global batch stays the same whatever the worker count. Default: one micro-batch per worker.",
    )
    lr: float = Field(1e-3, gt=0.0)
    min_lr_ratio: float = Field(0.1, ge=0.0, le=1.0, description="Cosine decay floor, as a share of lr.")
    warmup_steps: int = Field(50, ge=0)
    weight_decay: float = Field(0.1, ge=0.0)
    grad_clip: float = Field(1.0, ge=0.0, description="0 turns clipping off.")
    seed: int = 1337
    precision: Literal["32-true", "bf16-mixed", "16-mixed"] = "32-true"
    steps_per_checkpoint: int = Field(
        200, ge=1, description="Checkpoint and validate every this many steps."
    )
    val_batches: int = Field(8, ge=1, description="Validation batches per check.")
    log_every_n_steps: int = Field(10, ge=1)


class ComputeConfig(StageConfig):
    """How many Ray Train workers, and what each gets. Decided outside the training function."""

    num_workers: int = Field(2, ge=1)
    use_gpu: bool = False
    cpus_per_worker: float = Field(1.0, gt=0.0)
    max_failures: int = Field(0, ge=-1, description="Worker-group restarts from the last checkpoint.")
    torch_threads: int | None = Field(
        None, ge=1, description="Intra-op threads per worker; default: cpus_per_worker."
    )
