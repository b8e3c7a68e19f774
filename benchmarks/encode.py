"""Encode throughput: Werk's batched encoder (`encode_batch_fast`, both cores) against encoding one
document at a time, the obvious baseline. Both produce the same token ids (checked).

    python benchmarks/encode.py [--quick]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import alternate, report, timed  # noqa: E402

from tasks.tokenizer.config import TokenizerConfig  # noqa: E402
from tasks.tokenizer.train import build_tokenizer  # noqa: E402


def corpus(copies: int) -> list[str]:
    import json

    assets = Path(__file__).resolve().parents[1] / "tests" / "assets" / "corpus"
    docs = [p.read_text() for p in sorted((assets / "shakespeare").glob("*.txt"))]
    for p in sorted((assets / "parlspeech").glob("*.jsonl")):
        docs += [json.loads(line)["text"] for line in p.read_text().splitlines()]
    # Distinct copies (a suffix per copy) so no cache can help either side.
    return [f"{d} [{i}]" for i in range(copies) for d in docs]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    docs = corpus(4 if args.quick else 16)
    n_bytes = sum(len(d.encode()) for d in docs)
    tok = build_tokenizer(TokenizerConfig(vocab_size=8192), docs[:103])
    fast = getattr(tok, "encode_batch_fast", tok.encode_batch)

    def werk() -> int:
        for i in range(0, len(docs), 512):
            fast(docs[i : i + 512])
        return n_bytes

    def baseline() -> int:
        for d in docs:
            tok.encode(d)
        return n_bytes

    assert [e.ids for e in fast(docs[:50])] == [tok.encode(d).ids for d in docs[:50]]
    w, b = alternate(lambda: timed(werk) / 1e6, lambda: timed(baseline) / 1e6, rounds=3 if args.quick else 7)
    report("encode_throughput", "MB/s", w, b, docs=len(docs), megabytes=round(n_bytes / 1e6, 2))


if __name__ == "__main__":
    main()
