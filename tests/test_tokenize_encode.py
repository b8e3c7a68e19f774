import numpy as np
import pyarrow.parquet as pq

from tasks.encode import stage as encode_stage
from tasks.encode.config import EncodeConfig
from tasks.encode.shard_format import open_shard
from tasks.tokenizer.byte_lengths import token_byte_lengths
from tasks.ingest import stage as ingest_stage
from tasks.ingest.config import IngestConfig, SourceConfig
from tasks.tokenizer import train as tok_stage
from tasks.tokenizer.config import TokenizerConfig


def _pipeline(tmp_path, corpus_dir, shard_tokens=20_000):
    root = str(tmp_path / "store")
    icfg = IngestConfig(sources=[
        SourceConfig(name="shakespeare", uri=str(corpus_dir / "shakespeare" / "*.txt"), license="pd"),
        SourceConfig(name="parlspeech", uri=str(corpus_dir / "parlspeech"), license="CC0-1.0", id_field="id"),
    ], val_fraction=0.1)
    ing, files = ingest_stage.plan(icfg, root)
    ingest_stage.run_ingest(icfg, ing, files)
    from tasks.ingest.record import IngestRecord

    shards = ing.read(IngestRecord).shards.model_dump()
    tcfg = TokenizerConfig(vocab_size=600)
    tok_out = tok_stage.plan(tcfg, root, ing.key)
    tok_stage.run_tokenizer(tcfg, tok_out, shards["train"], val_shards=shards["val"])
    ecfg = EncodeConfig(shard_tokens=shard_tokens)
    enc_out = encode_stage.plan(ecfg, root, ing.key, tok_out.key)
    summary = encode_stage.run_encode(ecfg, enc_out, shards, tok_out.path("tokenizer.json")).summary.model_dump(by_alias=True)
    return shards, tok_out, enc_out, summary


def test_tokenizer_roundtrips_multilingual_text(tmp_path, corpus_dir):
    _, tok_out, _, _ = _pipeline(tmp_path, corpus_dir)
    tok = tok_stage.load_tokenizer(tok_out.path("tokenizer.json"))
    assert tok.get_vocab_size() == 600
    assert tok.token_to_id(tok_stage.EOT) == 0
    for text in ["Señorías, gracias.", "Herr Präsident! Größe", "Voorzitter, ik ben 🙂 blij"]:
        assert tok.decode(tok.encode(text).ids) == text  # byte-level: nothing is unknown


def test_shards_and_index_reconstruct_every_document(tmp_path, corpus_dir):
    outputs, tok_out, enc_out, summary = _pipeline(tmp_path, corpus_dir)
    tok = tok_stage.load_tokenizer(tok_out.path("tokenizer.json"))
    train = summary["splits"]["train"]
    assert len(train["shards"]) > 1  # small shard size forces several shards
    shards = {uri.rsplit("/", 1)[-1]: open_shard(uri)[1] for uri in train["shards"] + summary["splits"]["val"]["shards"]}
    assert sum(len(s) for n, s in shards.items() if n.startswith("train")) == train["tokens"]
    index = pq.read_table(enc_out.path("index")).to_pylist()
    docs = {}
    for uri in outputs["train"]:
        docs.update(zip(*[pq.read_table(uri).column(c).to_pylist() for c in ("doc_id", "text")]))
    rows = [r for r in index if r["split"] == "train"]
    assert len(rows) == len(docs) == train["docs"]
    for row in rows:
        ids = shards[row["shard"]][row["offset"] : row["offset"] + row["length"]]
        assert ids[-1] == 0  # every document ends with <|endoftext|>
        assert tok.decode(ids[:-1].tolist()) == docs[row["doc_id"]]


def test_token_byte_lengths_match_utf8(tmp_path, corpus_dir):
    _, tok_out, _, summary = _pipeline(tmp_path, corpus_dir)
    tok = tok_stage.load_tokenizer(tok_out.path("tokenizer.json"))
    lengths = token_byte_lengths(tok)
    text = "Frau Präsidentin! ¿Qué tal? Dat is één"
    assert int(lengths[np.array(tok.encode(text).ids)].sum()) == len(text.encode("utf-8"))
    # Across the whole training split: bytes of tokens == bytes of text, plus one per <|endoftext|>.
    train = summary["splits"]["train"]
    total = sum(int(lengths[open_shard(u)[1]].sum()) for u in train["shards"])
    assert total == train["text_bytes"] + train["docs"]


def test_fertility_table_per_language(tmp_path, corpus_dir):
    import json

    _, tok_out, _, _ = _pipeline(tmp_path, corpus_dir)
    table = json.loads(open(tok_out.path("fertility.json")).read())
    assert table  # languages of the held-out documents (or "unknown" without language ID)
    for lang, row in table.items():
        assert row["tokens"] > 0 and row["tokens_per_word"] > 1.0 and 1.0 < row["bytes_per_token"] < 8.0
    assert "tokens per word" in open(tok_out.path("fertility.md")).read()
    import hashlib

    from tasks.tokenizer.record import TokenizerRecord

    summary = tok_out.read(TokenizerRecord).summary.model_dump()
    assert summary["sha256"] == hashlib.sha256(open(tok_out.path("tokenizer.json"), "rb").read()).hexdigest()


def test_existing_tokenizer_by_uri_is_used_and_versioned_by_content(tmp_path, corpus_dir):
    _, tok_out, _, _ = _pipeline(tmp_path, corpus_dir)
    given = TokenizerConfig(uri=tok_out.path("tokenizer.json"))
    out = tok_stage.plan(given, str(tmp_path / "other"), "any-ingest")
    summary = tok_stage.run_tokenizer(given, out, []).summary.model_dump(by_alias=True)
    assert summary["source"] == given.uri and summary["vocab_size"] == 600
    assert open(out.path("tokenizer.json")).read() == open(tok_out.path("tokenizer.json")).read()
    moved = tmp_path / "copy.json"
    moved.write_text(open(tok_out.path("tokenizer.json")).read())
    assert tok_stage.plan(TokenizerConfig(uri=str(moved)), str(tmp_path / "other"), "any-ingest").key == out.key


def test_empty_training_split_is_refused(tmp_path):
    import pytest

    cfg = TokenizerConfig(vocab_size=600)
    with pytest.raises(ValueError, match="empty"):
        tok_stage.run_tokenizer(cfg, tok_stage.plan(cfg, str(tmp_path), "k"), [])
