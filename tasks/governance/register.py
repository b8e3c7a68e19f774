"""The erasure register: append-only, on the storage root, beside the outputs it governs.

`<root>/governance/erasure/requests/<time>-<id>.json`: one file per request, never rewritten: who
asked, why, when, what was searched for, and its tombstones. A tombstone names a document by its
id, the sha256 of its kept text, its source and its location in the source; the register keeps no
copy of any erased text, nor the `--match` pattern (a name or an address is personal data itself,
and a hash of one can be reversed by trying candidates): only that a text search was made. `<root>/governance/erasure/audit/`: one file per action taken on the register (a request,
a rebuild, models flagged, a status read), also append-only.

Because the register lives on the storage root, a fresh `WERK_HOME` (or another machine) pointed
at the same root sees every tombstone.
"""

from __future__ import annotations

import getpass
import hashlib
import secrets
from datetime import datetime, timezone
from typing import Any, Iterable

from pydantic import BaseModel, ConfigDict

from infra import storage

FOLDER = "governance/erasure"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Tombstone(_Frozen):
    request_id: str
    doc_id: str | None = None  # None for a rejected record that never had one
    sha256: str | None = None  # of the kept (cleaned, redacted) text
    source: str  # the source's name in the ingest that held it
    source_uri: str  # the source as configured: tombstones apply to every ingest of it
    location: str | None = None  # file and line/row in the source

    def line(self) -> str:
        return f"{self.source_uri}\t{self.doc_id or ''}\t{self.sha256 or ''}\t{self.location or ''}"

    def keys(self) -> list[str]:
        """What a document is recognised by: its id and content hash; its place in the source only
        for a record that had neither (a line of a file changes hands when the file is edited)."""
        found = [k for k in (self.doc_id, self.sha256) if k]
        if found:
            return found
        return [f"{self.source}\t{self.location}"] if self.location else []


class Query(_Frozen):
    doc_ids: list[str] = []
    text_search: bool = False  # --match was used (the pattern is not kept)
    regex: bool = False
    source: str | None = None


class ErasureRequest(_Frozen):
    id: str
    at: datetime
    who: str
    reason: str
    query: Query
    tombstones: list[Tombstone]


class AuditEntry(_Frozen):
    at: datetime
    who: str
    action: str  # "request", "rebuild", "flag", "status", "purge"
    request_ids: list[str] = []
    detail: dict[str, Any] = {}


def _folder(root: str, *parts: str) -> str:
    return storage.join(root, *FOLDER.split("/"), *parts)


def _stamp(at: datetime) -> str:
    return at.strftime("%Y%m%dT%H%M%S%fZ")


def who() -> str:
    """Who acts: the user, as the operating system names them."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (a container's arbitrary uid)
        return "unknown"


def new_request(reason: str, query: Query, tombstones: Iterable[Tombstone], by: str | None = None) -> ErasureRequest:
    request_id = f"er-{secrets.token_hex(6)}"
    stones = sorted({t.model_copy(update={"request_id": request_id}).line(): t.model_copy(update={"request_id": request_id})
                     for t in tombstones}.values(), key=Tombstone.line)
    return ErasureRequest(id=request_id, at=datetime.now(timezone.utc), who=by or who(), reason=reason, query=query,
                          tombstones=stones)


def append(root: str, request: ErasureRequest) -> str:
    """Write the request as a new file (never over an existing one) and its audit entry; returns its URI."""
    uri = _folder(root, "requests", f"{_stamp(request.at)}-{request.id}.json")
    if storage.exists(uri):
        raise FileExistsError(f"erasure request {uri} exists already: the register is append-only")
    storage.write_json(uri, request.model_dump(mode="json"))
    audit(root, "request", [request.id], {"tombstones": len(request.tombstones), "reason": request.reason}, request.who)
    return uri


def audit(root: str, action: str, request_ids: list[str], detail: dict[str, Any] | None = None, by: str | None = None) -> None:
    entry = AuditEntry(at=datetime.now(timezone.utc), who=by or who(), action=action, request_ids=request_ids,
                       detail=detail or {})
    storage.write_json(_folder(root, "audit", f"{_stamp(entry.at)}-{action}-{secrets.token_hex(3)}.json"),
                       entry.model_dump(mode="json"))


def _read_all(root: str, kind: str) -> list[dict[str, Any]]:
    fs, path = storage.filesystem(_folder(root, kind))
    fs.invalidate_cache()
    try:
        names = sorted(fs.ls(path, detail=False))
    except FileNotFoundError:
        return []
    scheme = root.split("://", 1)[0] + "://" if storage.is_remote(root) else ""
    return [storage.read_json(scheme + n if scheme and not n.startswith(scheme) else n) for n in names if n.endswith(".json")]


def requests(root: str) -> list[ErasureRequest]:
    """Every request, oldest first. Memory: the register (its tombstones), never the corpus."""
    return [ErasureRequest.model_validate(d) for d in _read_all(root, "requests")]


def audit_log(root: str) -> list[AuditEntry]:
    return [AuditEntry.model_validate(d) for d in _read_all(root, "audit")]


class TombstoneSet(_Frozen):
    """The tombstones that apply to one ingest (by its sources' URIs), as one lookup. Size: the
    tombstones of those sources, not the corpus."""

    requests: dict[str, str] = {}  # doc id, sha256 or "source\tlocation" -> the first request that erased it
    request_ids: list[str] = []  # every request with a tombstone here
    digest: str | None = None  # None when no tombstone applies: the ingest's key does not change

    def match(self, doc_id: str | None, sha256: str | None, source: str, location: str | None) -> str | None:
        """The request that erased this document, or None."""
        for k in (doc_id, sha256, f"{source}\t{location}" if location else None):
            if k and k in self.requests:
                return self.requests[k]
        return None


def source_key(uri: str) -> str:
    """A source's URI as tombstones compare it: absolute for a local path, no trailing slash."""
    import os

    if "://" in uri and not uri.startswith("file://"):
        return uri.rstrip("/")
    return os.path.abspath(os.path.expanduser(uri.removeprefix("file://"))).rstrip("/") or "/"


def applicable(root: str, source_uris: Iterable[str]) -> TombstoneSet:
    """The tombstones of every request that apply to an ingest of these sources."""
    wanted = {source_key(u) for u in source_uris}
    stones = [t for r in requests(root) for t in r.tombstones if source_key(t.source_uri) in wanted]
    if not stones:
        return TombstoneSet()
    first: dict[str, str] = {}
    for t in stones:
        for k in t.keys():
            first.setdefault(k, t.request_id)
    lines = sorted({t.line() for t in stones})
    return TombstoneSet(requests=first, request_ids=sorted({t.request_id for t in stones}),
                        digest=hashlib.sha256("\n".join(lines).encode()).hexdigest())
