"""What a corpus is made of, counted from its manifest: the figures every card and summary quotes.

The counts come from the ingest record, which the ingest's workers summed from the manifest parts
they wrote; only crawled sources' web domains are counted here, from their manifest rows. Every
figure equals what the manifest says (tested), so a card never disagrees with the data it
describes. Sizes grow with sources, licences, languages and domains, never with documents.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict

from infra import storage
from tasks.ingest.record import IngestRecord

TOP_DOMAINS = 0.10  # the AI Act summary lists the top 10 % of domains by size


class Share(BaseModel):
    model_config = ConfigDict(frozen=True)

    documents: int
    bytes: int


class SourceShare(Share):
    name: str
    kind: str
    license: str
    description: str = ""
    homepage: str | None = None
    uri: str
    documents_in: int
    rejected: int
    files: int | None = None


class Composition(BaseModel):
    model_config = ConfigDict(frozen=True)

    ingest_key: str
    manifest_sha256: str | None
    documents: int
    bytes: int
    tokens: int | None  # training tokens, when the encode output is known
    splits: dict[str, Share]
    sources: list[SourceShare]
    languages: dict[str, Share]
    licenses: dict[str, Share]
    domains: dict[str, dict[str, Share]]  # per crawled source: its web domains, largest first (all of them)
    rejected: dict[str, int]  # documents per reason
    redactions: dict[str, int]
    near_duplicates: int
    erasures: list[str]
    opted_out: int
    latest_collection: str | None  # when the ingest was made: the latest date data was collected

    def top_domains(self, source: str) -> list[tuple[str, Share]]:
        """A crawled source's largest domains: the top 10 % of them by bytes (at least one)."""
        mine = self.domains.get(source, {})
        return list(mine.items())[:math.ceil(len(mine) * TOP_DOMAINS)]


def compose(ingest: IngestRecord, sources: list, tokens: int | None = None, url_field: str = "url") -> Composition:
    """The composition of a published ingest, from its record's counts; `sources`: the recipe's source
    configs (their kind, description and homepage are not part of the record). Only the web domains
    of crawled sources are counted from the manifest, reading those sources' rows alone."""
    stats = ingest.stats
    described = {s.name: s for s in sources}
    source_rows, licenses = [], {}
    for s in ingest.sources:
        counts, cfg = stats.by_source.get(s.name), described.get(s.name)
        kept, size = (counts.kept, counts.bytes) if counts else (0, 0)
        source_rows.append(SourceShare(
            name=s.name, kind=cfg.kind if cfg else "other", license=s.license, description=cfg.description if cfg else "",
            homepage=cfg.homepage if cfg else None, uri=s.uri, documents=kept, bytes=size,
            documents_in=counts.docs_in if counts else 0, rejected=counts.rejected if counts else 0, files=s.files))
        have = licenses.get(s.license, Share(documents=0, bytes=0))
        licenses[s.license] = Share(documents=have.documents + kept, bytes=have.bytes + size)
    splits = {split: Share(documents=getattr(stats.splits, split), bytes=stats.split_bytes.get(split, 0))
              for split in ("train", "val")}
    crawled = sorted(s.name for s in sources if s.kind == "crawled")
    return Composition(
        ingest_key=ingest.key, manifest_sha256=ingest.manifest_sha256, documents=stats.kept,
        bytes=sum(v.bytes for v in splits.values()), tokens=tokens, splits=splits, sources=source_rows,
        languages={k: Share(documents=v.documents, bytes=v.bytes) for k, v in sorted(stats.by_language.items())},
        licenses=dict(sorted(licenses.items())), domains=_domains(ingest, crawled, url_field) if crawled else {},
        rejected=dict(stats.rejected), redactions=dict(stats.redactions), near_duplicates=stats.near_dedup.duplicates,
        erasures=list(ingest.erasures), opted_out=stats.rejected.get("opted_out", 0),
        latest_collection=(ingest.collected_at or ingest.completed_at).date().isoformat())


def _domains(ingest: IngestRecord, crawled: list[str], url_field: str) -> dict[str, dict[str, Share]]:
    """Web domains of each crawled source's kept documents, largest first. One manifest part in
    memory at a time; the counters grow with the distinct domains."""
    from tasks.ingest.work import read_table

    found: dict[str, dict[str, Counter]] = {}
    for name in sorted(n for n in ingest.part_sha256 if n.startswith("manifest/")):
        rows = read_table(storage.join(ingest.uri, name), columns=["source", "bytes", "metadata"],
                          filters=[("source", "in", crawled)]).to_pylist()
        for r in rows:
            url = json.loads(r["metadata"]).get(url_field) if r["metadata"] else None
            host = (urlsplit(url).hostname or "") if isinstance(url, str) else ""
            if host:
                c = found.setdefault(r["source"], {}).setdefault(host.lower().removeprefix("www."), Counter())
                c["documents"] += 1
                c["bytes"] += r["bytes"]
    return {source: {k: Share(**c) for k, c in sorted(hosts.items(), key=lambda kv: (-kv[1]["bytes"], kv[0]))}
            for source, hosts in sorted(found.items())}
