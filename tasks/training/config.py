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
    norm: Literal["layernorm", "rmsnorm"] = "rmsnorm"
    mlp: Literal["gelu", "swiglu"] = "swiglu"
    position: Literal["learned", "rope"] = "rope"
    n_kv_head: int | None = Field(None, ge=1, description="Key/value heads (grouped-query attention).")
    tie_embeddings: bool = True
    rope_theta: float = Field(10000.0, gt=0.0)
    mlp_hidden: int | None = Field(None, ge=1)
    norm_eps: float | None = Field(None, gt=0.0, description="Default: 1e-5 (LayerNorm), 1e-6 (RMSNorm).")
    init_from: str | None = Field(
        None, description="A Hugging Face model folder (path or s3://) to continue pretraining: a Werk export, or a "
        "Llama or GPT-2 whose blocks Werk computes exactly. Its config sets the model's shape (set no shape field "
        "here) and its tokenizer should be tokenizer.uri.",
    )

    @model_validator(mode="before")
    @classmethod
    def _apply_preset(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("preset"):
            preset = PRESETS.get(data["preset"])
            if preset is not None:
                return {**preset, **data}
        return data

    def gpt_kwargs(self) -> dict[str, Any]:
        return self.model_dump(exclude={"preset", "init_from"})


class TrainConfig(StageConfig):
    max_steps: int = Field(1000, ge=1)
    batch_size: int = Field(16, ge=1, description="Sequences per worker per micro-batch.")
    global_batch_tokens: int | None = Field(
        None, ge=1, description="Tokens per optimizer step over all workers; sets gradient accumulation so "
        "the global batch stays the same whatever the worker count. Default: one micro-batch per worker.",
    )
    lr: float = Field(1e-3, gt=0.0)
    schedule: Literal["cosine", "wsd"] = Field(
        "cosine", description="Warm-up then cosine decay, or warm-up-stable-decay (constant lr, then a linear "
        "decay over the last `decay_fraction` of the steps).",
    )
    min_lr_ratio: float = Field(0.1, ge=0.0, le=1.0, description="Decay floor, as a share of lr.")
    warmup_steps: int = Field(50, ge=0)
    decay_fraction: float = Field(0.2, gt=0.0, le=1.0, description="WSD: share of max_steps spent decaying.")
    weight_decay: float = Field(0.1, ge=0.0)
    grad_clip: float = Field(1.0, ge=0.0, description="0 turns clipping off.")
    seed: int = 1337
    precision: Literal["32-true", "bf16-mixed", "16-mixed"] = "32-true"
    compile: bool = Field(False, description="torch.compile each transformer block (GPU; slow to start on CPU).")
    activation_checkpointing: bool = Field(
        False, description="Recompute each block's activations in the backward pass: less memory, ~30% more compute."
    )
    deterministic: bool = Field(
        False, description="Deterministic algorithms only, so a resumed run repeats an uninterrupted one bit for bit."
    )
    steps_per_checkpoint: int = Field(
        200, ge=1, description="Checkpoint and validate every this many steps."
    )
    keep_checkpoints: int = Field(
        2, ge=1, description="Resumable checkpoints kept (the newest); the best by validation loss is kept apart."
    )
    divergence_patience: int = Field(
        3, ge=1, description="Non-finite steps in a row (each one skipped) before rolling back to the last checkpoint."
    )
    max_rollbacks: int = Field(3, ge=0, description="Rollbacks allowed before the run fails as diverged.")
    val_batches: int = Field(8, ge=1, description="Validation batches per check.")
    log_every_n_steps: int = Field(10, ge=1)
    shuffle_window_shards: int | None = Field(
        None, ge=1, description="Read each epoch window by window, this many shards each (permuted), instead of "
        "from the whole corpus at once: for corpora larger than compute.shard_cache_gb. Default: whole corpus.",
    )


class ComputeConfig(StageConfig):
    """How many Ray Train workers, and what each gets. Decided outside the training function."""

    num_workers: int = Field(2, ge=1)
    use_gpu: bool = False
    cpus_per_worker: float = Field(1.0, gt=0.0)
    gpus_per_worker: float = Field(1.0, gt=0.0, description="Used only with use_gpu.")
    resources_per_worker: dict[str, float] = Field(
        default_factory=dict, description="Extra Ray resources per worker, e.g. a node label resource."
    )
    strategy: Literal["ddp", "fsdp"] = Field(
        "ddp", description="DDP replicates the model on every worker; FSDP shards it (GPU only) for models that "
        "do not fit one device.",
    )
    system_metrics_interval_s: float = Field(
        10.0, ge=0.0, description="Sampling period of MLflow system metrics (CPU, memory, GPU) on rank 0; 0 = off."
    )
    peak_tflops: float | None = Field(
        None, gt=0.0, description="Peak dense TFLOP/s of one device for MFU; default: looked up from the GPU's name."
    )
    max_failures: int = Field(0, ge=-1, description="Worker-group restarts from the last checkpoint.")
    torch_threads: int | None = Field(
        None, ge=1, description="Intra-op threads per worker; default: cpus_per_worker."
    )
    shard_cache_gb: float | None = Field(
        None, gt=0.0, description="Node cache for shards read from S3 (WERK_HOME/cache/shards, shared by the node's "
        "workers); least recently used shards make room. Default: no limit.",
    )
    budget_device_hours: float | None = Field(
        None, gt=0.0, description="Stop training cleanly, with a checkpoint, once it has used this many device-hours "
        "(GPUs, or workers on CPU, times wall hours, over every attempt); raise it to resume. Default: no limit.",
    )
    grid_gco2_per_kwh: float | None = Field(
        None, ge=0.0, description="Carbon intensity of the electricity used, in gCO2eq/kWh (your grid's or "
        "provider's figure): CO2eq is reported only where it is set.",
    )
    cpu_watts_per_core: float = Field(
        10.0, gt=0.0, description="Power drawn per busy CPU core, for energy estimates where the machine exposes no "
        "energy counter (RAPL).",
    )
    gpu_watts: float | None = Field(
        None, gt=0.0, description="Power drawn per busy GPU, for energy estimates where NVML's energy counter is not "
        "read; default: no estimate.",
    )
    energy_meter: Literal["auto", "codecarbon", "rapl", "estimate"] = Field(
        "auto", description="How each stage's host energy is read: CodeCarbon's offline tracker (needs "
        "country_iso_code), RAPL counters, or an estimate from CPU-seconds. auto: CodeCarbon with a country, else "
        "RAPL where readable, else the estimate. GPUs are read from NVML on every rank whatever the choice.",
    )
    country_iso_code: str | None = Field(
        None, pattern=r"^[A-Z]{3}$", description="Where the machines run (ISO 3166 alpha-3, e.g. DEU): CodeCarbon's "
        "offline tracker takes that country's grid intensity for CO2eq unless grid_gco2_per_kwh is set.",
    )

    @model_validator(mode="after")
    def _fsdp_needs_gpu(self) -> "ComputeConfig":
        if self.strategy == "fsdp" and not self.use_gpu:
            raise ValueError("compute.strategy=fsdp needs compute.use_gpu=true (use ddp on CPU)")
        return self

    @model_validator(mode="after")
    def _country_known(self) -> "ComputeConfig":
        if self.energy_meter == "codecarbon" and not self.country_iso_code:
            raise ValueError("compute.energy_meter=codecarbon needs compute.country_iso_code (e.g. DEU): Werk runs "
                             "CodeCarbon offline, with that country's grid")
        if self.country_iso_code:
            from codecarbon.input import DataSource  # 0.7 s; only for recipes that name a country

            known = DataSource().get_global_energy_mix_data()
            if self.country_iso_code not in known:
                raise ValueError(f"compute.country_iso_code {self.country_iso_code!r} is not in CodeCarbon's energy-mix "
                                 f"data (ISO 3166 alpha-3 codes such as DEU, FRA, FIN)")
        return self

    def energy(self):
        """How stages of this recipe read their host energy (`tasks.tracking.compute.use_meter`)."""
        from tasks.tracking.compute import EnergyMeter

        return EnergyMeter(kind=self.energy_meter, country_iso_code=self.country_iso_code)
