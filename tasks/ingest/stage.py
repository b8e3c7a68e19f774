"""The ingest stage: sources in; clean, filtered, deduplicated, redacted documents out.

Every step that touches documents runs as Ray tasks over files on the storage root; the driver
holds the file list, the unit plan, counters and URIs, so its memory does not grow with the corpus:
1. `scan_unit` per unit (`process.py`): candidates, rejects, signatures, dedup keys;
2. `group_partition`, then `id_partition`, per hash partition (`groups.py`): exact duplicates and
   LSH pairs, then duplicate ids among the exact survivors;
3. near duplicates: `prior` per range of units (the exact and id verdicts, `verdicts.py`), `attach`
   and `confirm` per range (`near.py`), then groups by connected components (`components.py`), in
   one task or in node partitions round by round;
4. `gather` per range of units (`verdicts.py`): each losing document's verdict;
5. `write_unit` per unit: shards, quarantine and manifest parts.
Each group's survivor is its first member in canonical order (source, file, record), so outputs
are byte-identical for any number of workers; each step is resumable (`work.py`). Ids are
compared among the exact survivors; near-duplicate groups join transitively over all candidates,
and keep their first member that survived exact and id dedup.

Output (under a content-addressed directory):
- `train/part-NNNNN.parquet`, `val/part-NNNNN.parquet`: `doc_id`, `text`, `language`; one part
  per input unit.
- `manifest/part-NNNNN.parquet`: one row per kept document of the unit: `doc_id`, `sha256` (of
  the output text), `source`, `location` (file and line/row), `license`, `language`,
  `language_confidence`, `bytes`, `filters` passed, `pii_<kind>` redaction counts, `metadata`,
  `split`, and `shard` + `row`: where it is.
- `index/part-NNNN.parquet`: `doc_id` → canonical position, hash-partitioned by id, so finding a
  document reads two small files (`lookup.py`).
- `quarantine/part-NNNNN.parquet`: every rejected record with `reason`, `detail` and its text.
- `stats.json`: `docs_in == kept + sum(rejected.values())`, per reason, per source, redactions.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from collections import Counter
from typing import Any, Callable, Iterable

import pyarrow.parquet as pq

from infra import storage
from tasks.artifacts import StageOutput
from tasks.tracking.compute import measured
from tasks.ingest.address import STAGE, VERSION, plan, source_fingerprint  # noqa: F401 (the stage's address)
from tasks.ingest.config import IngestConfig
from tasks.ingest.groups import group_partition, id_partition
from tasks.ingest.minhash import bands
from tasks.ingest.components import components, partitioned_components
from tasks.ingest.near import attach, confirm
from tasks.ingest.pii.recognizer import load as load_recognizer
from tasks.ingest.pii.redact import KINDS
from tasks.ingest import erasures
from tasks.ingest.process import manifest_digest, manifest_part, scan_unit, shard_name, write_unit
from tasks.ingest.record import IngestOutputs, IngestRecord, IngestStats, SourceInfo
from tasks.ingest.units import plan_units
from tasks.ingest.verdicts import gather, prior
from tasks.ingest.work import Work, read_table

Mapper = Callable[[Callable, list[tuple]], list[Any]]

# The steps, in order, for progress reports.
PHASES = ("scan_unit", "group_partition", "id_partition", "prior", "attach", "confirm", "components", "spread", "settle", "propose", "name",
          "gather", "write_unit")


def local_map(fn: Callable, args: list[tuple]) -> list[Any]:
    """Run `fn(*a)` for each `a` in this process, in order (tests, tiny inputs)."""
    return [fn(*a) for a in args]


def ingest_outputs(out: StageOutput) -> IngestOutputs:
    return IngestOutputs(train=out.path("train"), val=out.path("val"), manifest=out.path("manifest"),
                         index=out.path("index"), quarantine=out.path("quarantine"), stats=out.path("stats.json"))


@measured
def run_ingest(
    cfg: IngestConfig, out: StageOutput, files: dict[str, Any], mapper: Mapper = local_map
) -> IngestRecord:
    """Scan every unit, decide duplicates and split, write shards, manifest and stats, publish."""
    if cfg.pii.enabled:  # a recogniser that cannot load fails here, before any work, not in a worker
        for path in cfg.pii.recognizers:
            load_recognizer(path)
    units = plan_units(cfg, {s.name: files[s.name] for s in cfg.sources})
    work = Work(out.path("_work"), len(units), cfg.partitions)
    # Results are small dicts of counts: the driver holds O(units + partitions) of them.
    layout = bands(cfg.dedup) if cfg.dedup.near else None
    scans = mapper(scan_unit, [(work, u.index, cfg, u, layout) for u in units])
    erasures.write(work.uri, storage.parent(storage.parent(out.uri)), [s.uri for s in cfg.sources],
                   out.address.inputs.get("tombstones") if out.address else None)
    mapper(group_partition, [(work, p) for p in range(cfg.partitions)])
    mapper(id_partition, [(work, p, out.uri) for p in range(cfg.partitions)])
    near: dict[str, int] = {}
    if cfg.dedup.near:
        mapper(prior, [(work, r) for r in range(work.ranges)])
        attached = mapper(attach, [(work, r, cfg.dedup.num_perm) for r in range(work.ranges)])
        confirmed = sum(c["confirmed"] for c in mapper(confirm, [(work, r, cfg.dedup) for r in range(work.ranges)]))
        if confirmed <= cfg.dedup.components_in_memory:
            groups = mapper(components, [(work, 0)])[0]
        else:
            groups = partitioned_components(work, mapper)
        near = {"candidate_pairs": sum(a["pairs"] for a in attached), "confirmed_pairs": confirmed,
                "groups": groups["groups"], "duplicates": groups["losers"]}
    mapper(gather, [(work, r, cfg.dedup.near) for r in range(work.ranges)])
    written = mapper(write_unit, [(work, u.index, out.uri, cfg.val_fraction) for u in units])
    written = _hold_out_one(work, out, cfg, written)

    rejected: Counter = Counter()
    redactions: Counter = Counter()
    by_source: dict[str, Counter] = {s.name: Counter() for s in cfg.sources}
    for unit, scan, w in zip(units, scans, written):
        rejected.update(scan["rejected"])
        rejected.update(w["rejected"])
        redactions.update(w["redactions"])
        c = by_source[unit.source.name]
        c["docs_in"] += scan["docs_in"]
        c["kept"] += w["kept"]
        c["bytes"] += w["bytes_out"]
        c["rejected"] += sum(scan["rejected"].values()) + sum(w["rejected"].values())
    stats = {
        "docs_in": sum(s["docs_in"] for s in scans),
        "kept": sum(w["kept"] for w in written),
        "rejected": dict(sorted(rejected.items())),
        # Redactions in the kept documents (the manifest's pii_<kind> columns add up to these):
        # Werk's kinds, then a team's recognisers' kinds.
        "redactions": dict(sorted(redactions.items(), key=lambda kv: (kv[0] not in KINDS, kv[0]))),
        "by_source": {k: dict(v) for k, v in by_source.items()},
        "splits": {s: sum(w["splits"][s] for w in written) for s in ("train", "val")},
        "bytes_in": sum(s["bytes_in"] for s in scans),
        "bytes_out": sum(w["bytes_out"] for w in written),
        # Files under a source that are not of a supported type: named, never silently skipped.
        "files_ignored": {s.name: files[f"{s.name}:ignored"] for s in cfg.sources if files[f"{s.name}:ignored"]},
        "units": len(units),
        "partitions": cfg.partitions,
        # Near-duplicate search: unique LSH candidate pairs, those confirmed, the groups they form
        # (with a member that survived exact and id dedup) and the documents only they reject.
        "near_dedup": near,
        "by_language": _languages(written),
        "split_bytes": {s: sum(w["split_bytes"][s] for w in written) for s in ("train", "val")},
    }
    checked = IngestStats.model_validate(stats)  # refuses counts that do not reconcile
    shards = {split: [out.path(w["shards"][split]) for w in written if split in w["shards"]] for split in ("train", "val")}
    storage.write_json(out.path("stats.json"), checked.model_dump(mode="json"))
    digests = [w.get("manifest_sha256") or _unit_digest(out, i) for i, w in enumerate(written)]
    record = out.publish(IngestRecord, stats=checked, outputs=ingest_outputs(out), shards=shards,
                         sources=[_source_info(s, files[s.name]) for s in cfg.sources],
                         manifest_sha256=hashlib.sha256("".join(digests).encode()).hexdigest(),
                         erasures=erasures.tombstones(work.uri).request_ids, collected_at=datetime.now(timezone.utc),
                         part_sha256={name: sha for w in written for name, sha in sorted(w["files"].items())})
    storage.remove_tree(work.uri)
    return record


def _hold_out_one(work: Work, out: StageOutput, cfg: IngestConfig, written: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A tiny corpus may hash no document into validation: hold out its lowest-hash one by
    writing that document's unit again (only ever for corpora of a handful of documents)."""
    if sum(w["kept"] for w in written) < 2 or any(w["splits"]["val"] for w in written):
        return written
    sha, unit = min((w["min_sha"], i) for i, w in enumerate(written) if w["min_sha"])
    for name in ("train", "val"):  # its train part may end up empty, so not rewritten
        fs, path = storage.filesystem(out.path(shard_name(name, unit)))
        if fs.exists(path):
            fs.rm(path)
    written = list(written)
    written[unit] = write_unit.__wrapped__(work, unit, out.uri, cfg.val_fraction, sha)
    # The unit's marker says what is there now: a rerun after a crash from here reads the truth.
    storage.write_json(work.marker("write", unit), written[unit])
    return written


