"""Typed configuration of the promotion gate."""

from __future__ import annotations

from pydantic import Field

from tasks.config_base import StageConfig


class RegistryConfig(StageConfig):
    gate_metric: str = Field(
        "bits_per_byte", pattern=r"^(bits_per_byte|loss|perplexity|[a-z0-9][a-z0-9_.-]*/(acc|acc_norm))$",
        description="Evaluation metric that decides promotion: bits_per_byte, loss, perplexity, or <task>/acc, "
        "<task>/acc_norm for a downstream task.",
    )
    min_improvement: float = Field(
        0.0, ge=0.0, description="How much better than the champion the candidate must be (in the metric's units).",
    )

    keep_champion_on_erasure: bool = Field(
        False, description="Keep @champion on a model version trained on data erased since (GDPR Art. 17); by "
        "default the alias is removed until a model trained on the rebuilt data is promoted.",
    )

    export_hf: bool = Field(
        True, description="Log a Hugging Face folder of every new version (LlamaForCausalLM or GPT2LMHeadModel, "
        "with its tokenizer and model card) as the `hf` artifact of its run, for transformers and vLLM.",
    )

    @property
    def higher_is_better(self) -> bool:
        return self.gate_metric.endswith(("/acc", "/acc_norm"))
