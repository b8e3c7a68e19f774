"""A small encoded corpus (ParlSpeech slice, 512-token BPE) for the training tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def encoded_corpus(root: Path, corpus_dir: Path) -> dict[str, Any]:
    from tasks.encode import stage as encode_stage
    from tasks.encode.config import EncodeConfig
    from tasks.ingest import stage as ingest_stage
    from tasks.ingest.config import IngestConfig, SourceConfig
    from tasks.tokenizer import train as tok_stage
    from tasks.tokenizer.config import TokenizerConfig

    store = str(root / "store")
    icfg = IngestConfig(sources=[SourceConfig(name="p", uri=str(corpus_dir / "parlspeech"), license="x", id_field="id")],
                        val_fraction=0.1)
    ing, files = ingest_stage.plan(icfg, store)
    ingest_stage.run_ingest(icfg, ing, files)
    from tasks.ingest.record import IngestRecord

    shards = ing.read(IngestRecord).shards.model_dump()
    tcfg = TokenizerConfig(vocab_size=512)
    tok = tok_stage.plan(tcfg, store, ing.key)
    tok_stage.run_tokenizer(tcfg, tok, shards["train"])
    ecfg = EncodeConfig()
    enc = encode_stage.plan(ecfg, store, ing.key, tok.key)
    return encode_stage.run_encode(ecfg, enc, shards, tok.path("tokenizer.json")).summary.model_dump(by_alias=True)
