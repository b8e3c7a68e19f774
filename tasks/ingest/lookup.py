"""Which shard holds a document: two small reads, whatever the corpus's size.

The ingest output's `index/` is partitioned like the dedup's id records (`shuffle.py`): the part
for a doc id names its canonical position, hence its unit; that unit's manifest part has the row.
Lineage ("which models saw this document") and erasure start here.
"""

from __future__ import annotations

from typing import Any

from infra import storage
from tasks.ingest.groups import index_file
from tasks.ingest.process import manifest_part
from tasks.ingest.shuffle import id_key, partition_of
from tasks.ingest.work import read_table, unit_of


def locate(ingest_uri: str, doc_id: str) -> dict[str, Any] | None:
    """The manifest row of a kept document (its `split`, `shard` and `row` say where its text is),
    or None when no kept document has this id. `ingest_uri` is a published ingest output."""
    from tasks.ingest.record import IngestRecord

    partitions = IngestRecord.read(ingest_uri).stats.partitions
    held = read_table(index_file(ingest_uri, partition_of(id_key(doc_id), partitions)),
                      filters=[("doc_id", "==", doc_id)])
    if not len(held):
        return None
    unit = unit_of(held.column("position")[0].as_py())
    rows = read_table(storage.join(ingest_uri, manifest_part(unit)), filters=[("doc_id", "==", doc_id)]).to_pylist()
    return rows[0] if rows else None
