"""Typed configuration of evaluation: held-out scoring, downstream tasks and sampling."""

from pydantic import Field

from tasks.config_base import StageConfig


def _shipped_tasks() -> list[str]:
    from tasks.evaluate.suite import available

    return list(available())


class EvalConfig(StageConfig):
    max_tokens: int = Field(200_000, ge=1, description="Held-out tokens scored (from the start).")
    group_max_tokens: int = Field(
        50_000, ge=1, description="Held-out tokens scored per source and per language."
    )
    batch_size: int = Field(8, ge=1)
    tasks: list[str] = Field(
        default_factory=_shipped_tasks,
        description="Downstream tasks: names of shipped tasks or paths to task JSONL files; [] for none.",
    )
    task_batch_size: int = Field(32, ge=1)
    prompts: list[str] = Field(default_factory=lambda: ["The ", "Der ", "La ", "De "])
    sample_tokens: int = Field(64, ge=1)
    temperature: float = Field(0.8, ge=0.0)
    top_k: int | None = Field(50, ge=1)
    top_p: float | None = Field(0.95, gt=0.0, le=1.0)
    seed: int = 0
