"""Ingest throughput: Werk's ingest stage against DataTrove on the same corpus, same steps, same cores.

Steps on both sides: read JSONL, Gopher quality + repetition rules (same thresholds, the same
multilingual stop words), e-mail and public-IP redaction, exact deduplication, write the kept
documents. Werk runs as Ray tasks on a
local Ray (started once, as a cluster would already exist); DataTrove runs its standard three-stage
exact-dedup recipe with `LocalPipelineExecutor(workers=2)`. DataTrove's English word tokenizer
needs NLTK data from the network, so both sides split words with the same regular expression.
MB/s = input bytes / wall time; higher is better.

    .venv/bin/pip install -e ".[bench]" && .venv/bin/python benchmarks/ingest.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import alternate, report  # noqa: E402

from tasks.ingest.filters.stopwords import ALL_STOP_WORDS  # noqa: E402

ASSETS = Path(__file__).resolve().parents[1] / "tests" / "assets" / "corpus"
MIN_WORDS = 10
_WORD = re.compile(r"\w+(?:['’-]\w+)*")


def build_corpus(dest: Path, megabytes: float, files: int) -> int:
    """Distinct variants of the test corpus (every 20th document repeated, for exact dedup)."""
    docs = [p.read_text() for p in sorted((ASSETS / "shakespeare").glob("*.txt"))]
    for p in sorted((ASSETS / "parlspeech").glob("*.jsonl")):
        docs += [json.loads(line)["text"] for line in p.read_text().splitlines()]
    dest.mkdir(parents=True)
    handles = [open(dest / f"part-{i:03d}.jsonl", "w") for i in range(files)]
    written, n = 0, 0
    while written < megabytes * 1e6:
        for doc in docs:
            text = doc if n % 20 == 0 else f"Record {n}, contact clerk{n}@example.eu or 8.8.{n % 250}.4.\n{doc}"
            line = json.dumps({"text": text, "id": str(n)}) + "\n"
            handles[n % files].write(line)
            written += len(line.encode())
            n += 1
    for h in handles:
        h.close()
    return sum(p.stat().st_size for p in dest.glob("*.jsonl"))


def run_werk(corpus: Path, work: Path, workers: int) -> int:
    from infra.ray_cluster import mapper
    from tasks.ingest import stage
    from tasks.ingest.config import IngestConfig, SourceConfig

    cfg = IngestConfig(
        sources=[SourceConfig(name="bench", uri=str(corpus), license="x", id_field="id")],
        quality={"enabled": True, "min_words": MIN_WORDS}, pii={"kinds": ["email", "ip"]},
        unit_bytes=max(1, sum(p.stat().st_size for p in corpus.glob("*.jsonl")) // (4 * workers)),
    )
    out, files = stage.plan(cfg, str(work))
    return stage.run_ingest(cfg, out, files, mapper(workers)).stats.kept


def run_datatrove(corpus: Path, work: Path, workers: int) -> int:
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup import ExactDedupConfig, ExactDedupFilter, ExactDedupSignature, ExactFindDedups
    from datatrove.pipeline.filters import GopherQualityFilter, GopherRepetitionFilter
    from datatrove.pipeline.formatters import PIIFormatter
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter
    from datatrove.utils.word_tokenizers import WordTokenizer

    class RegexWords(WordTokenizer):
        def word_tokenize(self, text: str) -> list[str]:
            return _WORD.findall(text)

        def sent_tokenize(self, text: str) -> list[str]:
            return [s for s in re.split(r"(?<=[.!?])\s+", text) if s]

        def span_tokenize(self, text: str) -> list[tuple[int, int]]:
            return [m.span() for m in re.finditer(r"[^.!?]+[.!?]?", text)]

    def text_of(doc) -> bytes:  # bytes: DataTrove then hashes the content as given
        return doc.text.encode("utf-8")

    words = RegexWords()
    dedup = ExactDedupConfig(content_getter=text_of)
    tasks = len(list(corpus.glob("*.jsonl")))
    common = {"logging_dir": str(work / "logs"), "skip_completed": False}
    LocalPipelineExecutor(pipeline=[
        JsonlReader(str(corpus), id_key="id"),
        GopherQualityFilter(min_doc_words=MIN_WORDS, language=words, stop_words=sorted(ALL_STOP_WORDS)),
        GopherRepetitionFilter(language=words),
        PIIFormatter(),
        JsonlWriter(str(work / "filtered"), compression=None),
        ExactDedupSignature(output_folder=str(work / "sigs"), config=dedup),
    ], tasks=tasks, workers=workers, **common).run()
    LocalPipelineExecutor(pipeline=[ExactFindDedups(data_folder=str(work / "sigs"), output_folder=str(work / "dups"),
                                                    config=dedup)], tasks=1, workers=1, **common).run()
    LocalPipelineExecutor(pipeline=[
        JsonlReader(str(work / "filtered")),
        ExactDedupFilter(data_folder=str(work / "dups"), config=dedup),
        JsonlWriter(str(work / "out"), compression=None),
    ], tasks=tasks, workers=workers, **common).run()
    return sum(1 for p in (work / "out").glob("*.jsonl") for _ in open(p))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    workers = 2
    import logging

    from loguru import logger

    logger.remove()  # DataTrove logs every document batch; keep the output readable
    logging.getLogger("ray").setLevel(logging.WARNING)
    from infra.ray_cluster import ray_session

    with tempfile.TemporaryDirectory() as tmp_dir, ray_session(min_cpus=workers):
        tmp = Path(tmp_dir)
        corpus = tmp / "corpus"
        n_bytes = build_corpus(corpus, 8 if args.quick else 32, files=8)
        kept: dict[str, int] = {}
        runs = iter(range(1000))

        def timed(name, fn):
            work = tmp / f"{name}-{next(runs)}"
            t0 = time.perf_counter()
            kept[name] = fn(corpus, work, workers)
            mbps = n_bytes / 1e6 / (time.perf_counter() - t0)
            shutil.rmtree(work, ignore_errors=True)
            return mbps

        w, b = alternate(lambda: timed("werk", run_werk), lambda: timed("datatrove", run_datatrove),
                         rounds=3 if args.quick else 5)
    report("ingest_throughput", "MB/s", w, b, megabytes=round(n_bytes / 1e6, 1), workers=workers,
           kept_werk=kept["werk"], kept_datatrove=kept["datatrove"])


if __name__ == "__main__":
    main()
