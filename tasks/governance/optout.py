"""Opt-outs before collection: documents a recipe must never ingest.

A recipe names opt-out lists (`ingest.opt_out.lists`): text files, local or on S3, one entry per
line, `#` for comments:
    domain:example.org          every URL on this host or its subdomains
    url:https://example.org/a/  every URL starting with this prefix
    id:web/0042                 one document id, as the manifest names it
    sha256:<64 hex>             one content hash of the kept text (the manifest's `sha256`)
A document's URL is read from its metadata field `ingest.opt_out.url_field` (which its source must
keep with `metadata_fields`). Matching documents are rejected with reason `opted_out`, counted,
and quarantined without their text: the text of a person who opted out is not stored.
"""

from __future__ import annotations

import hashlib
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict

from infra import storage

KINDS = ("domain", "url", "id", "sha256")


class OptOutError(ValueError):
    pass


class OptOuts(BaseModel):
    """Parsed lists. Size: the lists' entries (a few per opted-out site or person), not the corpus."""

    model_config = ConfigDict(frozen=True)

    domains: frozenset[str] = frozenset()
    url_prefixes: tuple[str, ...] = ()
    ids: frozenset[str] = frozenset()
    shas: frozenset[str] = frozenset()
    digest: str | None = None  # of the lists' content: part of the ingest's address

    def __bool__(self) -> bool:
        return bool(self.domains or self.url_prefixes or self.ids or self.shas)

    def by_url(self, url: str | None) -> str | None:
        """The entry a URL matches, or None."""
        if not url:
            return None
        host = (urlsplit(url).hostname or "").lower().rstrip(".")
        parts = host.split(".")
        for i in range(len(parts) - 1):
            if ".".join(parts[i:]) in self.domains:
                return f"domain:{'.'.join(parts[i:])}"
        for prefix in self.url_prefixes:
            if url.startswith(prefix):
                return f"url:{prefix}"
        return None

    def by_doc(self, doc_id: str | None, sha256: str | None) -> str | None:
        if doc_id and doc_id in self.ids:
            return f"id:{doc_id}"
        if sha256 and sha256 in self.shas:
            return f"sha256:{sha256}"
        return None


def parse(text: str, where: str = "") -> dict[str, set[str]]:
    found: dict[str, set[str]] = {k: set() for k in KINDS}
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        kind, _, value = line.partition(":")
        value = value.strip()
        if kind not in KINDS or not value:
            raise OptOutError(f"{where}:{n}: {raw.strip()!r} is not an opt-out entry: write domain:HOST, url:PREFIX, "
                              f"id:DOC_ID or sha256:HEX")
        if kind == "sha256" and (len(value) != 64 or any(c not in "0123456789abcdef" for c in value.lower())):
            raise OptOutError(f"{where}:{n}: {value!r} is not a sha256 (64 hex digits)")
        found[kind].add(value.lower().rstrip(".") if kind in ("domain", "sha256") else value)
    return found


def load(uris: list[str]) -> OptOuts:
    """The lists, merged; their digest changes when any entry does."""
    if not uris:
        return OptOuts()
    merged: dict[str, set[str]] = {k: set() for k in KINDS}
    for uri in uris:
        if not storage.exists(uri):
            raise OptOutError(f"opt-out list {uri} not found")
        for kind, values in parse(storage.read_text(uri), uri).items():
            merged[kind] |= values
    canonical = "\n".join(f"{k}:{v}" for k in KINDS for v in sorted(merged[k]))
    return OptOuts(domains=frozenset(merged["domain"]), url_prefixes=tuple(sorted(merged["url"])),
                   ids=frozenset(merged["id"]), shas=frozenset(merged["sha256"]),
                   digest=hashlib.sha256(canonical.encode()).hexdigest())
