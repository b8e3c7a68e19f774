"""Tokenizer fertility per language: tokens per word and bytes per token, on held-out documents.

High fertility (many tokens per word) in one language means its text is more expensive to train
on and its context windows hold less: the table shows whether the vocabulary serves every
language of the corpus.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any, Iterable

from tokenizers import Tokenizer

_WORD = re.compile(r"\w+", re.UNICODE)


def fertility(tok: Tokenizer, docs: Iterable[tuple[str | None, str]]) -> dict[str, dict[str, Any]]:
    """`docs` are (language, text) pairs; returns per-language counts and ratios."""
    acc: dict[str, dict[str, int]] = defaultdict(lambda: {"documents": 0, "words": 0, "tokens": 0, "bytes": 0})
    batch: list[tuple[str, str]] = []

    def flush() -> None:
        encode = getattr(tok, "encode_batch_fast", tok.encode_batch)
        for (lang, text), enc in zip(batch, encode([t for _, t in batch])):
            a = acc[lang]
            a["documents"] += 1
            a["words"] += len(_WORD.findall(text))
            a["tokens"] += len(enc.ids)
            a["bytes"] += len(text.encode("utf-8"))
        batch.clear()

    for lang, text in docs:
        batch.append((lang or "unknown", text))
        if len(batch) >= 256:
            flush()
    flush()
    return {
        lang: {**a, "tokens_per_word": a["tokens"] / max(1, a["words"]), "bytes_per_token": a["bytes"] / max(1, a["tokens"])}
        for lang, a in sorted(acc.items())
    }


def markdown(table: dict[str, dict[str, Any]]) -> str:
    lines = ["| language | documents | words | tokens | tokens per word | bytes per token |", "|---|---:|---:|---:|---:|---:|"]
    for lang, r in table.items():
        lines.append(f"| {lang} | {r['documents']:,} | {r['words']:,} | {r['tokens']:,} | "
                     f"{r['tokens_per_word']:.2f} | {r['bytes_per_token']:.2f} |")
    return "\n".join(lines) + "\n"
