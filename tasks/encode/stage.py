"""The encode stage: documents to token shards plus a document index.

Each document's tokens are followed by `<|endoftext|>`. Shards are written whole and published
atomically; `index.parquet` maps every doc id to (split, shard, offset, length) so one lookup says
where a document's tokens are.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from infra import storage
from tasks.artifacts import StageOutput
from tasks.encode.config import EncodeConfig
from tasks.encode.shard_format import token_dtype, write_shard
from tasks.tokenizer.train import EOT, load_tokenizer

STAGE = "encode"
VERSION = 1
SPLITS = ("train", "val")


def plan(cfg: EncodeConfig, root: str, ingest_key: str, tokenizer_key: str) -> StageOutput:
    return StageOutput.at(root, STAGE, VERSION, cfg, {"ingest": ingest_key, "tokenizer": tokenizer_key})


def run_encode(
    cfg: EncodeConfig, out: StageOutput, split_shards: dict[str, list[str]], tokenizer_uri: str
) -> dict[str, Any]:
    tok = load_tokenizer(tokenizer_uri)
    vocab_size = tok.get_vocab_size()
    eot = tok.token_to_id(EOT)
    dtype = token_dtype(vocab_size)
    index: list[dict] = []
    splits: dict[str, Any] = {}
    for split in SPLITS:
        tables = []
        for uri in split_shards[split]:
            fs, path = storage.filesystem(uri)
            tables.append(pq.read_table(path, filesystem=fs, columns=["doc_id", "text"]))
        table = pa.concat_tables(tables) if tables else pa.table({"doc_id": pa.array([], pa.string()), "text": pa.array([], pa.large_string())})
        splits[split] = _encode_split(cfg, out, split, table, tok, eot, dtype, vocab_size, index)
    index_table = pa.Table.from_pylist(
        index,
        schema=pa.schema([("doc_id", pa.string()), ("split", pa.string()), ("shard", pa.string()),
                          ("offset", pa.int64()), ("length", pa.int64())]),
    )
    with storage.open_write(out.path("index.parquet")) as fh:
        pq.write_table(index_table, fh, compression="zstd")
    summary = {"vocab_size": vocab_size, "dtype": dtype.name, "eot_id": eot, "splits": splits}
    out.publish({"summary": summary, "outputs": {"index": out.path("index.parquet")}})
    return summary


def _encode_split(cfg, out, split, table, tok, eot, dtype, vocab_size, index) -> dict[str, Any]:
    doc_ids = table.column("doc_id").to_pylist()
    texts = table.column("text").to_pylist()
    encode = getattr(tok, "encode_batch_fast", tok.encode_batch)
    shards: list[str] = []
    pending: list[np.ndarray] = []
    pending_tokens = 0
    pending_docs = 0
    total_tokens = 0
    n_bytes = 0

    def flush() -> None:
        nonlocal pending, pending_tokens, pending_docs
        name = f"{split}-{len(shards):05d}.bin"
        with storage.open_write(out.path(name)) as fh:
            write_shard(fh, np.concatenate(pending) if pending else np.empty(0, dtype), pending_docs, vocab_size)
        shards.append(out.path(name))
        pending, pending_tokens, pending_docs = [], 0, 0

    for start in range(0, len(texts), cfg.batch_docs):
        batch = texts[start : start + cfg.batch_docs]
        for doc_id, text, enc in zip(doc_ids[start:], batch, encode(batch)):
            ids = np.asarray(enc.ids + [eot], dtype=dtype)
            index.append({"doc_id": doc_id, "split": split, "shard": f"{split}-{len(shards):05d}.bin",
                          "offset": pending_tokens, "length": int(ids.size)})
            pending.append(ids)
            pending_tokens += ids.size
            pending_docs += 1
            total_tokens += ids.size
            n_bytes += len(text.encode("utf-8"))
            if pending_tokens >= cfg.shard_tokens:
                flush()
    if pending or not shards:
        flush()
    return {"shards": shards, "tokens": total_tokens, "docs": len(texts), "text_bytes": n_bytes}
