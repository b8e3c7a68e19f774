"""The tokenizer stage's content address: code version, config, and either the ingest output it
trains on or the content of a given tokenizer file.

The ingest is named by its base key, before erasures: an erasure rebuilds the documents and the
token shards that held erased text, but keeps the vocabulary (retraining it would change every
token shard). A tokenizer first trained after an erasure is trained on the erased corpus."""

from __future__ import annotations

import hashlib

from infra import storage
from tasks.artifacts import StageOutput
from tasks.tokenizer.config import TokenizerConfig

STAGE = "tokenizer"
VERSION = 2  # 2: named by the ingest's base key


def given_file(uri: str) -> str:
    """`tokenizer.uri` as a tokenizer.json: the file itself, or the one in a Hugging Face model
    folder (a Werk export, or a model to continue pretraining with `model.init_from`)."""
    inside = storage.join(uri, "tokenizer.json")
    return inside if not uri.endswith(".json") and storage.exists(inside) else uri


def plan(cfg: TokenizerConfig, root: str, ingest_base: str) -> StageOutput:
    inputs: dict[str, str] = {"ingest_base": ingest_base}
    if cfg.uri:
        # A given tokenizer is versioned by its content, not by where it lives.
        inputs = {"tokenizer_sha256": hashlib.sha256(storage.read_text(given_file(cfg.uri)).encode()).hexdigest()}
    return StageOutput.at(root, STAGE, VERSION, cfg.model_dump(mode="json", exclude={"uri"}), inputs)
