"""`werk lineage doc`: how long it takes to trace a document, against doing it without the indexes.

A synthetic corpus (`scale_corpus.py`) is ingested, a tokenizer trained and both splits encoded,
as the pipeline does; a pretraining record is then published for those token shards with a
sample order of three epochs (no training is run: the trace reads only the record). Werk's path
is `tasks.lineage.doc.trace_doc` (the ingest's doc-id index, the encode index part of the
document's ingest part, the sampler inverted). The baseline does the same without them: it
scans every manifest part and every encode index part for the id, then replays the training
stream position by position (in vectorised chunks) until a sample holding one of the document's
tokens comes up, as one would with only the sampler. Both return the same answer (checked).

Documents per second, alternately, several rounds; the ratio is Werk / baseline.

    .venv/bin/python benchmarks/lineage.py [--quick]     # quick: 8 MB of text, else 32 MB
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import alternate, report  # noqa: E402
from scale_corpus import build  # noqa: E402


def prepare(tmp: Path, mb: int):
    from tasks.artifacts import StageOutput
    from tasks.encode import stage as encode_stage
    from tasks.encode.config import EncodeConfig
    from tasks.ingest import stage
    from tasks.ingest.config import IngestConfig, SourceConfig
    from tasks.tokenizer import train as tok_stage
    from tasks.tokenizer.config import TokenizerConfig
    from tasks.training.record import PretrainOutputs, PretrainRecord, PretrainSummary, SampleOrder

    build(tmp / "corpus", mb, seed=1)
    cfg = IngestConfig(sources=[SourceConfig(name="bench", uri=str(tmp / "corpus"), license="x", id_field="id")],
                       unit_bytes=1 << 20, val_fraction=0.02)
    root = str(tmp / "store")
    out, files = stage.plan(cfg, root)
    ing = stage.run_ingest(cfg, out, files)
    tcfg = TokenizerConfig(vocab_size=4096, sample_bytes=4 << 20)
    tok = tok_stage.plan(tcfg, root, ing.base_key)
    tok_stage.run_tokenizer(tcfg, tok, ing.shards.train, ing.stats.bytes_out)
    ecfg = EncodeConfig(shard_tokens=100_000)
    enc = encode_stage.run_encode(ecfg, encode_stage.plan(ecfg, root, ing.key, tok.key), ing.shards.model_dump(),
                                  tok.path("tokenizer.json"))
    train = enc.summary.splits["train"]
    block, per_step = 128, 64
    samples = sum(max(0, (t - 1) // block) for t in train.shard_tokens)
    order = SampleOrder(train_shards=train.shards, shard_tokens=train.shard_tokens, block_size=block, seed=7,
                        samples_per_step=per_step, steps=3 * samples // per_step)
    pre = StageOutput.at(root, "pretrain", 2, {"bench": 1}, {"encode": enc.key})
    pre.publish(PretrainRecord, summary=PretrainSummary(global_step=order.steps, metrics={}, checkpoint="-",
                                                        parameters=0), outputs=PretrainOutputs(weights="-", config="-"),
                data=order)
    ids = [r for r in _manifest_rows(ing.outputs.manifest) if r["split"] == "train"]
    return root, ing, enc, order, [r["doc_id"] for r in ids], samples


def _manifest_rows(manifest: str) -> list[dict]:
    import pyarrow.parquet as pq

    return pq.read_table(manifest, columns=["doc_id", "split", "shard"]).to_pylist()


def baseline_trace(ing, enc, order, doc_id: str) -> int | None:
    """Without the indexes: scan the manifest, scan the encode index, replay the training stream."""
    import pyarrow.parquet as pq

    from tasks.lineage.seen import samples_per_shard
    from tasks.training.sampling import sample_order

    # The manifest row (source, location, licence: what `locate` reads in two small files).
    next(r for r in pq.read_table(ing.outputs.manifest).to_pylist() if r["doc_id"] == doc_id)
    index = pq.read_table(enc.outputs.index).to_pylist()
    tokens = next(r for r in index if r["doc_id"] == doc_id)
    shard = order.train_shards.index(enc.path(tokens["shard"]))
    counts = samples_per_shard(order)
    first = np.concatenate([[0], np.cumsum(counts)])
    b = order.block_size
    lo = first[shard] + max(0, -(-(tokens["offset"] - b) // b))
    hi = first[shard] + min(counts[shard] - 1, (tokens["offset"] + tokens["length"] - 1) // b)
    consumed, chunk = order.steps * order.samples_per_step, 1 << 16
    for start in range(0, consumed, chunk):
        positions = np.arange(start, min(consumed, start + chunk))
        drawn = sample_order(positions, int(counts.sum()), order.seed)
        hits = np.flatnonzero((drawn >= lo) & (drawn <= hi))
        if hits.size:
            return int(positions[hits[0]]) // order.samples_per_step + 1
    return None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    from tasks.lineage.doc import trace_doc

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        root, ing, enc, order, ids, samples = prepare(Path(tmp), 8 if args.quick else 32)
        print(f"corpus: {ing.stats.kept:,} documents, {len(order.train_shards)} token shards, {samples:,} samples, "
              f"{order.steps:,} steps (3 epochs); prepared in {time.perf_counter() - t0:.0f} s")
        picks = random.Random(0).sample(ids, 6 if args.quick else 12)
        for doc_id in picks[:3]:  # the same answer both ways
            (found,) = trace_doc(root, doc_id).found_in
            (training,) = found.encodings[0].trainings
            assert training.first_step == baseline_trace(ing, enc, order, doc_id), doc_id

        def werk() -> float:
            t = time.perf_counter()
            for doc_id in picks:
                trace_doc(root, doc_id)
            return len(picks) / (time.perf_counter() - t)

        def baseline() -> float:
            t = time.perf_counter()
            for doc_id in picks:
                baseline_trace(ing, enc, order, doc_id)
            return len(picks) / (time.perf_counter() - t)

        w, b = alternate(werk, baseline, 3 if args.quick else 5)
        report("lineage_doc", "documents/s", w, b, documents=ing.stats.kept, samples=samples)


if __name__ == "__main__":
    main()
