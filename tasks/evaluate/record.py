"""What a finished evaluation publishes (`_SUCCESS.json`): the report, typed."""

from __future__ import annotations

from typing import ClassVar

from tasks.stage_record import Record, StageRecord


class Score(Record):
    loss: float  # mean nats per token
    perplexity: float
    bits_per_byte: float
    tokens: int
    bytes: int


class GroupScore(Record):
    """The model and the unigram baseline on one source's or language's held-out text."""

    model: Score
    unigram: Score


class TaskScore(Record):
    task: str
    n: int
    acc: float
    acc_stderr: float
    acc_norm: float
    acc_norm_stderr: float
    random_baseline: float
    by_language: dict[str, dict[str, float]] = {}


class CheckpointScore(Record):
    step: int
    kind: str  # "kept", "best" or "kept, best"
    uri: str
    bits_per_byte: float
    groups: dict[str, float]  # bits per byte per group
    tasks: dict[str, float]  # accuracy per task


class Sampling(Record):
    temperature: float
    top_k: int | None
    top_p: float | None
    seed: int
    max_new_tokens: int


class Sample(Record):
    prompt: str
    text: str


class EvalReport(Record):
    recipe: str
    model: Score
    unigram_baseline: Score
    bpb_ratio_to_unigram: float
    groups: dict[str, GroupScore]  # "source:NAME", "language:CODE"
    tasks: dict[str, TaskScore]
    checkpoints: list[CheckpointScore]
    sampling: Sampling
    samples: list[Sample]
    plots: list[str]


class EvaluateRecord(StageRecord):
    STAGE: ClassVar[str] = "evaluate"
    VERSION: ClassVar[int] = 2

    summary: EvalReport
    outputs: dict[str, str]  # report_json, report_md and each plot
