"""The encode stage: documents to token shards, a document index and a shard manifest.

Each ingest part (a Parquet file of documents) is encoded by one Ray task into one or more
shards named after the part, so the output does not depend on the number of workers. Each
document's tokens are followed by `<|endoftext|>`. Shards are written whole and published
atomically; `shards.json` lists every shard with its sha256, token and document counts, and
`index/<split>-<part>.parquet` (written by the part's task, so the driver never holds one row per
document) maps every doc id to (split, shard, offset, length): any token can be traced to its
document.
"""

from __future__ import annotations

import hashlib
import os
from functools import lru_cache
from typing import Any, Callable

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from infra import storage
from tasks.artifacts import StageOutput
from tasks.tracking.compute import measured
from tasks.encode.address import STAGE, VERSION, plan  # noqa: F401 (the stage's address)
from tasks.encode.config import EncodeConfig
from tasks.encode.record import EncodeOutputs, EncodeRecord
from tasks.encode.shard_format import token_dtype, write_shard
from tasks.tokenizer.train import EOT, load_tokenizer

SPLITS = ("train", "val")
INDEX_SCHEMA = pa.schema([("doc_id", pa.string()), ("split", pa.string()), ("shard", pa.string()),
                          ("offset", pa.int64()), ("length", pa.int64())])


class _HashingWriter:
    """Wraps a binary file: sha256 of everything written, for the shard manifest."""

    def __init__(self, fh) -> None:
        self.fh, self.sha = fh, hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.sha.update(data)
        return self.fh.write(data)


@lru_cache(maxsize=2)
def _cached_tokenizer(uri: str):
    """One load per worker process: stage outputs are immutable, so a URI names one tokenizer."""
    return load_tokenizer(uri)


def encode_part(
    cfg: EncodeConfig, split: str, part: int, part_uri: str, out_uri: str, tokenizer_uri: str, single_thread: bool
) -> dict[str, Any]:
    """Encode one ingest part into shards `<split>-<part>-<k>.bin` and its index part; returns the
    shards' manifest rows."""
    if single_thread:  # one Ray task per CPU: the tokenizer's own thread pool would oversubscribe
        os.environ["RAYON_NUM_THREADS"] = "1"
    tok = _cached_tokenizer(tokenizer_uri)
    vocab_size, eot = tok.get_vocab_size(), tok.token_to_id(EOT)
    dtype = token_dtype(vocab_size)
    fs, path = storage.filesystem(part_uri)
    table = pq.read_table(path, filesystem=fs, columns=["doc_id", "text"])
    doc_ids, texts = table.column("doc_id").to_pylist(), table.column("text").to_pylist()
    encode = getattr(tok, "encode_batch_fast", tok.encode_batch)
    shards: list[dict[str, Any]] = []
    index: list[dict[str, Any]] = []
    pending: list[np.ndarray] = []
    n_tokens = n_docs = 0

    def flush() -> None:
        nonlocal pending, n_tokens, n_docs
        name = f"{split}-{part:05d}-{len(shards):03d}.bin"
        with storage.open_write(storage.join(out_uri, name)) as fh:
            writer = _HashingWriter(fh)
            write_shard(writer, np.concatenate(pending) if pending else np.empty(0, dtype), n_docs, vocab_size)
        shards.append({"name": name, "split": split, "sha256": writer.sha.hexdigest(), "tokens": n_tokens, "docs": n_docs})
        pending, n_tokens, n_docs = [], 0, 0

    for start in range(0, len(texts), cfg.batch_docs):
        batch = texts[start : start + cfg.batch_docs]
        for doc_id, enc in zip(doc_ids[start:], encode(batch)):
            ids = np.asarray(enc.ids + [eot], dtype=dtype)
            index.append({"doc_id": doc_id, "split": split, "shard": f"{split}-{part:05d}-{len(shards):03d}.bin",
                          "offset": n_tokens, "length": int(ids.size)})
            pending.append(ids)
            n_tokens += ids.size
            n_docs += 1
            if n_tokens >= cfg.shard_tokens:
                flush()
    if pending:
        flush()
    with storage.open_write(storage.join(out_uri, index_part(split, part))) as fh:
        pq.write_table(pa.Table.from_pylist(index, schema=INDEX_SCHEMA), fh, compression="zstd")
    return {"shards": shards, "text_bytes": sum(len(t.encode("utf-8")) for t in texts)}


def index_part(split: str, part: int) -> str:
    return f"index/{split}-{part:05d}.parquet"


@measured
def run_encode(
    cfg: EncodeConfig, out: StageOutput, split_shards: dict[str, list[str]], tokenizer_uri: str,
    mapper: Callable[[Callable, list[tuple]], list] | None = None,
) -> EncodeRecord:
    tok = load_tokenizer(tokenizer_uri)
    jobs = [(cfg, split, i, uri, out.uri, tokenizer_uri, mapper is not None)
            for split in SPLITS for i, uri in enumerate(split_shards[split])]
    results = mapper(encode_part, jobs) if mapper else [encode_part(*j) for j in jobs]
    return publish(out, [j[1] for j in jobs], results, tok)


def publish(out: StageOutput, splits_of: list[str], results: list[dict[str, Any]], tok, **fields: Any) -> EncodeRecord:
    """Write shards.json and the record from each ingest part's result (`encode_part`'s, in order;
    `splits_of` names each one's split). `fields`: more record fields (an erasure rebuild's)."""
    vocab_size = tok.get_vocab_size()
    manifest = [s for r in results for s in r["shards"]]
    if not any(s["tokens"] for s in manifest if s["split"] == "train"):
        raise ValueError("the training split is empty: nothing to encode")
    storage.write_json(out.path("shards.json"), manifest)
    splits: dict[str, Any] = {}
    for split in SPLITS:
        mine = [(j, r) for j, r in zip(splits_of, results) if j == split]
        shard_rows = [s for _, r in mine for s in r["shards"]]
        splits[split] = {
            "shards": [out.path(s["name"]) for s in shard_rows],
            "sha256": [s["sha256"] for s in shard_rows],
            "shard_tokens": [s["tokens"] for s in shard_rows],
            "tokens": sum(s["tokens"] for s in shard_rows),
            "docs": sum(s["docs"] for s in shard_rows),
            "text_bytes": sum(r["text_bytes"] for _, r in mine),
        }
    summary = {"vocab_size": vocab_size, "dtype": token_dtype(vocab_size).name, "eot_id": tok.token_to_id(EOT),
               "splits": splits}
    return out.publish(EncodeRecord, summary=summary,
                       outputs=EncodeOutputs(index=out.path("index"), manifest=out.path("shards.json")),
                       manifest_sha256=hashlib.sha256(storage.read_text(out.path("shards.json")).encode()).hexdigest(),
                       **fields)
