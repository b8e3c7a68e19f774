"""The encode stage's content address: code version, config, and the ingest and tokenizer outputs
it reads."""

from __future__ import annotations

from tasks.artifacts import StageOutput
from tasks.encode.config import EncodeConfig

STAGE = "encode"
VERSION = 3  # 3: the document index in parts, one per ingest part


def plan(cfg: EncodeConfig, root: str, ingest_key: str, tokenizer_key: str) -> StageOutput:
    identity = cfg.model_dump(mode="json", exclude={"batch_docs"})  # batching does not change output
    return StageOutput.at(root, STAGE, VERSION, identity, {"ingest": ingest_key, "tokenizer": tokenizer_key})
