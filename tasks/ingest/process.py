"""What one worker does with one unit, in two passes around the corpus-wide deduplication.

Pass 1 (`scan_unit`): read, clean, filter (length, quality, language), redact PII, hash and
sign every record; write the surviving candidates, the rejects, the signatures and the unit's dedup
keys (see `shuffle.py`) to work files; return only counts.
Pass 2 (`write_unit`): with the corpus-wide verdicts of the unit's range, write this unit's
train/val shards, its quarantine part and its manifest part; return counts.
Both are pure functions of their inputs, so any number of workers produces identical files.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections import Counter
from typing import Any

import numpy as np
import pyarrow as pa

from infra import storage
from tasks.governance.optout import load as _load_opt_outs
from tasks.ingest.clean import InvalidText, normalize
from tasks.ingest.erasures import purged, tombstones
from tasks.ingest.config import IngestConfig
from tasks.ingest.filters.language import identify, language_issue
from tasks.ingest.filters.quality import quality_issue
from tasks.ingest.minhash import band_keys, signature
from tasks.ingest.near import write_signatures
from tasks.ingest.pii.recognizer import load as load_recognizer
from tasks.ingest.pii.redact import KINDS, redact
from tasks.ingest.readers import read_file
from tasks.ingest.shuffle import BAND, EXACT, ID, UnitKeys, id_key
from tasks.ingest.split import is_validation
from tasks.ingest.units import Unit
from tasks.ingest.verdicts import unit_verdicts
from tasks.ingest.work import Work, position, read_table, resumable, write_table

CANDIDATE_SCHEMA = pa.schema([
    ("doc_id", pa.string()), ("text", pa.large_string()), ("sha256", pa.string()), ("source", pa.string()),
    ("location", pa.string()), ("license", pa.string()), ("language_hint", pa.string()), ("language", pa.string()),
    ("language_confidence", pa.float32()), ("bytes", pa.int64()), ("filters", pa.string()),
    *[(f"pii_{k}", pa.int32()) for k in KINDS],
    ("pii_other", pa.string()),  # JSON counts of a team's own recognisers' kinds, null if none
    ("metadata", pa.string()),
])
# `doc_id` and `sha256` are set where the document got that far (duplicates, erased documents), so an
# erasure finds quarantined copies; `text` is null where it must not be kept (erased, opted out).
QUARANTINE_SCHEMA = pa.schema([
    ("location", pa.string()), ("source", pa.string()), ("reason", pa.string()), ("detail", pa.string()),
    ("text", pa.large_string()), ("doc_id", pa.string()), ("sha256", pa.string()),
    ("position", pa.int64()),  # canonical position of a document that reached dedup, else null
])
# The language travels with the text, so readers of a split (the tokenizer's fertility table) need
# no corpus-wide lookup.
DOCS_SCHEMA = pa.schema([("doc_id", pa.string()), ("text", pa.large_string()), ("language", pa.string())])
MANIFEST_SCHEMA = pa.schema([f for f in CANDIDATE_SCHEMA if f.name != "text"] +
                            [pa.field("split", pa.string()), pa.field("shard", pa.string()), pa.field("row", pa.int64()),
                             pa.field("position", pa.int64())])
QUARANTINE_TEXT_LIMIT = 1 << 20  # keep up to 1 MB of a rejected document for inspection


@functools.lru_cache(maxsize=4)
def load_opt_outs(uris: tuple[str, ...]):
    """Each worker reads the lists once per ingest (a few entries per opted-out site or person)."""
    return _load_opt_outs(list(uris))


def _write(uri: str, rows: list[dict], schema: pa.Schema) -> str:
    return write_table(uri, pa.Table.from_pylist(rows, schema=schema))


@resumable("scan")
def scan_unit(work: Work, index: int, cfg: IngestConfig, unit: Unit,
              layout: tuple[int, int] | None = None) -> dict[str, Any]:
    """`layout`: the LSH (bands, rows) when near dedup is on (`minhash.bands`)."""
    src = unit.source
    docs_in = bytes_in = 0
    rejected: Counter = Counter()
    # This unit's candidates, rejects, signatures and keys: memory O(one unit).
    candidates: list[dict[str, Any]] = []
    rejects: list[dict[str, Any]] = []
    sigs: list[np.ndarray] = []
    keys = UnitKeys()
    kinds, regions = tuple(cfg.pii.kinds), tuple(cfg.pii.phone_regions)
    recognizers = tuple(load_recognizer(path) for path in cfg.pii.recognizers) if cfg.pii.enabled else ()

    def reject(location: str, reason: str, detail: str = "", text: str | None = None, doc_id: str | None = None,
               sha: str | None = None) -> None:
        rejected[reason] += 1
        rejects.append({"location": location, "source": src.name, "reason": reason, "detail": detail[:500],
                        "text": text[:QUARANTINE_TEXT_LIMIT] if text else None, "doc_id": doc_id, "sha256": sha,
                        "position": None})

    opt_outs = load_opt_outs(tuple(cfg.opt_out.lists))
    for uri in unit.files:
        for rec in read_file(src, uri):
            docs_in += 1
            if rec.error:
                reject(rec.location, rec.error, rec.detail)
                continue
            if opt_outs:  # before anything reads the text: an opted-out document is not processed
                given_id = f"{src.name}/{rec.external_id}" if rec.external_id else None
                entry = opt_outs.by_url((rec.metadata or {}).get(cfg.opt_out.url_field)) or opt_outs.by_doc(given_id, None)
                if entry:
                    reject(rec.location, "opted_out", entry, doc_id=given_id)
                    continue
            raw = rec.raw
            bytes_in += len(raw) if isinstance(raw, bytes) else len(raw.encode("utf-8", "surrogatepass"))
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
            entry = opt_outs.by_doc(doc_id, sha) if opt_outs else None
            if entry:
                reject(rec.location, "opted_out", entry, doc_id=doc_id, sha=sha)
                continue
            at = position(index, len(candidates))
            if cfg.dedup.exact:
                keys.add(EXACT, bytes.fromhex(sha[:32]), at, doc_id)
            keys.add(ID, id_key(doc_id), at, doc_id)
            if cfg.dedup.near:
                sigs.append(sig := signature(text, cfg.dedup))
                for key in band_keys(sig, layout):
                    keys.add(BAND, key, at)
            candidates.append({
                "doc_id": doc_id, "text": text, "sha256": sha, "source": src.name, "location": rec.location,
                "license": src.license, "language_hint": src.language, "language": language, "language_confidence": confidence,
                "bytes": len(encoded), "filters": ",".join(passed),
                **{f"pii_{k}": counts.get(k, 0) for k in KINDS},
                "pii_other": json.dumps(dict(sorted(other.items()))) if (other := {k: n for k, n in counts.items() if k not in KINDS}) else None,
                "metadata": json.dumps(rec.metadata, ensure_ascii=False, sort_keys=True, default=str) if rec.metadata else None,
            })
    if cfg.dedup.near:
        write_signatures(work, index, np.stack(sigs) if sigs else np.empty((0, cfg.dedup.num_perm), np.uint32))
    _write(work.unit_file(index, "candidates"), candidates, CANDIDATE_SCHEMA)
    _write(work.unit_file(index, "rejects"), rejects, QUARANTINE_SCHEMA)
    records = keys.write(work, index)
    return {"docs_in": docs_in, "bytes_in": bytes_in, "rejected": dict(rejected), "candidates": len(candidates),
            "records": records}


def shard_name(split: str, unit: int) -> str:
    return f"{split}/part-{unit:05d}.parquet"


def manifest_part(unit: int) -> str:
    return f"manifest/part-{unit:05d}.parquet"


@resumable("write")
def write_unit(work: Work, index: int, out_uri: str, val_fraction: float, force_val: str | None = None) -> dict[str, Any]:
    """Write one unit's shards, quarantine part and manifest part from its candidates and the
    corpus-wide verdicts. A kept document goes to validation when its content hash says so
    (`split.py`), or when its hash is `force_val` (the one held out of a corpus too small to
    have any). Returns counts; `min_sha` is the lowest content hash kept, for that rule."""
    # Memory: one unit's candidates, rejects and verdicts.
    candidates = read_table(work.unit_file(index, "candidates")).to_pylist()
    quarantine = read_table(work.unit_file(index, "rejects")).to_pylist()
    verdicts = unit_verdicts(work, index)
    stones = tombstones(work.uri)
    splits: dict[str, list[dict]] = {"train": [], "val": []}
    manifest = []
    lost: Counter = Counter()
    redactions: Counter = Counter()
    quarantine = [purged(row, stones) for row in quarantine]
    for i, doc in enumerate(candidates):
        erased = stones.match(doc["doc_id"], doc["sha256"], doc["source"], doc["location"])
        if erased or i in verdicts:
            # An erased document leaves, with no text kept, whatever dedup decided about it.
            reason, detail = ("erased", erased) if erased else verdicts[i]
            lost[reason] += 1
            quarantine.append({"location": doc["location"], "source": doc["source"], "reason": reason,
                               "detail": detail, "text": None if erased else doc["text"][:QUARANTINE_TEXT_LIMIT],
                               "doc_id": doc["doc_id"], "sha256": doc["sha256"], "position": position(index, i)})
            continue
        split = "val" if doc["sha256"] == force_val or is_validation(doc["sha256"], val_fraction) else "train"
        row = len(splits[split])
        splits[split].append({"doc_id": doc["doc_id"], "text": doc["text"], "language": doc["language"]})
        manifest.append({**{k: v for k, v in doc.items() if k != "text"}, "split": split,
                         "shard": shard_name(split, index), "row": row, "position": position(index, i)})
        redactions.update({k: doc[f"pii_{k}"] for k in KINDS})
        if doc["pii_other"]:
            redactions.update(json.loads(doc["pii_other"]))
    shards, files = {}, {}
    for split, docs in splits.items():
        if docs:
            files[shard_name(split, index)] = _write(storage.join(out_uri, shard_name(split, index)), docs, DOCS_SCHEMA)
            shards[split] = shard_name(split, index)
    # Written even when empty, so every unit has its quarantine and manifest parts.
    quarantined = f"quarantine/part-{index:05d}.parquet"
    files[quarantined] = _write(storage.join(out_uri, quarantined), quarantine, QUARANTINE_SCHEMA)
    files[manifest_part(index)] = _write(storage.join(out_uri, manifest_part(index)), manifest, MANIFEST_SCHEMA)
    return {"kept": len(manifest), "splits": {k: len(v) for k, v in splits.items()}, "rejected": dict(lost),
            "redactions": {k: n for k, n in redactions.items() if n}, "shards": shards, "quarantined": len(quarantine),
            "bytes_out": sum(d["bytes"] for d in manifest), "min_sha": min((d["sha256"] for d in manifest), default=None),
            "by_language": languages(manifest), "files": files,
            "split_bytes": {s: sum(d["bytes"] for d in manifest if d["split"] == s) for s in ("train", "val")},
            "manifest_sha256": manifest_digest(manifest)}


def languages(rows: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Kept documents and their bytes per language ("und" where none was identified or given)."""
    found: dict[str, dict[str, int]] = {}
    for r in rows:
        c = found.setdefault(r["language"] or "und", {"documents": 0, "bytes": 0})
        c["documents"] += 1
        c["bytes"] += r["bytes"]
    return found


def manifest_digest(rows: list[dict[str, Any]]) -> str:
    """A unit's manifest content, digested: its (doc_id, text sha256) rows in order."""
    return hashlib.sha256("".join(f"{r['doc_id']}\t{r['sha256']}\n" for r in rows).encode()).hexdigest()
