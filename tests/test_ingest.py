import gzip
import json
import unicodedata

import pyarrow.parquet as pq
import pytest

from tasks.ingest import stage
from tasks.ingest.clean import InvalidText, normalize
from tasks.ingest.config import IngestConfig, SourceConfig
from tasks.ingest.split import is_validation


def _run(tmp_path, sources, **kw):
    cfg = IngestConfig(sources=sources, **kw)
    out, files = stage.plan(cfg, str(tmp_path / "store"))
    stats = stage.run_ingest(cfg, out, files).stats.model_dump()
    return out, stats


def _docs(out, split, column="text"):
    return [v for uri in stage.split_shards(out, split) for v in pq.read_table(uri).column(column).to_pylist()]


def _messy_source(tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    lines = [
        json.dumps({"text": "Guten Tag, meine Damen und Herren.", "id": "a"}).encode(),
        json.dumps({"text": "Cafe\u0301 au lait", "id": "b"}).encode(),  # decomposed é
        b'{"text": "broken json',
        json.dumps({"text": "   ", "id": "c"}).encode(),
        json.dumps({"body": "no text field", "id": "d"}).encode(),
        b'{"text": "bad \xff byte", "id": "e"}',
        json.dumps({"text": "Guten Tag, meine Damen und Herren.", "id": "f"}).encode(),  # duplicate of a
        json.dumps({"text": "line one\r\nline two\x00", "id": "g"}).encode(),
    ]
    (d / "speeches.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    (d / "bom.txt").write_bytes("\ufeffHello from a text file.".encode())
    (d / "empty.txt").write_bytes(b"")
    with gzip.open(d / "more.jsonl.gz", "wb") as fh:
        fh.write(b"".join(json.dumps({"text": f"gz doc {i}", "id": f"gz{i}"}).encode() + b"\n" for i in range(50)))
    # A truncated gzip: the readable prefix is kept, the loss is recorded.
    full = gzip.compress(b"".join(json.dumps({"text": f"cut doc {i} " * 20, "id": f"cut{i}"}).encode() + b"\n" for i in range(200)))
    (d / "truncated.jsonl.gz").write_bytes(full[: len(full) // 2])
    (d / "notes.csv").write_text("ignored,kind\n")
    return SourceConfig(name="messy", uri=str(d), license="CC0-1.0", language="de", id_field="id")


def test_counts_reconcile_and_every_rejection_has_a_reason(tmp_path):
    out, stats = _run(tmp_path, [_messy_source(tmp_path)])
    assert stats["docs_in"] == stats["kept"] + sum(stats["rejected"].values())
    rejected = stats["rejected"]
    assert rejected["malformed_json"] == 1
    assert rejected["missing_text"] == 1
    assert rejected["invalid_utf8"] == 1
    assert rejected["duplicate_exact"] == 1
    assert rejected["empty"] == 2  # whitespace-only doc and the zero-byte file
    assert rejected["unreadable"] == 1  # the truncated .gz
    quarantine = pq.read_table(out.path("quarantine")).to_pylist()
    assert len(quarantine) == sum(rejected.values())
    assert all(row["reason"] and row["location"] for row in quarantine)
    assert [p.rsplit("/", 1)[-1] for p in stats["files_ignored"]["messy"]] == ["notes.csv"]
    trunc = [r for r in quarantine if r["reason"] == "unreadable"][0]
    assert "truncated.jsonl.gz" in trunc["location"]


def test_text_is_normalised(tmp_path):
    out, _ = _run(tmp_path, [_messy_source(tmp_path)])
    texts = _docs(out, "train") + _docs(out, "val")
    assert "Café au lait" in texts and all(unicodedata.is_normalized("NFC", t) for t in texts)
    assert "line one\nline two" in texts
    assert "Hello from a text file." in texts  # BOM removed
    assert not any("\x00" in t or "\r" in t for t in texts)


def test_manifest_lists_every_kept_doc_with_provenance(tmp_path):
    out, stats = _run(tmp_path, [_messy_source(tmp_path)])
    manifest = pq.read_table(out.path("manifest")).to_pylist()
    assert len(manifest) == stats["kept"]
    assert len({m["doc_id"] for m in manifest}) == len(manifest)
    row = next(m for m in manifest if m["doc_id"] == "messy/a")
    assert row["license"] == "CC0-1.0" and row["language"] == "de"
    assert row["location"].endswith("speeches.jsonl#1")
    split_docs = {s: set(_docs(out, s, "doc_id")) for s in ("train", "val")}
    assert not split_docs["train"] & split_docs["val"]
    assert split_docs["train"] | split_docs["val"] == {m["doc_id"] for m in manifest}


def test_split_is_deterministic_and_by_content(tmp_path):
    src = _messy_source(tmp_path)
    out1, _ = _run(tmp_path / "a", [src], val_fraction=0.3)
    out2, _ = _run(tmp_path / "b", [src], val_fraction=0.3)
    read = lambda o: _docs(o, "val", "doc_id")
    assert read(out1) == read(out2) and read(out1)
    assert out1.key == out2.key  # same config and inputs: same content address


def test_split_fraction_is_respected_statistically():
    import hashlib

    hashes = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(20000)]
    share = sum(is_validation(h, 0.1) for h in hashes) / len(hashes)
    assert 0.09 < share < 0.11


def test_changed_input_changes_the_address(tmp_path):
    src = _messy_source(tmp_path)
    cfg = IngestConfig(sources=[src])
    key1 = stage.plan(cfg, str(tmp_path))[0].key
    (tmp_path / "in" / "bom.txt").write_text("different content, different size")
    assert stage.plan(cfg, str(tmp_path))[0].key != key1


def test_missing_source_is_a_clear_error(tmp_path):
    src = SourceConfig(name="gone", uri=str(tmp_path / "nowhere"), license="x")
    with pytest.raises(FileNotFoundError, match="gone"):
        _run(tmp_path, [src])


def test_normalize_rejects_invalid_utf8():
    with pytest.raises(InvalidText, match="invalid_utf8"):
        normalize(b"\xc3\x28")
    assert normalize("  e\u0301  ".encode()) == "\u00e9"


def test_normalize_removes_controls_and_tidies_whitespace():
    assert normalize("a\x07b\x1bc\u0085d") == "abcd"
    assert normalize("one  \t two   \nthree\u00a0four") == "one two\nthree four"
    assert normalize("para\n\n\n\n\nnext") == "para\n\nnext"


def test_shipped_test_corpus_ingests_cleanly(tmp_path, corpus_dir):
    sources = [
        SourceConfig(name="shakespeare", uri=str(corpus_dir / "shakespeare" / "*.txt"), license="public-domain"),
        SourceConfig(name="parlspeech", uri=str(corpus_dir / "parlspeech"), license="CC0-1.0", id_field="id"),
    ]
    out, stats = _run(tmp_path, sources, val_fraction=0.1)
    assert stats["by_source"]["shakespeare"]["kept"] == 3
    assert stats["by_source"]["parlspeech"]["docs_in"] == 100
    assert stats["splits"]["val"] >= 1
    assert out.is_complete()
