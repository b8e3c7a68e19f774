"""What a finished ingest publishes (`_SUCCESS.json`): its counts, its output folders, its shards."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from pydantic import model_validator

from tasks.stage_record import Record, StageRecord


class SourceCounts(Record):
    docs_in: int
    kept: int
    rejected: int
    bytes: int = 0  # of the kept documents (version 2 on)


class NearDedupCounts(Record):
    """Unique LSH candidate pairs, those confirmed, the groups they form (with a member that
    survived exact and id dedup) and the documents only they reject."""

    candidate_pairs: int = 0
    confirmed_pairs: int = 0
    groups: int = 0
    duplicates: int = 0


class LanguageCounts(Record):
    documents: int
    bytes: int


class SplitCounts(Record):
    train: int
    val: int


class IngestStats(Record):
    """Every count reconciles: `docs_in == kept + sum(rejected.values())`, overall and per source.
    Sizes: the dicts grow with the number of reasons, PII kinds and sources, never with documents."""

    docs_in: int
    kept: int
    rejected: dict[str, int]  # documents per reason
    redactions: dict[str, int]  # in the kept documents; the manifest's pii_<kind> columns add up to these
    by_source: dict[str, SourceCounts]
    splits: SplitCounts
    bytes_in: int
    bytes_out: int
    # Files under a source that are not of a supported type: named, never silently skipped.
    files_ignored: dict[str, list[str]]
    units: int
    partitions: int
    near_dedup: NearDedupCounts = NearDedupCounts()
    # Kept documents and bytes per language (ISO 639-1; "und": unidentified). Version 2 on.
    by_language: dict[str, LanguageCounts] = {}
    split_bytes: dict[str, int] = {}  # bytes of the kept documents per split (version 2 on)

    @model_validator(mode="after")
    def _reconciles(self) -> IngestStats:
        if self.docs_in != self.kept + sum(self.rejected.values()):
            raise ValueError(f"ingest counts do not reconcile: {self.docs_in} in, {self.kept} kept, "
                             f"{sum(self.rejected.values())} rejected")
        for name, c in self.by_source.items():
            if c.docs_in != c.kept + c.rejected:
                raise ValueError(f"ingest counts of source {name!r} do not reconcile: {c}")
        if self.kept != self.splits.train + self.splits.val:
            raise ValueError(f"kept {self.kept} documents but the splits hold {self.splits}")
        if self.by_language and sum(c.documents for c in self.by_language.values()) != self.kept:
            raise ValueError(f"kept {self.kept} documents but the languages hold "
                             f"{sum(c.documents for c in self.by_language.values())}")
        return self


class IngestOutputs(Record):
    train: str  # folder of document shards
    val: str
    manifest: str  # folder of manifest parts: one row per kept document
    quarantine: str  # folder of quarantine parts: every rejected record with its reason
    index: str  # doc_id -> canonical position, hash-partitioned by id
    stats: str  # stats.json


class SplitShards(Record):
    """Document shard URIs per split, in canonical order (grows with the number of input units)."""

    train: list[str]
    val: list[str]


class SourceInfo(Record):
    """A source as the recipe named it: where its documents came from and under which licence."""

    name: str
    uri: str
    license: str
    language: str | None = None
    files: int | None = None  # files read (version 2 on)
    digest: str | None = None  # sha256 of the files' names, sizes and versions as read (version 2 on)


class IngestRecord(StageRecord):
    STAGE: ClassVar[str] = "ingest"
    VERSION: ClassVar[int] = 2

    stats: IngestStats
    outputs: IngestOutputs
    shards: SplitShards
    sources: list[SourceInfo] = []  # version 2 on
    # Digest of the manifest's content: sha256 over each unit's (doc_id, text sha256) rows, in
    # canonical order; independent of the Parquet writer. Version 2 on.
    manifest_sha256: str | None = None
    rebuilt_from: str | None = None  # the output an erasure rebuilt this one from (its key)
    collected_at: datetime | None = None  # when its sources were read (a rebuild keeps its original's)
    erasures: list[str] = []  # the erasure requests applied (version 2 on)
    # sha256 of every file of the output by its path in it (document, quarantine and manifest parts;
    # grows with the units). Version 2 on.
    part_sha256: dict[str, str] = {}

    @property
    def base_key(self) -> str:
        """The key of this ingest before erasures (`tasks/ingest/address.py`): what the tokenizer is
        trained for, so an erasure does not change the vocabulary and every token shard with it."""
        return self.address.config["base"] if self.address and "base" in (self.address.config or {}) else self.key
