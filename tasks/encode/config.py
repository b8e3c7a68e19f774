"""Typed configuration of the encode stage."""

from pydantic import Field

from tasks.config_base import StageConfig


class EncodeConfig(StageConfig):
    shard_tokens: int = Field(
        50_000_000, ge=1024, description="A new shard starts once a shard holds this many tokens."
    )
    batch_docs: int = Field(512, ge=1, description="Documents per encode_batch call.")
