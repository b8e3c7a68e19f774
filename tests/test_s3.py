"""Stages against a real S3-compatible store: SeaweedFS started on 127.0.0.1 by the test."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from infra import storage
from infra.services import seaweedfs_s3

pytestmark = pytest.mark.slow

BUCKET = "werk-test"


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """A running SeaweedFS S3 gateway; AWS_* variables point the standard clients at it."""
    tmp = tmp_path_factory.mktemp("seaweedfs")
    access, secret = "werk-" + secrets.token_hex(4), secrets.token_hex(16)
    service, endpoint = seaweedfs_s3(tmp / "data", access, secret, tmp / "logs")
    mp = pytest.MonkeyPatch()
    for key, value in {"AWS_ACCESS_KEY_ID": access, "AWS_SECRET_ACCESS_KEY": secret,
                       "AWS_ENDPOINT_URL": endpoint, "AWS_DEFAULT_REGION": "us-east-1"}.items():
        mp.setenv(key, value)
    with service:
        fs, _ = storage.filesystem(f"s3://{BUCKET}")
        fs.mkdir(BUCKET)
        yield endpoint
    mp.undo()
    assert service.proc.poll() is not None  # stopped by PID, not left behind


def _upload_corpus(corpus_dir: Path, prefix: str) -> None:
    for path in corpus_dir.rglob("*"):
        if path.is_file():
            storage.upload_file(path, f"{prefix}/{path.relative_to(corpus_dir).as_posix()}")


def test_ingest_and_encode_with_s3_sources_and_root(s3, corpus_dir, tmp_path, monkeypatch):
    from tasks.encode import stage as encode_stage
    from tasks.encode.config import EncodeConfig
    from tasks.encode.shard_format import open_shard
    from tasks.ingest import stage as ingest_stage
    from tasks.ingest.config import IngestConfig, SourceConfig
    from tasks.tokenizer import train as tok_stage
    from tasks.tokenizer.config import TokenizerConfig

    monkeypatch.setenv("WERK_HOME", str(tmp_path / "home"))
    _upload_corpus(corpus_dir, f"s3://{BUCKET}/raw")
    root = f"s3://{BUCKET}/store"
    icfg = IngestConfig(sources=[
        SourceConfig(name="shakespeare", uri=f"s3://{BUCKET}/raw/shakespeare/*.txt", license="pd"),
        SourceConfig(name="parlspeech", uri=f"s3://{BUCKET}/raw/parlspeech", license="CC0-1.0", id_field="id"),
    ], val_fraction=0.1)
    ing, files = ingest_stage.plan(icfg, root)
    assert ing.uri.startswith("s3://")
    stats = ingest_stage.run_ingest(icfg, ing, files).stats.model_dump()
    assert stats["docs_in"] == 103 == stats["kept"] + sum(stats["rejected"].values())
    assert stats["files_ignored"]["parlspeech"] == [f"s3://{BUCKET}/raw/parlspeech/ATTRIBUTION"]
    from tasks.ingest.record import IngestRecord

    shards = ing.read(IngestRecord).shards.model_dump()
    for uri in [*shards["train"], *shards["val"], ingest_stage.ingest_outputs(ing).manifest]:
        assert uri.startswith("s3://") and storage.exists(uri), uri

    tcfg = TokenizerConfig(vocab_size=600)
    tok = tok_stage.plan(tcfg, root, ing.key)
    tok_stage.run_tokenizer(tcfg, tok, shards["train"])
    ecfg = EncodeConfig(shard_tokens=30_000)
    enc = encode_stage.plan(ecfg, root, ing.key, tok.key)
    summary = encode_stage.run_encode(ecfg, enc, shards, tok.path("tokenizer.json")).summary.model_dump(by_alias=True)
    shards = summary["splits"]["train"]["shards"]
    assert len(shards) >= 2 and all(u.startswith("s3://") for u in shards)
    tokens = sum(len(open_shard(storage.local_copy(u))[1]) for u in shards)
    assert tokens == summary["splits"]["train"]["tokens"]
    assert storage.exists(enc.path("index"))
    # Published, and found again by a second plan with the same inputs (S3 ETags in the address).
    assert enc.is_complete() and ingest_stage.plan(icfg, root)[0] == ing


def test_incomplete_output_is_not_trusted(s3):
    from tasks.artifacts import StageOutput
    from tasks.tokenizer.record import TokenizerOutputs, TokenizerRecord, TokenizerSummary

    out = StageOutput.at(f"s3://{BUCKET}/store", "tokenizer", 1, {"x": 1}, {})
    storage.write_json(out.path("partial.json"), {"half": True})
    assert not out.is_complete()
    summary = TokenizerSummary(vocab_size=300, eot_id=0, pad_id=1, source="trained", sha256="0" * 64)
    out.publish(TokenizerRecord, summary=summary, outputs=TokenizerOutputs(tokenizer=out.path("tokenizer.json")))
    assert out.is_complete() and out.read(TokenizerRecord).summary == summary


def test_ingest_reads_a_mixed_format_s3_prefix(s3, tmp_path):
    import gzip
    import io
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq
    import zstandard

    from tasks.ingest import stage as ingest_stage
    from tasks.ingest.config import IngestConfig, SourceConfig

    prefix = f"s3://{BUCKET}/mixed"
    line = lambda i: (json.dumps({"text": f"document {i} mail me at person{i}@example.org", "id": f"d{i}"}) + "\n").encode()
    buf = io.BytesIO()
    pq.write_table(pa.table({"text": ["parquet row"], "id": ["p1"]}), buf)
    objects = {
        "a.txt": b"a text file", "b.md": b"# markdown", "c.jsonl": line(1) + b"{broken\n",
        "d.jsonl.gz": gzip.compress(line(2)), "e.jsonl.zst": zstandard.ZstdCompressor().compress(line(3)),
        "f.json": json.dumps([{"text": "json doc", "id": "j1"}]).encode(), "g.parquet": buf.getvalue(),
        "notes.csv": b"a,b\n",
    }
    fs, _ = storage.filesystem(prefix)
    for name, data in objects.items():
        with storage.open_write(f"{prefix}/{name}") as fh:
            fh.write(data)
    cfg = IngestConfig(sources=[SourceConfig(name="mixed", uri=prefix, license="CC0-1.0", id_field="id")])
    out, files = ingest_stage.plan(cfg, f"s3://{BUCKET}/store")
    stats = ingest_stage.run_ingest(cfg, out, files).stats.model_dump()
    assert len(files["mixed"]) == 7, files["mixed"]
    assert stats["docs_in"] == 8 and stats["kept"] == 7 and stats["rejected"] == {"malformed_json": 1}
    assert stats["redactions"] == {"email": 3}
    assert stats["files_ignored"] == {"mixed": [f"{prefix}/notes.csv"]}
    texts = [t for uri in ingest_stage.split_shards(out, "train") + ingest_stage.split_shards(out, "val")
             for t in pq.read_table(uri.removeprefix("s3://"), filesystem=fs).column("text").to_pylist()]
    assert "document 1 mail me at <EMAIL>" in texts and "parquet row" in texts and "json doc" in texts


def test_source_with_bad_credentials_is_a_clear_error(s3, monkeypatch):
    from tasks.ingest import stage as ingest_stage
    from tasks.ingest.config import IngestConfig, SourceConfig

    import s3fs

    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret")
    s3fs.S3FileSystem.clear_instance_cache()  # clients are cached per process with their keys
    cfg = IngestConfig(sources=[SourceConfig(name="locked", uri=f"s3://{BUCKET}/raw", license="x")])
    try:
        with pytest.raises(FileNotFoundError, match="locked"):
            ingest_stage.plan(cfg, f"s3://{BUCKET}/store")
    finally:
        monkeypatch.undo()
        s3fs.S3FileSystem.clear_instance_cache()


def test_s3_shards_go_through_a_bounded_verified_node_cache(s3, tmp_path):
    import hashlib
    import io

    import numpy as np

    from tasks.encode.shard_format import ShardFormatError, write_shard
    from tasks.training.data import TokenSamples
    from tasks.training.shard_store import Shard, ShardStore

    refs = []
    for i in range(4):
        buf = io.BytesIO()
        write_shard(buf, (np.arange(1000) + i * 1000) % 500, n_docs=1, vocab_size=512)
        uri = f"s3://{BUCKET}/shards/s{i}.bin"
        with storage.open_write(uri) as fh:
            fh.write(buf.getvalue())
        refs.append(Shard(uri, 1000, hashlib.sha256(buf.getvalue()).hexdigest()))
    size = len(buf.getvalue())
    cache = tmp_path / "cache"
    store = ShardStore(cache, limit_bytes=int(2.5 * size), vocab_size=512)
    ds = TokenSamples(refs, block_size=10, store=store)
    per_shard = 999 // 10

    def cached() -> set[str]:
        return {p.name for p in (cache / "files").glob("*/*") if not p.name.startswith(".")}

    for i in range(4):
        x, _ = ds[[i * per_shard]]
        assert x[0, 0] == (i * 1000) % 500
        assert sum(p.stat().st_size for p in (cache / "files").glob("*/*")) <= store.limit_bytes
    assert cached() == {"s2.bin", "s3.bin"}  # the least recently used made room
    # Another worker of the node reads a cached shard from the cache, not from S3.
    fs, _ = storage.filesystem(refs[3].uri)
    fs.rm(refs[3].uri.removeprefix("s3://"))
    other = TokenSamples(refs, block_size=10, store=ShardStore(cache, int(2.5 * size), 512))
    assert other[[3 * per_shard]][0][0, 0] == 3000 % 500
    # A shard whose bytes differ from the manifest is refused by its URI and never cached.
    bad = Shard(refs[0].uri, 1000, "0" * 64)
    with pytest.raises(ShardFormatError, match=f"s3://{BUCKET}/shards/s0.bin"):
        ShardStore(cache, int(2.5 * size), 512).local(bad)
    assert "s0.bin" not in cached() and not list(cache.rglob(".*.tmp"))
