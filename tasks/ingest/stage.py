"""The ingest stage: sources in; clean, filtered, deduplicated, redacted documents out.

Work is spread over Ray tasks (see `process.py`); the driver only makes the corpus-wide
decisions (exact and near duplicates, duplicate ids, the train/validation split) in canonical
order, so outputs are byte-identical for any number of workers.

Output (under a content-addressed directory):
- `train/part-NNNNN.parquet`, `val/part-NNNNN.parquet`: `doc_id`, `text`; one part per input unit.
- `manifest.parquet`: one row per kept document: `doc_id`, `sha256` (of the output text), `source`,
  `location` (file and line/row), `license`, `language`, `language_confidence`, `bytes`, `filters`
  passed, `pii_<kind>` redaction counts, `metadata`, `split`, and `shard` + `row`: where it is.
- `quarantine/part-NNNNN.parquet`: every rejected record with `reason`, `detail` and its text.
- `stats.json`: `docs_in == kept + sum(rejected.values())`, per reason, per source, redactions.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any, Callable, Iterable

import pyarrow as pa
import pyarrow.parquet as pq

from infra import storage
from tasks.artifacts import StageOutput
from tasks.ingest.address import STAGE, VERSION, plan, source_fingerprint  # noqa: F401 (the stage's address)
from tasks.ingest.config import IngestConfig
from tasks.ingest.dedup import NearDuplicates
from tasks.ingest.pii.recognizer import load as load_recognizer
from tasks.ingest.pii.redact import KINDS
from tasks.ingest.process import CANDIDATE_SCHEMA, ScanResult, scan_unit, write_unit
from tasks.ingest.split import is_validation
from tasks.ingest.units import plan_units

Mapper = Callable[[Callable, list[tuple]], list[Any]]


def local_map(fn: Callable, args: list[tuple]) -> list[Any]:
    """Run `fn(*a)` for each `a` in this process, in order (tests, tiny inputs)."""
    return [fn(*a) for a in args]


def ingest_outputs(out: StageOutput) -> dict[str, str]:
    return {
        "train": out.path("train"), "val": out.path("val"), "manifest": out.path("manifest.parquet"),
        "quarantine": out.path("quarantine"), "stats": out.path("stats.json"),
    }


def _decide(cfg: IngestConfig, scans: list[ScanResult]) -> tuple[list[list[tuple[str, str]]], Counter]:
    """Corpus-wide verdicts per unit and candidate, walking units and records in canonical order."""
    seen_sha: dict[str, str] = {}
    seen_ids: set[str] = set()
    near = NearDuplicates(cfg.dedup) if cfg.dedup.near else None
    rejected: Counter = Counter()
    verdicts: list[list[tuple[str, str]]] = []
    kept: list[tuple[int, int, str]] = []  # (unit, position, sha) of kept candidates
    index = 0
    for scan in scans:
        unit_verdicts: list[tuple[str, str]] = []
        for pos, (doc_id, sha) in enumerate(zip(scan.doc_ids, scan.sha256)):
            verdict: tuple[str, str] | None = None
            if cfg.dedup.exact and sha in seen_sha:
                verdict = ("duplicate_exact", f"same text as {seen_sha[sha]}")
            elif doc_id in seen_ids:
                verdict = ("duplicate_id", doc_id)
            elif near is not None:
                match = near.check(index, scan.signatures[pos])
                if match is not None:
                    verdict = ("duplicate_near", f"near duplicate of document #{match}")
            index += 1
            if verdict:
                rejected[verdict[0]] += 1
                unit_verdicts.append(verdict)
                continue
            seen_sha.setdefault(sha, doc_id)
            seen_ids.add(doc_id)
            split = "val" if is_validation(sha, cfg.val_fraction) else "train"
            unit_verdicts.append((split, ""))
            kept.append((len(verdicts), pos, sha))
        verdicts.append(unit_verdicts)
    # A tiny corpus may hash no document into validation: hold out the lowest-hash one.
    if len(kept) >= 2 and not any(verdicts[u][p][0] == "val" for u, p, _ in kept):
        u, p, _ = min(kept, key=lambda k: k[2])
        verdicts[u][p] = ("val", "")
    return verdicts, rejected


def run_ingest(
    cfg: IngestConfig, out: StageOutput, files: dict[str, Any], mapper: Mapper = local_map
) -> dict[str, Any]:
    """Scan every unit, decide duplicates and split, write shards, manifest and stats, publish."""
    if cfg.pii.enabled:  # a recogniser that cannot load fails here, before any work, not in a worker
        for path in cfg.pii.recognizers:
            load_recognizer(path)
    units = plan_units(cfg, {s.name: files[s.name] for s in cfg.sources})
    work = out.path("_work")
    scans: list[ScanResult] = mapper(scan_unit, [(cfg, u, work) for u in units])
    verdicts, dedup_rejected = _decide(cfg, scans)
    written = mapper(write_unit, [(u.index, work, out.uri, v) for u, v in zip(units, verdicts)])

    manifest = [row for w in written for row in w["manifest"]]
    manifest_schema = pa.schema([f for f in CANDIDATE_SCHEMA if f.name != "text"] +
                                [pa.field("split", pa.string()), pa.field("shard", pa.string()), pa.field("row", pa.int64())])
    with storage.open_write(out.path("manifest.parquet")) as fh:
        pq.write_table(pa.Table.from_pylist(manifest, schema=manifest_schema), fh, compression="zstd")

    rejected = sum((s.rejected for s in scans), Counter()) + dedup_rejected
    by_source: dict[str, Counter] = {s.name: Counter() for s in cfg.sources}
    for unit, scan in zip(units, scans):
        c = by_source[unit.source.name]
        c["docs_in"] += scan.docs_in
        c["rejected"] += sum(scan.rejected.values()) + sum(1 for v in verdicts[unit.index] if v[0] not in ("train", "val"))
    for row in manifest:
        by_source[row["source"]]["kept"] += 1
    stats = {
        "docs_in": sum(s.docs_in for s in scans),
        "kept": len(manifest),
        "rejected": dict(sorted(rejected.items())),
        # Redactions in the kept documents (the manifest's pii_<kind> columns add up to these).
        "redactions": _redactions(manifest),
        "by_source": {k: dict(v) for k, v in by_source.items()},
        "splits": {s: sum(1 for r in manifest if r["split"] == s) for s in ("train", "val")},
        "bytes_in": sum(s.bytes_in for s in scans),
        "bytes_out": sum(w["bytes_out"] for w in written),
        # Files under a source that are not of a supported type: named, never silently skipped.
        "files_ignored": {s.name: files[f"{s.name}:ignored"] for s in cfg.sources if files[f"{s.name}:ignored"]},
        "units": len(units),
    }
    if stats["docs_in"] != stats["kept"] + sum(stats["rejected"].values()):
        raise AssertionError(f"ingest counts do not reconcile: {stats}")
    shards = {split: [out.path(w["shards"][split]) for w in written if split in w["shards"]] for split in ("train", "val")}
    storage.write_json(out.path("stats.json"), stats)
    out.publish({"stats": stats, "outputs": ingest_outputs(out), "shards": shards})
    _remove_work(work)
    return stats


def _redactions(manifest: list[dict[str, Any]]) -> dict[str, int]:
    """Redactions per kind in the kept documents: Werk's kinds, then a team's recognisers' kinds."""
    total: Counter = Counter()
    for row in manifest:
        total.update({k: row[f"pii_{k}"] for k in KINDS})
        if row["pii_other"]:
            total.update(json.loads(row["pii_other"]))
    return {k: n for k, n in sorted(total.items(), key=lambda kv: (kv[0] not in KINDS, kv[0])) if n}


def _remove_work(work: str) -> None:
    fs, path = storage.filesystem(work)
    try:
        fs.rm(path, recursive=True)
    except FileNotFoundError:
        pass


def split_shards(out: StageOutput, split: str) -> list[str]:
    """URIs of a published ingest output's document shards for one split, in canonical order."""
    return out.completion()["shards"][split]


def read_texts(uris: str | Iterable[str]) -> Iterable[str]:
    """Texts of document shards written by this stage, in order, one shard in memory at a time."""
    for uri in [uris] if isinstance(uris, str) else uris:
        fs, path = storage.filesystem(uri)
        yield from pq.read_table(path, filesystem=fs, columns=["text"]).column("text").to_pylist()
