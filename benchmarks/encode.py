"""Encode throughput: Werk's encode stage end to end (read the ingest Parquet parts, encode on Ray
workers, write shards, index and manifest to disk) against raw HF `tokenizers` `encode_batch` on
the same texts already in memory, same tokenizer, same two cores. Tokens/s; goal >= 0.9x.

    python benchmarks/encode.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import alternate, report, timed  # noqa: E402

from infra.ray_cluster import mapper, ray_session  # noqa: E402
from tasks.artifacts import StageOutput  # noqa: E402
from tasks.encode import stage  # noqa: E402
from tasks.encode.config import EncodeConfig  # noqa: E402
from tasks.tokenizer.config import TokenizerConfig  # noqa: E402
from tasks.tokenizer.train import build_tokenizer  # noqa: E402

ASSETS = Path(__file__).resolve().parents[1] / "tests" / "assets" / "corpus"


def corpus(copies: int) -> list[str]:
    docs = [p.read_text() for p in sorted((ASSETS / "shakespeare").glob("*.txt"))]
    for p in sorted((ASSETS / "parlspeech").glob("*.jsonl")):
        docs += [json.loads(line)["text"] for line in p.read_text().splitlines()]
    return [f"{d} [{i}]" for i in range(copies) for d in docs]  # distinct copies: no cache helps


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    docs = corpus(20 if args.quick else 80)
    with tempfile.TemporaryDirectory() as tmp_dir, ray_session(min_cpus=2):
        tmp = Path(tmp_dir)
        tok = build_tokenizer(TokenizerConfig(vocab_size=8192), docs[:103])
        tok.save(str(tmp / "tokenizer.json"))
        parts: dict[str, list[str]] = {"train": [], "val": []}
        n_parts = 8
        for i in range(n_parts):  # ingest-like parts: doc_id + text, zstd Parquet
            chunk = docs[i::n_parts]
            uri = str(tmp / f"train-{i:05d}.parquet")
            pq.write_table(pa.table({"doc_id": [f"d{i}-{j}" for j in range(len(chunk))], "text": chunk}), uri,
                           compression="zstd")
            parts["train"].append(uri)
        n_tokens = sum(len(e.ids) + 1 for e in tok.encode_batch_fast(docs))
        runs = iter(range(1000))

        def werk() -> int:
            out = StageOutput.at(str(tmp / "store"), "encode", 0, {"run": next(runs)}, {})
            summary = stage.run_encode(EncodeConfig(), out, parts, str(tmp / "tokenizer.json"), mapper(2)).summary.model_dump(by_alias=True)
            assert summary["splits"]["train"]["tokens"] == n_tokens
            return n_tokens

        def baseline() -> int:
            tok.encode_batch(docs)
            return n_tokens

        w, b = alternate(lambda: timed(werk), lambda: timed(baseline), rounds=3 if args.quick else 5)
    report("encode_throughput", "tokens/s", w, b, docs=len(docs), tokens=n_tokens,
           megabytes=round(sum(len(d.encode()) for d in docs) / 1e6, 1))


if __name__ == "__main__":
    main()
