"""Train a byte-level BPE tokenizer with HF `tokenizers` on the training split.

Byte-level means every string is encodable (no unknown token) and decoding gives back the exact
bytes. `<|endoftext|>` separates documents in token shards and has id 0; `<|pad|>` has id 1.
Training reads an evenly spread sample of the training split (every k-th document) when the split
is larger than `sample_bytes`. A tokenizer given by URI is used as is; either way the stage's
address includes the tokenizer's content hash.
"""

from __future__ import annotations

import hashlib
import math
import time
from pathlib import Path
from typing import Callable, Iterable, Iterator

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

from infra import storage
from tasks.artifacts import StageOutput
from tasks.tracking.compute import measured
from tasks.ingest.stage import read_texts
from tasks.tokenizer.address import STAGE, VERSION, given_file, plan  # noqa: F401 (the stage's address)
from tasks.tokenizer.config import TokenizerConfig
from tasks.tokenizer.fertility import fertility
from tasks.tokenizer.fertility import markdown as fertility_markdown
from tasks.tokenizer.record import TokenizerOutputs, TokenizerRecord, TokenizerSummary

EOT = "<|endoftext|>"
PAD = "<|pad|>"


def build_tokenizer(cfg: TokenizerConfig, texts: Iterable[str]) -> Tokenizer:
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=cfg.vocab_size,
        min_frequency=cfg.min_frequency,
        special_tokens=[EOT, PAD],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_batched(texts), trainer=trainer)
    return tok


def _batched(texts: Iterable[str], size: int = 1000) -> Iterator[list[str]]:
    batch: list[str] = []
    for t in texts:
        batch.append(t)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def sampled(texts: Iterable[str], total_bytes: int, sample_bytes: int | None) -> Iterator[str]:
    """Every k-th document, k chosen so that about `sample_bytes` are kept."""
    step = max(1, math.ceil(total_bytes / sample_bytes)) if sample_bytes else 1
    for i, text in enumerate(texts):
        if i % step == 0:
            yield text


def _val_docs(val_shards: list[str]) -> Iterator[tuple[str | None, str]]:
    """(language, text) of the validation documents, one shard in memory at a time."""
    import pyarrow.parquet as pq

    for uri in val_shards:
        fs, path = storage.filesystem(uri)
        t = pq.read_table(path, filesystem=fs, columns=["language", "text"])
        yield from zip(t.column("language").to_pylist(), t.column("text").to_pylist())


def _counted(texts: Iterable[str], on_bytes: Callable[[int], None], every_s: float = 0.5) -> Iterator[str]:
    """`texts`, telling `on_bytes` how many bytes have gone by, at most every `every_s` seconds."""
    seen, told = 0, time.monotonic()
    for text in texts:
        seen += len(text.encode("utf-8"))
        if time.monotonic() - told >= every_s:
            on_bytes(seen)
            told = time.monotonic()
        yield text
    on_bytes(seen)


@measured
def run_tokenizer(
    cfg: TokenizerConfig, out: StageOutput, train_shards: list[str], train_bytes: int = 0,
    val_shards: list[str] | None = None, on_bytes: Callable[[int], None] | None = None,
) -> TokenizerRecord:
    """`on_bytes(n)` hears how much sampled text the trainer has read so far."""
    if cfg.uri:
        tok = Tokenizer.from_str(storage.read_text(given_file(cfg.uri)))
        if tok.token_to_id(EOT) is None:
            raise ValueError(f"tokenizer {cfg.uri} has no {EOT} token, which Werk uses between documents")
    else:
        texts = sampled(read_texts(train_shards), train_bytes, cfg.sample_bytes)
        tok = build_tokenizer(cfg, _counted(texts, on_bytes) if on_bytes else texts)
        if tok.get_vocab_size() <= 258:
            raise ValueError("the training split is empty: no tokenizer can be trained on it")
    serialized = tok.to_str()
    with storage.open_write(out.path("tokenizer.json"), "w") as fh:
        fh.write(serialized)
    table = fertility(tok, _val_docs(val_shards or []))
    storage.write_json(out.path("fertility.json"), table)
    with storage.open_write(out.path("fertility.md"), "w") as fh:
        fh.write(fertility_markdown(table))
    summary = TokenizerSummary(
        vocab_size=tok.get_vocab_size(), eot_id=tok.token_to_id(EOT), pad_id=tok.token_to_id(PAD),
        source=cfg.uri or "trained", sha256=hashlib.sha256(serialized.encode()).hexdigest(), fertility=table)
    return out.publish(TokenizerRecord, summary=summary, outputs=TokenizerOutputs(tokenizer=out.path("tokenizer.json")))


def load_tokenizer(uri: str) -> Tokenizer:
    if storage.is_remote(uri):
        fs, path = storage.filesystem(uri)
        with fs.open(path, "r") as fh:
            return Tokenizer.from_str(fh.read())
    return Tokenizer.from_file(str(Path(uri)))
