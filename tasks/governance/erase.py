"""`werk erase`: find a person's documents, tombstone them, rebuild what held them, flag the models.

Finding: `--doc` looks each id up in every ingest output's index (two reads) and in its
quarantine; `--match` searches the text of every kept and quarantined document, one Ray task per
ingest unit (a text search reads the corpus once; nothing but the matches' ids comes back).
Then, in this order, so that an interruption leaves nothing worse than before:
1. the request and its tombstones are appended to the register (from then on, no ingest of these
   sources lets the documents in again);
2. every ingest output of the tombstoned sources is rebuilt under its new key, and every encode
   output made from it (`rebuild.py`); then the old ones are deleted;
3. every model version trained on the old outputs is flagged (`flags.py`).
Running `werk erase` again for the same documents finishes an interrupted one.
"""

from __future__ import annotations

import re
from typing import Any, Callable

from pydantic import BaseModel, ConfigDict

from infra import storage
from tasks.encode.record import EncodeRecord
from tasks.governance import register
from tasks.governance.flags import FlaggedVersion, flag_versions
from tasks.artifacts import StageOutput
from tasks.governance.rebuild import (Rebuilt, ValidationEmptied, finish_removals, partial_outputs, rebuild_encode,
                                      rebuild_ingest, remove)
from tasks.ingest.record import IngestRecord
from tasks.ingest.stage import Mapper, local_map
from tasks.lineage.published import published
from tasks.training.record import PretrainRecord


class Found(BaseModel):
    """A document an erasure names: where it is, never its text."""

    model_config = ConfigDict(frozen=True)

    ingest_key: str
    doc_id: str | None
    sha256: str | None
    source: str
    location: str
    where: str  # "kept" or "quarantine"
    reason: str | None = None  # why it was quarantined


class ErasureResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    request_id: str
    found: list[Found]
    rebuilt: list[Rebuilt]
    removed: list[str]  # old outputs deleted
    flagged: list[FlaggedVersion]
    # Unfinished ingest outputs (a crashed or running ingest): their work files may hold erased text,
    # and no rerun will finish them under the new tombstones. Delete them once no ingest runs.
    partial: list[str] = []


def _quarantine_rows(ingest: IngestRecord, **filters: Any) -> list[dict[str, Any]]:
    from tasks.ingest.work import read_table

    columns = ["doc_id", "sha256", "source", "location", "reason"]
    try:
        table = read_table(ingest.outputs.quarantine, columns=columns,
                           filters=[(k, "in", v) for k, v in filters.items()] or None)
    except (KeyError, ValueError, FileNotFoundError):  # an output older than quarantine doc ids
        return []
    return table.to_pylist()


def find_docs(root: str, doc_ids: list[str], source: str | None = None) -> list[Found]:
    from tasks.ingest.lookup import locate

    found = []
    for ing in published(root, IngestRecord):
        for doc_id in doc_ids:
            row = locate(ing.uri, doc_id)
            if row and (source is None or row["source"] == source):
                found.append(Found(ingest_key=ing.key, doc_id=doc_id, sha256=row["sha256"], source=row["source"],
                                   location=row["location"], where="kept"))
        for row in _quarantine_rows(ing, doc_id=doc_ids):
            if source is None or row["source"] == source:
                found.append(Found(ingest_key=ing.key, where="quarantine", **row))
    return found


def search_unit(ingest_uri: str, unit: int, pattern: str, regex: bool, source: str | None) -> list[dict[str, Any]]:
    """The documents of one ingest unit (kept and quarantined) whose text matches. Memory: one unit."""
    from tasks.ingest.process import manifest_part, shard_name
    from tasks.ingest.rebuild import quarantine_part
    from tasks.ingest.work import read_table

    matches = re.compile(pattern).search if regex else (lambda text: pattern in text)
    hits = []
    manifest = {r["doc_id"]: r for r in read_table(storage.join(ingest_uri, manifest_part(unit)),
                                                    columns=["doc_id", "sha256", "source", "location"]).to_pylist()}
    for split in ("train", "val"):
        uri = storage.join(ingest_uri, shard_name(split, unit))
        if storage.exists(uri):
            for doc in read_table(uri, columns=["doc_id", "text"]).to_pylist():
                row = manifest[doc["doc_id"]]
                if (source is None or row["source"] == source) and matches(doc["text"]):
                    hits.append({**row, "where": "kept", "reason": None})
    for row in read_table(storage.join(ingest_uri, quarantine_part(unit))).to_pylist():
        if row["text"] and (source is None or row["source"] == source) and matches(row["text"]):
            hit = {k: row.get(k) for k in ("doc_id", "sha256", "source", "location", "reason")} | {"where": "quarantine"}
            if row["reason"] == "duplicate_id":  # its id is the kept holder's, whose text did not match
                hit["doc_id"] = None
            hits.append(hit)
    return hits