def _languages(written: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    total: dict[str, Counter] = {}
    for w in written:
        for lang, c in w.get("by_language", {}).items():
            total.setdefault(lang, Counter()).update(c)
    return {lang: dict(total[lang]) for lang in sorted(total)}


def _source_info(src: Any, files: Any) -> SourceInfo:
    digest = hashlib.sha256(json.dumps(files, sort_keys=True, default=str).encode()).hexdigest()
    return SourceInfo(name=src.name, uri=src.uri, license=src.license, language=src.language, files=len(files),
                      digest=digest)


def _unit_digest(out: StageOutput, unit: int) -> str:
    """A unit's manifest digest from its published part (a unit written by an older Werk before a resume)."""
    rows = read_table(out.path(manifest_part(unit)), columns=["doc_id", "sha256"]).to_pylist()
    return manifest_digest(rows)




def split_shards(out: StageOutput, split: str) -> list[str]:
    """URIs of a published ingest output's document shards for one split, in canonical order."""
    return getattr(out.read(IngestRecord).shards, split)


def read_texts(uris: str | Iterable[str]) -> Iterable[str]:
    """Texts of document shards written by this stage, in order, one shard in memory at a time."""
    for uri in [uris] if isinstance(uris, str) else uris:
        fs, path = storage.filesystem(uri)
        yield from pq.read_table(path, filesystem=fs, columns=["text"]).column("text").to_pylist()
