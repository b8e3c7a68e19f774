"""Typed configuration of evaluation and sampling."""

from pydantic import Field

from tasks.config_base import StageConfig


class EvalConfig(StageConfig):
    max_tokens: int = Field(200_000, ge=1, description="Held-out tokens scored (from the start).")
    batch_size: int = Field(8, ge=1)
    prompts: list[str] = Field(default_factory=lambda: ["The ", "Der ", "La "])
    sample_tokens: int = Field(64, ge=1)
    temperature: float = Field(0.8, ge=0.0)
    top_k: int | None = Field(50, ge=1)
    seed: int = 0
