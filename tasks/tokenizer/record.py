"""What a finished tokenizer stage publishes (`_SUCCESS.json`)."""

from __future__ import annotations

from typing import ClassVar

from tasks.stage_record import Record, StageRecord


class Fertility(Record):
    """Tokens per word and bytes per token of one language's validation documents."""

    documents: int
    words: int
    tokens: int
    bytes: int
    tokens_per_word: float
    bytes_per_token: float


class TokenizerSummary(Record):
    vocab_size: int
    eot_id: int
    pad_id: int | None
    source: str  # "trained", or the URI it was loaded from
    sha256: str  # of tokenizer.json
    fertility: dict[str, Fertility] = {}  # per language of the validation split


class TokenizerOutputs(Record):
    tokenizer: str


class TokenizerRecord(StageRecord):
    STAGE: ClassVar[str] = "tokenizer"
    VERSION: ClassVar[int] = 2

    summary: TokenizerSummary
    outputs: TokenizerOutputs
