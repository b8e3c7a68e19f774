"""After an erasure: the outputs that held erased text, rebuilt, and the old ones removed.

An ingest output that held an erased document is rebuilt under the key a rerun of its recipe
plans (its address with the new tombstones' digest, `StageOutput.rekeyed`), unit by unit
(`tasks/ingest/rebuild.py`): only units that held erased text are rewritten. Every encode output
made from it is rebuilt under its new key the same way: the token shards of unchanged ingest
parts are copied, the others encoded again with the same tokenizer (whose key names the ingest
before erasures, so it does not change). The old ingest and encode outputs are then deleted: the
erased text is gone from the storage root. Pretraining outputs and model versions made from them
stay (the weights cannot forget); `flags.py` marks them.

The driver holds per-unit results (counts and digests), never documents.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from typing import Any, Callable

from pydantic import BaseModel, ConfigDict

from infra import storage
from tasks.artifacts import StageOutput
from tasks.encode.record import EncodeRecord
from tasks.governance.register import applicable
from tasks.ingest.erasures import TOMBSTONES
from tasks.ingest.stage import Mapper, local_map
from tasks.ingest.record import IngestRecord, IngestStats
from tasks.stage_record import MARKER
from tasks.tracking.compute import measured



class FileChange(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    before: str | None  # sha256, None where the file did not exist
    after: str | None


class Rebuilt(BaseModel):
    """One stage output rebuilt: its keys, and every file's sha256 before and after."""

    model_config = ConfigDict(frozen=True)

    stage: str
    before: str
    after: str
    files: list[FileChange]

    @property
    def changed(self) -> list[FileChange]:
        return [f for f in self.files if f.before != f.after]


class ValidationEmptied(Exception):
    """A rebuild that would leave no validation document (see `rebuild_ingest`)."""


def _unit_of(uri: str) -> int:
    return int(re.search(r"part-(\d+)\.parquet$", uri).group(1))


@measured
def rebuild_ingest(old: IngestRecord, root: str, mapper: Mapper = local_map) -> tuple[IngestRecord, Rebuilt, set[int]]:
    """The ingest rebuilt with every tombstone for its sources; returns it, its file changes and
    the units that changed."""
    from tasks.ingest.groups import index_file
    from tasks.ingest.process import shard_name
    from tasks.ingest.rebuild import rebuild_index_part, rebuild_unit

    stones = applicable(root, [s.uri for s in old.sources])
    out = StageOutput.of(old).rekeyed(root, tombstones=stones.digest)
    work = out.path("_work")
    storage.write_json(storage.join(work, TOMBSTONES), stones.model_dump(mode="json"))
    units = range(old.stats.units)
    results = mapper(rebuild_unit, [(old.uri, out.uri, work, u) for u in units])
    parts = old.stats.partitions
    mapper(rebuild_index_part, [(old.uri, out.uri, index_file("", p), work) for p in range(parts)])
    stats = _stats(old.stats, results)
    if stats.kept >= 2 and not stats.splits.val:
        # The erased documents were a tiny corpus's whole validation split. A fresh ingest holds
        # another document out (`stage._hold_out_one`), moving it out of a train part: this output
        # would differ from it, so it is never published (the caller removes the old one instead).
        storage.remove_tree(out.uri)
        raise ValidationEmptied(f"erasing left {old.key} without a validation document")
    storage.write_json(out.path("stats.json"), stats.model_dump(mode="json"))
    shards = {split: [out.path(shard_name(split, r["unit"])) for r in results if r["files"][shard_name(split, r["unit"])][1]]
              for split in ("train", "val")}
    record = out.publish(IngestRecord, stats=stats, outputs=_outputs(out), shards=shards, sources=old.sources,
                         manifest_sha256=hashlib.sha256("".join(r["manifest_sha256"] for r in results).encode()).hexdigest(),
                         rebuilt_from=old.key, erasures=stones.request_ids, collected_at=old.collected_at or old.completed_at,
                         part_sha256={n: after for r in results for n, (_, after) in sorted(r["files"].items()) if after})
    storage.remove_tree(work)
    files = [FileChange(name=n, before=b, after=a) for r in results for n, (b, a) in r["files"].items()]
    return record, Rebuilt(stage="ingest", before=old.key, after=record.key, files=files), \
        {r["unit"] for r in results if r["changed"]}


