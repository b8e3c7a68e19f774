"""Typed configuration of the ingest stage."""

from __future__ import annotations

from pydantic import Field

from tasks.config_base import StageConfig


class SourceConfig(StageConfig):
    """One named input: a local file, directory or glob, or an `s3://` prefix."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$", description="Short id, part of every doc id.")
    uri: str = Field(description="Path, glob or s3:// prefix; ${VAR} is expanded.")
    license: str = Field(description="License of the texts; recorded for every document.")
    language: str | None = Field(None, description="Language hint (ISO 639-1), if known.")
    text_field: str = Field("text", description="JSON field holding the text (.jsonl inputs).")
    id_field: str | None = Field(None, description="JSON field holding a document id, if any.")


class IngestConfig(StageConfig):
    sources: list[SourceConfig] = Field(min_length=1)
    val_fraction: float = Field(0.05, gt=0.0, lt=0.5, description="Share of documents held out.")
    min_chars: int = Field(1, ge=1, description="Shorter documents are rejected as 'too_short'.")
