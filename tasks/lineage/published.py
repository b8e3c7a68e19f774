"""The published records of one stage under a storage root.

One listing per stage: the number of outputs (recipes x versions of their inputs), never the
number of documents. A record this Werk cannot read is reported, not skipped in silence.
"""

from __future__ import annotations

from typing import TypeVar

from infra import storage
from tasks.stage_record import MARKER, RecordError, StageRecord

R = TypeVar("R", bound=StageRecord)


def erased(root: str, record_type: type[R]) -> list[tuple[R, str | None, str | None]]:
    """Outputs an erasure removed, from the records they left (`_ERASED.json`): (record, the key
    rebuilt in its place, the request). Unreadable ones are skipped: they describe no live data."""
    from tasks.governance.rebuild import ERASED

    fs, base = storage.filesystem(storage.join(root, record_type.STAGE))
    fs.invalidate_cache()
    scheme = root.split("://", 1)[0] + "://" if storage.is_remote(root) else ""
    found = []
    for marker in sorted(fs.glob(f"{base.rstrip('/')}/*/{ERASED}")):
        uri = scheme + marker if scheme and not marker.startswith(scheme) else marker
        try:
            data = storage.read_json(uri)
            rebuilt_as, erased_by = data.pop("rebuilt_as", None), data.pop("erased_by", None)
            found.append((record_type.parse(data, uri), rebuilt_as, erased_by))
        except (RecordError, ValueError, OSError):
            continue
    return found


def published(root: str, record_type: type[R], unreadable: list[str] | None = None) -> list[R]:
    """Every complete output of `record_type`'s stage under `root`, oldest first. Records that do
    not read (a newer Werk's, a broken file) are named in `unreadable` when given, else raise."""
    fs, base = storage.filesystem(storage.join(root, record_type.STAGE))
    fs.invalidate_cache()  # a listing cached earlier in this process would hide outputs published since
    try:
        markers = fs.glob(f"{base.rstrip('/')}/*/{MARKER}")
    except FileNotFoundError:
        return []
    found = []
    scheme = root.split("://", 1)[0] + "://" if storage.is_remote(root) else ""
    for marker in sorted(markers):
        uri = scheme + marker if scheme and not marker.startswith(scheme) else marker
        try:
            found.append(record_type.parse(storage.read_json(uri), uri))
        except (RecordError, ValueError, OSError) as exc:  # a newer layout, broken JSON, an unreadable file
            if unreadable is None:
                raise
            unreadable.append(str(exc) if isinstance(exc, RecordError) else f"{uri}: {type(exc).__name__}: {exc}")
    return sorted(found, key=lambda r: r.completed_at)