def _outputs(out: StageOutput):
    from tasks.ingest.record import IngestOutputs

    return IngestOutputs(train=out.path("train"), val=out.path("val"), manifest=out.path("manifest"),
                         index=out.path("index"), quarantine=out.path("quarantine"), stats=out.path("stats.json"))


def _stats(old: IngestStats, results: list[dict[str, Any]]) -> IngestStats:
    """The old counts, moved as each unit's rebuild says (an erased document moves from kept, or
    from a dedup reason, to `erased`): they still reconcile, and equal a fresh ingest's."""
    from tasks.ingest.pii.redact import KINDS

    rejected, redactions, splits = Counter(old.rejected), Counter(old.redactions), Counter(old.splits.model_dump())
    by_source = {k: Counter(v.model_dump()) for k, v in old.by_source.items()}
    bytes_out = old.bytes_out
    by_language = {k: Counter(v.model_dump()) for k, v in old.by_language.items()}
    split_bytes = Counter(old.split_bytes)
    for r in results:
        for lang, c in r["by_language"].items():
            by_language[lang].subtract(c)
        split_bytes.subtract(r["split_bytes"])
        rejected.update(r["rejected"])
        redactions.subtract(r["redactions"])
        splits.subtract(r["kept"])
        bytes_out -= r["bytes_out"]
        for source, moved in r["by_source"].items():
            by_source[source].update(moved)
    erased_kept = sum(sum(r["kept"].values()) for r in results)
    return IngestStats.model_validate({
        **old.model_dump(), "kept": old.kept - erased_kept, "rejected": dict(sorted((k, n) for k, n in rejected.items() if n)),
        "redactions": dict(sorted(((k, n) for k, n in redactions.items() if n), key=lambda kv: (kv[0] not in KINDS, kv[0]))),
        "splits": dict(splits), "bytes_out": bytes_out, "by_source": {k: dict(v) for k, v in by_source.items()},
        "by_language": {k: dict(v) for k, v in sorted(by_language.items()) if v["documents"]},
        "split_bytes": {s: split_bytes[s] for s in old.split_bytes}})


@measured
def rebuild_encode(old: EncodeRecord, old_ingest: IngestRecord, new_ingest: IngestRecord, changed_units: set[int],
                   root: str, mapper: Mapper = local_map) -> tuple[EncodeRecord, Rebuilt]:
    """The encode output of `new_ingest`: token shards of unchanged ingest parts copied, the rest encoded again."""
    from tasks.encode import stage as encode_stage
    from tasks.encode.config import EncodeConfig
    from tasks.tokenizer.train import load_tokenizer

    out = StageOutput.of(old).rekeyed(root, ingest=new_ingest.key)
    cfg = EncodeConfig(**old.address.config)
    tokenizer = storage.join(root, "tokenizer", old.inputs["tokenizer"], "tokenizer.json")
    old_rows = storage.read_json(old.outputs.manifest)
    jobs, splits_of = [], []
    for split in ("train", "val"):
        before = getattr(old_ingest.shards, split)
        for part, uri in enumerate(getattr(new_ingest.shards, split)):
            unit = _unit_of(uri)
            same = part < len(before) and _unit_of(before[part]) == unit and unit not in changed_units
            prefix = f"{split}-{part:05d}-"
            if same:
                rows = [r for r in old_rows if r["name"].startswith(prefix)]
                text_bytes = sum(read_bytes_of(new_ingest, unit, split))
                jobs.append((_copy_part, (old.uri, out.uri, split, part, rows, text_bytes)))
            else:
                jobs.append((encode_stage.encode_part, (cfg, split, part, uri, out.uri, tokenizer, True)))
            splits_of.append(split)
    results = [r for r in mapper(_run, [(fn, args) for fn, args in jobs])]
    record = encode_stage.publish(out, splits_of, results, load_tokenizer(tokenizer), rebuilt_from=old.key)
    before = {s.rsplit("/", 1)[-1]: sha for split in ("train", "val")
              for s, sha in zip(old.summary.splits[split].shards, old.summary.splits[split].sha256)}
    after = {s.rsplit("/", 1)[-1]: sha for split in ("train", "val")
             for s, sha in zip(record.summary.splits[split].shards, record.summary.splits[split].sha256)}
    files = [FileChange(name=n, before=before.get(n), after=after.get(n)) for n in sorted(set(before) | set(after))]
    return record, Rebuilt(stage="encode", before=old.key, after=record.key, files=files)


