"""What a finished encode publishes (`_SUCCESS.json`): token shards per split, with their digests."""

from __future__ import annotations

from typing import ClassVar

from pydantic import model_validator

from tasks.stage_record import Record, StageRecord


class EncodedSplit(Record):
    """One split's token shards; the lists grow with the number of shards, in the same order."""

    shards: list[str]
    sha256: list[str]
    shard_tokens: list[int]
    tokens: int
    docs: int
    text_bytes: int

    @model_validator(mode="after")
    def _aligned(self) -> EncodedSplit:
        if not len(self.shards) == len(self.sha256) == len(self.shard_tokens):
            raise ValueError("shards, sha256 and shard_tokens must list the same shards")
        if sum(self.shard_tokens) != self.tokens:
            raise ValueError(f"the shards hold {sum(self.shard_tokens)} tokens, the split says {self.tokens}")
        return self


class EncodeSummary(Record):
    vocab_size: int
    dtype: str
    eot_id: int
    splits: dict[str, EncodedSplit]  # "train" and "val"

    @model_validator(mode="after")
    def _both_splits(self) -> EncodeSummary:
        if set(self.splits) != {"train", "val"}:
            raise ValueError(f"an encode record holds the train and val splits, not {sorted(self.splits)}")
        return self


class EncodeOutputs(Record):
    index: str  # folder of index parts: doc_id -> shard, offset, length
    manifest: str  # shards.json


class EncodeRecord(StageRecord):
    STAGE: ClassVar[str] = "encode"
    VERSION: ClassVar[int] = 2

    summary: EncodeSummary
    outputs: EncodeOutputs
    manifest_sha256: str | None = None  # of shards.json, which lists every shard with its sha256 (version 2 on)
    rebuilt_from: str | None = None  # the output an erasure rebuilt this one from (its key)
