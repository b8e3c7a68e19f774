"""The tokenizer stage's content address: code version, config, and either the ingest output it
trains on or the content of a given tokenizer file."""

from __future__ import annotations

import hashlib

from infra import storage
from tasks.artifacts import StageOutput
from tasks.tokenizer.config import TokenizerConfig

STAGE = "tokenizer"
VERSION = 1


def plan(cfg: TokenizerConfig, root: str, ingest_key: str) -> StageOutput:
    inputs: dict[str, str] = {"ingest": ingest_key}
    if cfg.uri:
        # A given tokenizer is versioned by its content, not by where it lives.
        inputs = {"tokenizer_sha256": hashlib.sha256(storage.read_text(cfg.uri).encode()).hexdigest()}
    return StageOutput.at(root, STAGE, VERSION, cfg.model_dump(mode="json", exclude={"uri"}), inputs)