def read_bytes_of(ingest: IngestRecord, unit: int, split: str) -> list[int]:
    """Text bytes of one unit's documents in a split, from its manifest part (what encode counts)."""
    from tasks.ingest.process import manifest_part
    from tasks.ingest.work import read_table

    t = read_table(storage.join(ingest.uri, manifest_part(unit)), columns=["split", "bytes"]).to_pylist()
    return [r["bytes"] for r in t if r["split"] == split]


def _run(fn: Callable, args: tuple) -> Any:
    return fn(*args)


def _copy_part(old_uri: str, new_uri: str, split: str, part: int, rows: list[dict[str, Any]], text_bytes: int) -> dict[str, Any]:
    """One ingest part's token shards and index part, copied (the part's documents did not change)."""
    from tasks.encode.stage import index_part
    from tasks.ingest.rebuild import _copy

    for row in rows:
        _copy(storage.join(old_uri, row["name"]), storage.join(new_uri, row["name"]))
    _copy(storage.join(old_uri, index_part(split, part)), storage.join(new_uri, index_part(split, part)))
    return {"shards": rows, "text_bytes": text_bytes}


ERASED = "_ERASED.json"  # what is left of an output an erasure removed: its record (no text) and why


def finish_removals(root: str) -> list[str]:
    """Outputs whose removal an interrupted erasure left half done (`_ERASED.json` and more files):
    removed now. Returns their URIs."""
    finished = []
    for stage in ("ingest", "encode"):
        fs, base = storage.filesystem(storage.join(root, stage))
        fs.invalidate_cache()
        for marker in sorted(fs.glob(f"{base.rstrip('/')}/*/{ERASED}")):
            folder = marker.rsplit("/", 1)[0]
            if any(not e.rstrip("/").endswith(ERASED) for e in fs.ls(folder, detail=False)):
                for entry in fs.ls(folder, detail=False):
                    if not entry.rstrip("/").endswith(ERASED):
                        fs.rm(entry, recursive=True)
                finished.append(folder)
    return finished


def partial_outputs(root: str) -> list[str]:
    """Ingest outputs with neither a marker nor an erasure record: unfinished (crashed or running)."""
    fs, base = storage.filesystem(storage.join(root, "ingest"))
    fs.invalidate_cache()
    try:
        folders = [e for e in fs.ls(base, detail=False) if fs.isdir(e)]
    except FileNotFoundError:
        return []
    done = {m.rsplit("/", 2)[-2] for m in fs.glob(f"{base.rstrip('/')}/*/{MARKER}") + fs.glob(f"{base.rstrip('/')}/*/{ERASED}")}
    return sorted(f for f in folders if f.rstrip("/").rsplit("/", 1)[-1] not in done)


def remove(record_uri: str, request_id: str, rebuilt_as: str | None) -> None:
    """Delete a stage output, its marker first (readers never trust a half-deleted output), and
    leave its record under `_ERASED.json`, so lineage still names what an old model was trained on."""
    if rebuilt_as is not None and record_uri.rstrip("/").endswith(f"/{rebuilt_as}"):
        raise ValueError(f"{record_uri} would be removed in favour of itself")
    fs, path = storage.filesystem(record_uri)
    marker = storage.join(record_uri, MARKER)
    if storage.exists(marker):
        record = storage.read_json(marker)
        storage.write_json(storage.join(record_uri, ERASED), {**record, "erased_by": request_id, "rebuilt_as": rebuilt_as})
        storage.remove_tree(marker)
    for entry in fs.ls(path, detail=False):
        if not entry.rstrip("/").endswith(ERASED):
            fs.rm(entry, recursive=True)

