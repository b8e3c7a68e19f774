"""Every input format, and the bad input ingest must survive with nothing lost."""

import gzip
import json
import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from tasks.ingest import stage
from tasks.ingest.config import IngestConfig, SourceConfig


def _run(tmp_path, src, **kw):
    cfg = IngestConfig(sources=[src], **kw)
    out, files = stage.plan(cfg, str(tmp_path / "store"))
    stats = stage.run_ingest(cfg, out, files).stats.model_dump()
    manifest = pq.read_table(out.path("manifest")).to_pylist()
    assert stats["docs_in"] == stats["kept"] + sum(stats["rejected"].values())
    return out, stats, manifest


def _texts(out):
    return {r["doc_id"]: r["text"] for split in ("train", "val")
            for uri in stage.split_shards(out, split) for r in pq.read_table(uri).to_pylist()}


def test_all_formats_with_fields_and_metadata(tmp_path):
    d = tmp_path / "mixed"
    d.mkdir()
    (d / "a.txt").write_text("plain text document")
    (d / "b.md").write_text("# Title\n\nmarkdown document")
    (d / "c.jsonl").write_text(json.dumps({"body": "jsonl document", "key": "c1", "year": 2020}) + "\n")
    with gzip.open(d / "d.jsonl.gz", "wt") as fh:
        fh.write(json.dumps({"body": "gzip document", "key": "d1"}) + "\n")
    (d / "e.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(
        (json.dumps({"body": "zstd document", "key": "e1"}) + "\n").encode()))
    (d / "f.json").write_text(json.dumps([{"body": "json array doc one", "key": "f1"}, {"body": "json array doc two", "key": "f2"}]))
    pq.write_table(pa.table({"body": ["parquet row one", "parquet row two"], "key": ["g1", "g2"], "year": [2021, 2022]}),
                   d / "g.parquet", row_group_size=1)
    hf = d / "hf"
    hf.mkdir()
    table = pa.table({"body": ["arrow row one"], "key": ["h1"]})
    with pa.ipc.new_stream(hf / "data-00000-of-00001.arrow", table.schema) as w:
        w.write_table(table)
    (hf / "state.json").write_text(json.dumps({"_data_files": [{"filename": "data-00000-of-00001.arrow"}]}))
    (hf / "dataset_info.json").write_text("{}")
    src = SourceConfig(name="mixed", uri=str(d), license="CC0-1.0", text_field="body", id_field="key",
                       metadata_fields=["year"])
    out, stats, manifest = _run(tmp_path, src)
    texts = set(_texts(out).values())
    assert texts == {"plain text document", "# Title\n\nmarkdown document", "jsonl document", "gzip document",
                     "zstd document", "json array doc one", "json array doc two", "parquet row one",
                     "parquet row two", "arrow row one"}
    assert stats["rejected"] == {} and stats["files_ignored"] == {}
    by_id = {m["doc_id"]: m for m in manifest}
    assert json.loads(by_id["mixed/g2"]["metadata"]) == {"year": 2022}
    assert by_id["mixed/g2"]["location"].endswith("g.parquet#1")
    assert by_id["mixed/c1"]["license"] == "CC0-1.0"


def test_manifest_says_which_shard_and_row_holds_each_document(tmp_path):
    d = tmp_path / "many"
    d.mkdir()
    for i in range(30):
        (d / f"{i:03d}.jsonl").write_text(json.dumps({"text": f"document number {i} " * 30, "id": str(i)}) + "\n")
    src = SourceConfig(name="many", uri=str(d), license="x", id_field="id")
    out, stats, manifest = _run(tmp_path, src, unit_bytes=2000)
    assert stats["units"] > 3  # small files grouped into several units
    for row in manifest:
        shard = pq.read_table(out.path(row["shard"])).to_pylist()
        assert shard[row["row"]]["doc_id"] == row["doc_id"]


def test_bad_input_is_quarantined_with_reasons(tmp_path):
    d = tmp_path / "bad"
    d.mkdir()
    (d / "utf8.jsonl").write_bytes(b'{"text": "good one"}\n{"text": "bad \xff\xfe bytes"}\n{"text": "good two"}\n')
    full = gzip.compress(b"".join(json.dumps({"text": f"row {i} " * 50}).encode() + b"\n" for i in range(300)))
    (d / "cut.jsonl.gz").write_bytes(full[: len(full) // 2])
    (d / "zero.txt").write_bytes(b"")
    (d / "mixed.jsonl").write_text('{"text": "fine"}\n{"text": broken\n["not", "an", "object"]\n{"text": "   "}\n')
    (d / "big.txt").write_text("x" * (20 << 20))  # a single 20 MB line
    (d / "nul.txt").write_bytes("\ufeffBOM and NUL\x00 and CRLF\r\nline".encode())
    os.symlink(d / "does-not-exist.txt", d / "dangling.txt")  # a file that cannot be opened
    src = SourceConfig(name="bad", uri=str(d), license="x")
    out, stats, _ = _run(tmp_path, src, length={"max_chars": 10 << 20})
    assert stats["rejected"]["invalid_utf8"] == 1
    assert stats["rejected"]["malformed_json"] == 1
    assert stats["rejected"]["missing_text"] == 1
    assert stats["rejected"]["empty"] == 2
    assert stats["rejected"]["too_long"] == 1
    assert stats["rejected"]["unreadable"] == 2  # the truncated gzip's lost tail and the dangling link
    texts = set(_texts(out).values())
    assert {"good one", "good two", "fine", "BOM and NUL and CRLF\nline"} <= texts
    assert any(t.startswith("row 0") for t in texts)  # the readable part of the truncated gzip
    quarantine = pq.read_table(out.path("quarantine")).to_pylist()
    assert len(quarantine) == sum(stats["rejected"].values())
    big = next(q for q in quarantine if q["reason"] == "too_long")
    assert big["location"].endswith("big.txt") and len(big["text"]) == 1 << 20  # kept, truncated


def test_thousands_of_tiny_files(tmp_path):
    d = tmp_path / "tiny"
    d.mkdir()
    for i in range(2000):
        (d / f"{i:05d}.txt").write_text(f"tiny {i}")
    out, stats, manifest = _run(tmp_path, SourceConfig(name="tiny", uri=str(d), license="x"), unit_bytes=4096)
    assert stats["docs_in"] == stats["kept"] == 2000
    assert stats["units"] < 20


def test_unreadable_source_is_a_clear_error(tmp_path):
    src = SourceConfig(name="nowhere", uri=str(tmp_path / "missing" / "*.jsonl"), license="x")
    with pytest.raises(FileNotFoundError, match="nowhere"):
        stage.plan(IngestConfig(sources=[src]), str(tmp_path))


def test_length_bounds_and_language_hint(tmp_path):
    d = tmp_path / "len"
    d.mkdir()
    (d / "a.jsonl").write_text("\n".join(json.dumps({"text": t}) for t in ["hi", "a reasonable sentence", "x" * 500]) + "\n")
    src = SourceConfig(name="len", uri=str(d), license="x", language="en")
    out, stats, manifest = _run(tmp_path, src, length={"min_chars": 5, "max_chars": 100})
    assert stats["rejected"] == {"too_short": 1, "too_long": 1}
    (row,) = manifest
    assert row["language"] == row["language_hint"] == "en" and row["filters"] == "length"
