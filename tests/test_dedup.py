"""Exact and near-duplicate removal across the whole corpus, the same for any number of workers."""

import hashlib
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from tasks.ingest import stage
from tasks.ingest.config import DedupConfig, IngestConfig, SourceConfig
from tasks.ingest.minhash import band_keys, bands, signature, similarity

BASE = ("The regional parliament debated the new water law for three hours on Thursday, and most "
        "speakers agreed that farmers, towns and industry must share the burden of the dry summers "
        "that the region has seen in recent years, while the opposition asked for more money for dams.")


def _corpus(d: Path) -> None:
    d.mkdir()
    docs = [
        ("a1", BASE),
        ("a2", "An unrelated speech about rail transport, timetables, delays and the price of tickets in winter."),
        ("a3", BASE),  # exact duplicate of a1
        ("a4", BASE.replace("Thursday", "Friday")),  # near duplicate of a1
        ("a5", "Yet another different text, this time on schools, teachers, and the new curriculum."),
    ]
    for i in range(4):  # spread over several files -> several units
        with open(d / f"part-{i}.jsonl", "w") as fh:
            for doc_id, text in docs[i::4] if i < 4 else []:
                fh.write(json.dumps({"id": doc_id, "text": text}) + "\n")
    with open(d / "part-4.jsonl", "w") as fh:
        fh.write(json.dumps({"id": "a1", "text": "a different text that reuses the id a1 on purpose"}) + "\n")


def _cfg(d: Path, **kw) -> IngestConfig:
    return IngestConfig(sources=[SourceConfig(name="p", uri=str(d), license="x", id_field="id")],
                        dedup=DedupConfig(near=True, threshold=0.7), unit_bytes=1, val_fraction=0.2, **kw)


def test_exact_near_and_id_duplicates_keep_the_first_copy(tmp_path):
    _corpus(tmp_path / "c")
    cfg = _cfg(tmp_path / "c")
    out, files = stage.plan(cfg, str(tmp_path / "store"))
    stats = stage.run_ingest(cfg, out, files).stats.model_dump()
    assert stats["rejected"] == {"duplicate_exact": 1, "duplicate_near": 1, "duplicate_id": 1}
    kept = {r["doc_id"] for r in pq.read_table(out.path("manifest")).to_pylist()}
    assert kept == {"p/a1", "p/a2", "p/a5"}  # the first copy (canonical order) survives
    reasons = {q["location"].rsplit("/", 1)[-1]: q["reason"] for q in pq.read_table(out.path("quarantine")).to_pylist()}
    assert reasons == {"part-2.jsonl#1": "duplicate_exact", "part-3.jsonl#1": "duplicate_near",
                       "part-4.jsonl#1": "duplicate_id"}


def test_signatures_find_and_confirm_near_duplicates_only():
    cfg = DedupConfig(near=True, threshold=0.7)
    base, near = signature(BASE, cfg), signature(BASE.replace("Thursday", "Friday"), cfg)
    other = signature("Completely different words about something else entirely here.", cfg)
    assert base.dtype == np.uint32 and base.shape == (cfg.num_perm,)
    # A near copy shares at least one LSH band (a candidate pair) and passes the similarity check.
    assert set(band_keys(base, bands(cfg))) & set(band_keys(near, bands(cfg)))
    assert similarity(base, near) >= cfg.threshold
    assert not set(band_keys(base, bands(cfg))) & set(band_keys(other, bands(cfg)))
    assert similarity(base, other) < 0.2
    # Equal bands at different band numbers are different keys.
    assert len(set(band_keys(np.zeros(cfg.num_perm, np.uint32), bands(cfg)))) == bands(cfg)[0]


def test_a_signature_is_the_minhash_of_the_set_of_word_shingles():
    """Repeats and order of shingles change nothing; a text shorter than a shingle is one shingle."""
    import re

    from rensa import RMinHash

    cfg = DedupConfig(near=True, threshold=0.7)

    def by_definition(text: str) -> np.ndarray:
        words = re.findall(r"\w+", text.lower())
        n = cfg.shingle_words
        shingles = sorted({" ".join(words[i:i + n]) for i in range(max(1, len(words) - n + 1))})
        m = RMinHash(num_perm=cfg.num_perm, seed=cfg.seed)
        m.update(shingles)
        return np.asarray(m.digest(), dtype=np.uint32)

    for text in (BASE, BASE + " " + BASE, "two words", "", "Größe der Straße, señorías: " * 9):
        assert np.array_equal(signature(text, cfg), by_definition(text)), text


def _digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and p.name != "_SUCCESS.json"}


@pytest.mark.slow
def test_output_is_byte_identical_with_one_two_and_four_workers(tmp_path, corpus_dir):
    from infra.ray_cluster import mapper, ray_session

    sources = [SourceConfig(name="shakespeare", uri=str(corpus_dir / "shakespeare" / "*.txt"), license="pd"),
               SourceConfig(name="parlspeech", uri=str(corpus_dir / "parlspeech"), license="CC0-1.0", id_field="id")]
    digests = []
    with ray_session(min_cpus=4):
        for workers in (1, 2, 4):
            cfg = IngestConfig(sources=sources, dedup=DedupConfig(near=True), quality={"enabled": True},
                               language={"enabled": True}, unit_bytes=20_000, num_workers=workers)
            out, files = stage.plan(cfg, str(tmp_path / f"store{workers}"))
            stats = stage.run_ingest(cfg, out, files, mapper(workers)).stats.model_dump()
            assert stats["units"] > 5
            digests.append(_digest(Path(out.uri)))
    assert digests[0] == digests[1] == digests[2]
    assert any(name.startswith("train/") for name in digests[0])
