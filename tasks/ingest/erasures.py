"""The erasure tombstones one ingest applies (`tasks/governance/register.py`), on its workers.

The driver writes the tombstones that apply to the ingest's sources into the work folder once;
`id_partition` leaves erased ids out of the index and `write_unit` rejects erased documents as
`erased` (no text kept) and drops the text of quarantined records an erasure names. Size: the
tombstones of these sources, never the corpus.
"""

from __future__ import annotations

import functools
from typing import Any

from infra import storage
from tasks.governance.register import TombstoneSet, applicable

TOMBSTONES = "tombstones.json"  # in the work folder


def write(work_uri: str, root: str, source_uris: list[str], planned: str | None) -> None:
    """Write the tombstones the output's key names (`planned`: their digest when it was planned;
    if the register has grown since, the output would not be what its key says)."""
    stones = applicable(root, source_uris)
    if stones.digest != planned:
        raise RuntimeError(f"the erasure register changed while {storage.parent(work_uri)} was being made; "
                           "run the ingest again")
    storage.write_json(storage.join(work_uri, TOMBSTONES), stones.model_dump(mode="json"))


@functools.lru_cache(maxsize=4)
def tombstones(work_uri: str) -> TombstoneSet:
    uri = storage.join(work_uri, TOMBSTONES)
    return TombstoneSet.model_validate(storage.read_json(uri)) if storage.exists(uri) else TombstoneSet()


def purged(row: dict[str, Any], stones: TombstoneSet) -> dict[str, Any]:
    """A quarantined record, its text dropped if an erasure names it (it keeps its reason and count)."""
    erased = stones.match(row.get("doc_id"), row.get("sha256"), row["source"], row["location"])
    if not erased or row.get("text") is None:
        return row
    return {**row, "text": None, "detail": f"{row['detail']}; text erased ({erased})".lstrip("; ")}