def find_matches(root: str, pattern: str, regex: bool = False, source: str | None = None,
                 mapper: Mapper = local_map) -> list[Found]:
    if regex:
        re.compile(pattern)  # a bad pattern fails here, not in a hundred tasks
    found = []
    for ing in published(root, IngestRecord):
        units = mapper(search_unit, [(ing.uri, u, pattern, regex, source) for u in range(ing.stats.units)])
        found += [Found(ingest_key=ing.key, **hit) for hits in units for hit in hits]
    return found


def _remove_all(ing: IngestRecord, encodes: list[EncodeRecord], request_id: str) -> list[str]:
    """Remove an ingest output and its encodings with no rebuilt successor; their URIs."""
    for enc in encodes:
        remove(enc.uri, request_id, None)
    remove(ing.uri, request_id, None)
    return [e.uri for e in encodes] + [ing.uri]


def tombstones(root: str, found: list[Found]) -> list[register.Tombstone]:
    uris = {ing.key: {s.name: s.uri for s in ing.sources} for ing in published(root, IngestRecord)}
    return [register.Tombstone(request_id="", doc_id=f.doc_id, sha256=f.sha256, source=f.source,
                               source_uri=uris[f.ingest_key][f.source], location=f.location) for f in found]


def erase(root: str, found: list[Found], reason: str, query: register.Query, by: str | None = None,
          client: Any | None = None, mapper: Mapper = local_map,
          keep_champion: Callable[[Any], bool] = lambda version: False) -> ErasureResult:
    """Tombstone `found`, flag the models trained on them, rebuild the outputs of their sources,
    delete the old ones. Outputs that already hold every tombstone are left alone, so running it
    again for the same documents finishes an interrupted erasure and undoes nothing."""
    if not found:
        raise ValueError("no document matched: nothing to erase")
    request = register.new_request(reason, query, tombstones(root, found), by)
    register.append(root, request)
    removed = finish_removals(root)  # an earlier erasure interrupted while deleting
    ingests, encodes = published(root, IngestRecord), published(root, EncodeRecord)  # unreadable: raise, never skip
    # Models first: a crash in a rebuild must not leave @champion on a model trained on erased text.
    held = {f.ingest_key for f in found if f.where == "kept"}
    trained_on = {e.key for e in encodes if e.inputs.get("ingest") in held}
    trained = {p.key for p in published(root, PretrainRecord) if p.inputs.get("encode") in trained_on}
    flagged = flag_versions(client, trained, [request.id], keep_champion) if client is not None else []
    if flagged:
        register.audit(root, "flag", [request.id], {"versions": [f"{f.name}/{f.version}" for f in flagged]}, request.who)
    rebuilt = []
    sources = {register.source_key(t.source_uri) for t in request.tombstones}
    for ing in ingests:
        if not sources & {register.source_key(s.uri) for s in ing.sources}:
            continue
        mine = [e for e in encodes if e.inputs.get("ingest") == ing.key]
        if ing.address is None:  # written before records had addresses: removed; a rerun ingests again
            removed += _remove_all(ing, mine, request.id)
            continue
        stones = register.applicable(root, [s.uri for s in ing.sources]).digest
        if StageOutput.of(ing).rekeyed(root, tombstones=stones).key == ing.key:
            continue  # it holds every tombstone already (a rerun of an erasure)
        try:
            new, change, changed_units = rebuild_ingest(ing, root, mapper)
        except ValidationEmptied:  # so the next run of the recipe ingests again, as a fresh ingest would
            removed += _remove_all(ing, mine, request.id)
            continue
        rebuilt.append(change)
        for enc in mine:
            new_enc, enc_change = rebuild_encode(enc, ing, new, changed_units, root, mapper)
            rebuilt.append(enc_change)
            remove(enc.uri, request.id, new_enc.key)
            removed.append(enc.uri)
        remove(ing.uri, request.id, new.key)
        removed.append(ing.uri)
    register.audit(root, "rebuild", [request.id], {"rebuilt": [f"{r.stage}:{r.before}->{r.after}" for r in rebuilt],
                                                  "removed": removed}, request.who)
    return ErasureResult(request_id=request.id, found=found, rebuilt=rebuilt, removed=removed, flagged=flagged,
                         partial=partial_outputs(root))
