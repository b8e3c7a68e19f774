"""The ingest stage: sources in, clean deduplicated documents split into train/val out.

Output (under a content-addressed directory):
- `train.parquet`, `val.parquet`: `doc_id`, `text`, in input order.
- `manifest.parquet`: one row per kept document: `doc_id`, `sha256` (of the output text), `source`,
  `location` (file and line), `license`, `language`, `bytes`, `split`.
- `quarantine.parquet`: one row per rejected record: `location`, `source`, `reason`, `detail`.
- `stats.json`: `docs_in == kept + sum(rejected.values())`, per reason and per source.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from infra import storage
from tasks.artifacts import StageOutput
from tasks.ingest.clean import InvalidText, normalize
from tasks.ingest.config import IngestConfig, SourceConfig
from tasks.ingest.readers import read_file, scan_source
from tasks.ingest.split import is_validation

STAGE = "ingest"
VERSION = 1


@dataclass
class _Accumulator:
    docs: dict[str, list] = field(default_factory=lambda: {"train": [], "val": []})
    manifest: list[dict] = field(default_factory=list)
    quarantine: list[dict] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)
    ids: set[str] = field(default_factory=set)
    rejected: Counter = field(default_factory=Counter)
    per_source: dict[str, Counter] = field(default_factory=dict)
    docs_in: int = 0
    bytes_in: int = 0
    bytes_out: int = 0

    def reject(self, source: str, location: str, reason: str, detail: str = "") -> None:
        self.rejected[reason] += 1
        self.per_source[source]["rejected"] += 1
        self.quarantine.append(
            {"location": location, "source": source, "reason": reason, "detail": detail[:500]}
        )


def source_fingerprint(cfg: IngestConfig) -> dict[str, Any]:
    """What the input files are now (names, sizes, versions): part of the output's address.

    Files of unsupported types are listed under `<source>:ignored` so the stats can name them.
    """
    found: dict[str, Any] = {}
    for src in cfg.sources:
        found[src.name], found[f"{src.name}:ignored"] = scan_source(src)
    return found


def plan(cfg: IngestConfig, root: str) -> tuple[StageOutput, dict[str, Any]]:
    files = source_fingerprint(cfg)
    return StageOutput.at(root, STAGE, VERSION, cfg, {"files": files}), files


def run_ingest(cfg: IngestConfig, out: StageOutput, files: dict[str, Any]) -> dict[str, Any]:
    """Read every source, clean, deduplicate, split, write, then publish. Returns the stats."""
    acc = _Accumulator()
    for src in cfg.sources:
        acc.per_source[src.name] = Counter()
        for uri, _info in files[src.name]:
            _ingest_file(cfg, src, uri, acc)
    _ensure_validation(acc)
    _write(out, acc)
    stats = {
        "docs_in": acc.docs_in,
        "kept": len(acc.manifest),
        "rejected": dict(sorted(acc.rejected.items())),
        "by_source": {k: dict(v) for k, v in acc.per_source.items()},
        "splits": {s: len(d) for s, d in acc.docs.items()},
        "bytes_in": acc.bytes_in,
        "bytes_out": acc.bytes_out,
        # Files under a source that are not of a supported type: named, never silently skipped.
        "files_ignored": {src.name: files[f"{src.name}:ignored"] for src in cfg.sources if files[f"{src.name}:ignored"]},
    }
    if stats["docs_in"] != stats["kept"] + sum(stats["rejected"].values()):
        raise AssertionError(f"ingest counts do not reconcile: {stats}")
    storage.write_json(out.path("stats.json"), stats)
    out.publish({"stats": stats, "outputs": ingest_outputs(out)})
    return stats


def ingest_outputs(out: StageOutput) -> dict[str, str]:
    return {
        name: out.path(f"{name}.parquet") for name in ("train", "val", "manifest", "quarantine")
    } | {"stats": out.path("stats.json")}


def _ingest_file(cfg: IngestConfig, src: SourceConfig, uri: str, acc: _Accumulator) -> None:
    for rec in read_file(src, uri):
        acc.docs_in += 1
        acc.per_source[src.name]["docs_in"] += 1
        if rec.error:
            acc.reject(src.name, rec.location, rec.error, rec.detail)
            continue
        acc.bytes_in += len(rec.raw)
        try:
            text = normalize(rec.raw)
        except InvalidText as exc:
            acc.reject(src.name, rec.location, str(exc))
            continue
        if not text:
            acc.reject(src.name, rec.location, "empty")
            continue
        if len(text) < cfg.min_chars:
            acc.reject(src.name, rec.location, "too_short", f"{len(text)} < {cfg.min_chars} chars")
            continue
        encoded = text.encode("utf-8")
        sha = hashlib.sha256(encoded).hexdigest()
        if sha in acc.seen:
            acc.reject(src.name, rec.location, "duplicate_exact", sha)
            continue
        doc_id = f"{src.name}/{rec.external_id or sha[:16]}"
        if doc_id in acc.ids:
            acc.reject(src.name, rec.location, "duplicate_id", doc_id)
            continue
        acc.seen.add(sha)
        acc.ids.add(doc_id)
        split = "val" if is_validation(sha, cfg.val_fraction) else "train"
        acc.docs[split].append((doc_id, text))
        acc.manifest.append(
            {
                "doc_id": doc_id,
                "sha256": sha,
                "source": src.name,
                "location": rec.location,
                "license": src.license,
                "language": src.language,
                "bytes": len(encoded),
                "split": split,
            }
        )
        acc.bytes_out += len(encoded)
        acc.per_source[src.name]["kept"] += 1


def _ensure_validation(acc: _Accumulator) -> None:
    """A tiny corpus may hash no document into validation; move the lowest-hash one there."""
    if acc.docs["val"] or len(acc.docs["train"]) < 2:
        return
    row = min(acc.manifest, key=lambda r: r["sha256"])
    idx = next(i for i, (d, _) in enumerate(acc.docs["train"]) if d == row["doc_id"])
    acc.docs["val"].append(acc.docs["train"].pop(idx))
    row["split"] = "val"


def _write_table(uri: str, table: pa.Table) -> None:
    with storage.open_write(uri) as fh:
        pq.write_table(table, fh, compression="zstd")


def _write(out: StageOutput, acc: _Accumulator) -> None:
    for split, docs in acc.docs.items():
        table = pa.table(
            {"doc_id": [d for d, _ in docs], "text": [t for _, t in docs]},
            schema=pa.schema([("doc_id", pa.string()), ("text", pa.large_string())]),
        )
        _write_table(out.path(f"{split}.parquet"), table)
    manifest_schema = pa.schema(
        [("doc_id", pa.string()), ("sha256", pa.string()), ("source", pa.string()),
         ("location", pa.string()), ("license", pa.string()), ("language", pa.string()),
         ("bytes", pa.int64()), ("split", pa.string())]
    )
    _write_table(out.path("manifest.parquet"), pa.Table.from_pylist(acc.manifest, schema=manifest_schema))
    quarantine_schema = pa.schema(
        [("location", pa.string()), ("source", pa.string()), ("reason", pa.string()), ("detail", pa.string())]
    )
    _write_table(
        out.path("quarantine.parquet"), pa.Table.from_pylist(acc.quarantine, schema=quarantine_schema)
    )


def read_texts(uri: str) -> list[str]:
    """The `text` column of a split written by this stage."""
    fs, path = storage.filesystem(uri)
    return pq.read_table(path, filesystem=fs, columns=["text"]).column("text").to_pylist()
