"""Typed configuration of the tokenizer stage."""

from pydantic import Field

from tasks.config_base import StageConfig


class TokenizerConfig(StageConfig):
    vocab_size: int = Field(8192, ge=512, le=1 << 20, description="Byte-level BPE vocabulary size.")
    min_frequency: int = Field(2, ge=1, description="Merges seen fewer times are not learned.")
    sample_bytes: int | None = Field(
        200_000_000, ge=1, description="Train on an evenly spread sample of this many bytes; None: all of it."
    )
    uri: str | None = Field(
        None, description="Use this existing tokenizer.json, or the one in a Hugging Face model folder (path or s3://), "
        "instead of training one."
    )
