"""Train a byte-level BPE tokenizer with HF `tokenizers` on the training split.

Byte-level means every string is encodable (no unknown token) and decoding gives back the exact
bytes. `<|endoftext|>` separates documents in token shards and has id 0.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Iterator

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

from infra import storage
from tasks.artifacts import StageOutput
from tasks.ingest.stage import read_texts
from tasks.tokenizer.config import TokenizerConfig

STAGE = "tokenizer"
VERSION = 1
EOT = "<|endoftext|>"


def build_tokenizer(cfg: TokenizerConfig, texts: Iterable[str]) -> Tokenizer:
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=cfg.vocab_size,
        min_frequency=cfg.min_frequency,
        special_tokens=[EOT],
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


def plan(cfg: TokenizerConfig, root: str, ingest_key: str) -> StageOutput:
    return StageOutput.at(root, STAGE, VERSION, cfg, {"ingest": ingest_key})


def run_tokenizer(cfg: TokenizerConfig, out: StageOutput, train_shards: list[str]) -> dict:
    tok = build_tokenizer(cfg, read_texts(train_shards))
    with storage.open_write(out.path("tokenizer.json"), "w") as fh:
        fh.write(tok.to_str())
    summary = {"vocab_size": tok.get_vocab_size(), "eot_id": tok.token_to_id(EOT)}
    out.publish({"summary": summary, "outputs": {"tokenizer": out.path("tokenizer.json")}})
    return summary


def load_tokenizer(uri: str) -> Tokenizer:
    if storage.is_remote(uri):
        fs, path = storage.filesystem(uri)
        with fs.open(path, "r") as fh:
            return Tokenizer.from_str(fh.read())
    return Tokenizer.from_file(str(Path(uri)))
