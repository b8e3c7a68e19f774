"""An ingest output rebuilt after an erasure: only the units that held erased text are rewritten.

`rebuild_unit` is `write_unit` (process.py) replayed on a published unit instead of on its
candidates: an erased kept document leaves its shard and manifest part (the rows after it move
up) and joins the quarantine part as `erased`, with no text, at its canonical position; a dedup
loser the erasure names becomes `erased` too; any other quarantined record it names loses its
text. Dedup is not redone, as `write_unit` applies tombstones after dedup: the result is the
output a fresh ingest with the same tombstones writes, byte for byte (tested). A unit the
erasure does not touch is copied.

Memory: one unit's manifest, quarantine and shards.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from typing import Any

import pyarrow as pa

from infra import storage
from tasks.ingest.erasures import purged, tombstones
from tasks.ingest.process import (DOCS_SCHEMA, MANIFEST_SCHEMA, QUARANTINE_SCHEMA, languages, manifest_digest,
                                  manifest_part, shard_name)
from tasks.ingest.pii.redact import KINDS
from tasks.ingest.work import read_table, write_table

DEDUP_REASONS = ("duplicate_exact", "duplicate_near", "duplicate_id")  # decided among candidates


def quarantine_part(unit: int) -> str:
    return f"quarantine/part-{unit:05d}.parquet"


def _copy(old_uri: str, new_uri: str) -> str:
    """Copy a file, returning its sha256 (the same before and after)."""
    fs, path = storage.filesystem(old_uri)
    data = fs.cat_file(path)
    with storage.open_write(new_uri) as fh:
        fh.write(data)
    return hashlib.sha256(data).hexdigest()


def _files(unit: int) -> list[str]:
    return [manifest_part(unit), quarantine_part(unit), shard_name("train", unit), shard_name("val", unit)]


def rebuild_unit(old_uri: str, new_uri: str, work_uri: str, unit: int) -> dict[str, Any]:
    """Rewrite or copy one unit of `old_uri` into `new_uri`; returns what changed and each file's
    sha256 before and after (None where a file does not exist)."""
    stones = tombstones(work_uri)
    manifest = read_table(storage.join(old_uri, manifest_part(unit))).to_pylist()
    quarantine = read_table(storage.join(old_uri, quarantine_part(unit))).to_pylist()
    erased = {i: r for i, r in enumerate(manifest) if stones.match(r["doc_id"], r["sha256"], r["source"], r["location"])}
    moved: Counter = Counter()
    rows = []
    for row in quarantine:
        req = stones.match(row.get("doc_id"), row.get("sha256"), row["source"], row["location"])
        if req and row["reason"] in DEDUP_REASONS:  # a copy that reached dedup: erased like the kept one
            moved[row["reason"]] -= 1
            moved["erased"] += 1
            row = {**row, "reason": "erased", "detail": req, "text": None}
        rows.append(purged(row, stones))
    before = {name: (storage.sha256(storage.join(old_uri, name)) if storage.exists(storage.join(old_uri, name)) else None)
              for name in _files(unit)}
    if not erased and rows == quarantine:
        after = {name: _copy(storage.join(old_uri, name), storage.join(new_uri, name)) if sha else None
                 for name, sha in before.items()}
        return {"unit": unit, "changed": False, "files": {n: [before[n], after[n]] for n in before},
                "manifest_sha256": manifest_digest(manifest), "erased_ids": [], "rejected": {}, "kept": {},
                "redactions": {}, "bytes_out": 0, "by_source": {}, "by_language": {}, "split_bytes": {}}
    for i, r in erased.items():
        rows.append({"location": r["location"], "source": r["source"], "reason": "erased",
                     "detail": stones.match(r["doc_id"], r["sha256"], r["source"], r["location"]), "text": None,
                     "doc_id": r["doc_id"], "sha256": r["sha256"], "position": r["position"]})
        moved["erased"] += 1
    # As write_unit orders it: records rejected before dedup, then the rest in canonical order.
    scanned = [r for r in rows if r["position"] is None]
    rows = scanned + sorted((r for r in rows if r["position"] is not None), key=lambda r: r["position"])
    kept = [r for i, r in enumerate(manifest) if i not in erased]
    texts: dict[str, list[dict]] = {}
    for split in ("train", "val"):
        uri = storage.join(old_uri, shard_name(split, unit))
        if storage.exists(uri):
            gone = {r["doc_id"] for r in erased.values() if r["split"] == split}
            texts[split] = [d for d in read_table(uri).to_pylist() if d["doc_id"] not in gone]
    counters = {"train": 0, "val": 0}
    for r in kept:
        r["row"] = counters[r["split"]]
        counters[r["split"]] += 1
    write_table(storage.join(new_uri, manifest_part(unit)), pa.Table.from_pylist(kept, schema=MANIFEST_SCHEMA))
    write_table(storage.join(new_uri, quarantine_part(unit)), pa.Table.from_pylist(rows, schema=QUARANTINE_SCHEMA))
    for split, docs in texts.items():
        if docs:
            write_table(storage.join(new_uri, shard_name(split, unit)), pa.Table.from_pylist(docs, schema=DOCS_SCHEMA))
    after = {name: (storage.sha256(storage.join(new_uri, name)) if storage.exists(storage.join(new_uri, name)) else None)
             for name in _files(unit)}
    redactions: Counter = Counter()
    by_source: dict[str, Counter] = {}
    for r in erased.values():
        redactions.update({k: r[f"pii_{k}"] for k in KINDS})
        if r["pii_other"]:
            redactions.update(json.loads(r["pii_other"]))
        c = by_source.setdefault(r["source"], Counter())
        c["kept"] -= 1
        c["bytes"] -= r["bytes"]
        c["rejected"] += 1
    return {"unit": unit, "changed": True, "files": {n: [before[n], after[n]] for n in before},
            "manifest_sha256": manifest_digest(kept), "erased_ids": [r["doc_id"] for r in erased.values()],
            "rejected": dict(moved), "kept": dict(Counter(r["split"] for r in erased.values())),
            "redactions": {k: n for k, n in redactions.items() if n}, "bytes_out": sum(r["bytes"] for r in erased.values()),
            "by_source": {k: dict(v) for k, v in by_source.items()}, "by_language": languages(list(erased.values())),
            "split_bytes": {s: sum(r["bytes"] for r in erased.values() if r["split"] == s) for s in ("train", "val")}}


def rebuild_index_part(old_uri: str, new_uri: str, name: str, work_uri: str) -> None:
    """One part of the doc-id index without the ids the tombstones name: the rule `id_partition`
    applies in a fresh ingest (copied when the part holds none of them)."""
    import pyarrow.compute as pc

    table = read_table(storage.join(old_uri, name))
    named = pc.is_in(table.column("doc_id"), value_set=pa.array(list(tombstones(work_uri).requests), pa.string()))
    if not pc.any(named).as_py():
        _copy(storage.join(old_uri, name), storage.join(new_uri, name))
        return
    write_table(storage.join(new_uri, name), table.filter(pc.invert(named)))
