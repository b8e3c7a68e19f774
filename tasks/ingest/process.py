"""What one worker does with one unit, in two passes around the corpus-wide deduplication.

Pass 1 (`scan_unit`): read, clean, filter (length, quality, language), redact PII, hash and
sign every record; write the surviving candidates and the rejects to work files; return only
small facts (ids, hashes, signatures, counts) to the driver.
Pass 2 (`write_unit`): given the driver's dedup decisions, write this unit's train/val shards and
its quarantine shard; return the manifest rows.
Both are pure functions of their inputs, so any number of workers produces identical files.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from infra import storage
from tasks.ingest.clean import InvalidText, normalize
from tasks.ingest.config import IngestConfig
from tasks.ingest.dedup import signature
from tasks.ingest.filters.language import identify, language_issue
from tasks.ingest.filters.quality import quality_issue
from tasks.ingest.pii.recognizer import load as load_recognizer
from tasks.ingest.pii.redact import KINDS, redact
from tasks.ingest.readers import read_file
from tasks.ingest.units import Unit

CANDIDATE_SCHEMA = pa.schema([
    ("doc_id", pa.string()), ("text", pa.large_string()), ("sha256", pa.string()), ("source", pa.string()),
    ("location", pa.string()), ("license", pa.string()), ("language_hint", pa.string()), ("language", pa.string()),
    ("language_confidence", pa.float32()), ("bytes", pa.int64()), ("filters", pa.string()),
    *[(f"pii_{k}", pa.int32()) for k in KINDS],
    ("pii_other", pa.string()),  # JSON counts of a team's own recognisers' kinds, null if none
    ("metadata", pa.string()),
])
QUARANTINE_SCHEMA = pa.schema([
    ("location", pa.string()), ("source", pa.string()), ("reason", pa.string()), ("detail", pa.string()),
    ("text", pa.large_string()),
])
DOCS_SCHEMA = pa.schema([("doc_id", pa.string()), ("text", pa.large_string())])
QUARANTINE_TEXT_LIMIT = 1 << 20  # keep up to 1 MB of a rejected document for inspection


@dataclass
class ScanResult:
    unit: int
    doc_ids: list[str] = field(default_factory=list)
    sha256: list[str] = field(default_factory=list)
    signatures: np.ndarray | None = None
    docs_in: int = 0
    bytes_in: int = 0
    rejected: Counter = field(default_factory=Counter)


def work_path(work_uri: str, unit: int, kind: str) -> str:
    return storage.join(work_uri, f"unit-{unit:05d}.{kind}.parquet")


def _write(uri: str, rows: list[dict], schema: pa.Schema) -> None:
    with storage.open_write(uri) as fh:
        pq.write_table(pa.Table.from_pylist(rows, schema=schema), fh, compression="zstd")


def scan_unit(cfg: IngestConfig, unit: Unit, work_uri: str) -> ScanResult:
    res = ScanResult(unit.index)
    src = unit.source
    candidates: list[dict[str, Any]] = []
    rejects: list[dict[str, Any]] = []
    sigs: list[np.ndarray] = []
    kinds, regions = tuple(cfg.pii.kinds), tuple(cfg.pii.phone_regions)
    recognizers = tuple(load_recognizer(path) for path in cfg.pii.recognizers) if cfg.pii.enabled else ()

    def reject(location: str, reason: str, detail: str = "", text: str | None = None) -> None:
        res.rejected[reason] += 1
        rejects.append({"location": location, "source": src.name, "reason": reason, "detail": detail[:500],
                        "text": text[:QUARANTINE_TEXT_LIMIT] if text else None})

    for uri in unit.files:
        for rec in read_file(src, uri):
            res.docs_in += 1
            if rec.error:
                reject(rec.location, rec.error, rec.detail)
                continue
            raw = rec.raw
            res.bytes_in += len(raw) if isinstance(raw, bytes) else len(raw.encode("utf-8", "surrogatepass"))
            try:
                text = normalize(raw)
            except InvalidText as exc:
                reject(rec.location, str(exc))
                continue
            passed = []
            if not text:
                reject(rec.location, "empty")
                continue
            if cfg.length.enabled:
                if len(text) < cfg.length.min_chars:
                    reject(rec.location, "too_short", f"{len(text)} < {cfg.length.min_chars} chars", text)
                    continue
                if len(text) > cfg.length.max_chars:
                    reject(rec.location, "too_long", f"{len(text)} > {cfg.length.max_chars} chars", text)
                    continue
                passed.append("length")
            if cfg.quality.enabled:
                issue = quality_issue(text, cfg.quality)
                if issue:
                    reject(rec.location, issue, "", text)
                    continue
                passed.append("quality")
            language, confidence = src.language, 1.0 if src.language else 0.0
            if cfg.language.enabled:
                language, confidence = identify(text, cfg.language)
                issue = language_issue(language, confidence, cfg.language)
                if issue:
                    reject(rec.location, issue.rsplit(":", 1)[0] if issue.startswith("language:not_kept") else issue,
                           f"{language} ({confidence:.2f})", text)
                    continue
                passed.append("language")
            counts: dict[str, int] = {}
            if cfg.pii.enabled:
                red = redact(text, kinds, regions, recognizers)
                text, counts = red.text, red.counts
            encoded = text.encode("utf-8")
            sha = hashlib.sha256(encoded).hexdigest()
            doc_id = f"{src.name}/{rec.external_id or sha[:16]}"
            res.doc_ids.append(doc_id)
            res.sha256.append(sha)
            if cfg.dedup.near:
                sigs.append(signature(text, cfg.dedup))
            candidates.append({
                "doc_id": doc_id, "text": text, "sha256": sha, "source": src.name, "location": rec.location,
                "license": src.license, "language_hint": src.language, "language": language, "language_confidence": confidence,
                "bytes": len(encoded), "filters": ",".join(passed),
                **{f"pii_{k}": counts.get(k, 0) for k in KINDS},
                "pii_other": json.dumps(dict(sorted(other.items()))) if (other := {k: n for k, n in counts.items() if k not in KINDS}) else None,
                "metadata": json.dumps(rec.metadata, ensure_ascii=False, sort_keys=True, default=str) if rec.metadata else None,
            })
    if sigs:
        res.signatures = np.stack(sigs)
    _write(work_path(work_uri, unit.index, "candidates"), candidates, CANDIDATE_SCHEMA)
    _write(work_path(work_uri, unit.index, "rejects"), rejects, QUARANTINE_SCHEMA)
    return res


def shard_name(split: str, unit: int) -> str:
    return f"{split}/part-{unit:05d}.parquet"


def write_unit(unit: int, work_uri: str, out_uri: str, verdicts: list[tuple[str, str]]) -> dict[str, Any]:
    """Write shards for one unit. `verdicts[i]` is ("train", "") or ("val", "") for a kept
    candidate, or (reason, detail) for one the corpus-wide checks rejected. Returns the manifest
    rows, the shards written and the byte count."""
    fs, path = storage.filesystem(work_path(work_uri, unit, "candidates"))
    candidates = pq.read_table(path, filesystem=fs).to_pylist()
    fs, path = storage.filesystem(work_path(work_uri, unit, "rejects"))
    quarantine = pq.read_table(path, filesystem=fs).to_pylist()
    splits: dict[str, list[dict]] = {"train": [], "val": []}
    manifest = []
    if len(verdicts) != len(candidates):
        raise ValueError(f"unit {unit}: {len(verdicts)} verdicts for {len(candidates)} candidates")
    for doc, (verdict, detail) in zip(candidates, verdicts):
        if verdict not in splits:
            quarantine.append({"location": doc["location"], "source": doc["source"], "reason": verdict,
                               "detail": detail, "text": doc["text"][:QUARANTINE_TEXT_LIMIT]})
            continue
        split = verdict
        row = len(splits[split])
        splits[split].append({"doc_id": doc["doc_id"], "text": doc["text"]})
        manifest.append({**{k: v for k, v in doc.items() if k != "text"}, "split": split,
                         "shard": shard_name(split, unit), "row": row})
    shards = {}
    for split, docs in splits.items():
        if docs:
            _write(storage.join(out_uri, shard_name(split, unit)), docs, DOCS_SCHEMA)
            shards[split] = shard_name(split, unit)
    # Written even when empty, so every unit has its quarantine part and the folder always exists.
    _write(storage.join(out_uri, f"quarantine/part-{unit:05d}.parquet"), quarantine, QUARANTINE_SCHEMA)
    return {"unit": unit, "manifest": manifest, "shards": shards, "quarantined": len(quarantine),
            "bytes_out": sum(d["bytes"] for d in manifest)}
