"""Dedup keys routed to hash partitions through files: the corpus-wide shuffle of the ingest stage.

Each unit's scan writes, for every candidate document, one record per question asked about it
across the corpus: its content hash (exact duplicates), its id (duplicate ids) and one key per LSH
band of its MinHash signature (near-duplicate candidates). A record goes to partition
`key mod P`; one task per partition then sees every record that shares a key, whichever unit
wrote it. P comes from the config, never from the number of workers, so outputs do not depend on
the cluster.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pyarrow as pa

from tasks.ingest.work import Work, write_table

EXACT, ID, BAND = 0, 1, 2
SCHEMA = pa.schema([
    ("kind", pa.int8()),
    ("k0", pa.uint64()), ("k1", pa.uint64()),  # the 128-bit key
    ("position", pa.int64()),  # canonical position of the document
    ("doc_id", pa.string()),  # for exact and id records: names the survivor in a loser's detail
])


def id_key(doc_id: str) -> bytes:
    return hashlib.blake2b(doc_id.encode("utf-8"), digest_size=16).digest()


def partition_of(key: bytes, partitions: int) -> int:
    return int.from_bytes(key[:8], "big") % partitions


class UnitKeys:
    """The shuffle records of one unit, gathered while it is scanned (size: ~bands + 2 records
    per candidate of this unit)."""

    def __init__(self) -> None:
        self.kinds: list[int] = []
        self.keys: list[bytes] = []
        self.positions: list[int] = []
        self.doc_ids: list[str | None] = []

    def add(self, kind: int, key: bytes, position: int, doc_id: str | None = None) -> None:
        self.kinds.append(kind)
        self.keys.append(key)
        self.positions.append(position)
        self.doc_ids.append(doc_id)

    def write(self, work: Work, unit: int) -> int:
        """Write this unit's records to one file per partition that has any; returns the count."""
        if not self.keys:
            return 0
        halves = np.frombuffer(b"".join(self.keys), dtype=">u8").reshape(-1, 2).astype(np.uint64)
        table = pa.table({
            "kind": pa.array(self.kinds, pa.int8()), "k0": halves[:, 0], "k1": halves[:, 1],
            "position": pa.array(self.positions, pa.int64()), "doc_id": pa.array(self.doc_ids, pa.string()),
        }, schema=SCHEMA)
        partition = halves[:, 0] % np.uint64(work.partitions)
        # Ids in files of their own: they are grouped in a later pass (`groups.id_partition`),
        # which then reads them without the far more numerous band keys.
        is_id = np.asarray(self.kinds) == ID
        for records, rows in (("keys", ~is_id), ("ids", is_id)):
            picked = np.flatnonzero(rows)
            order = picked[np.argsort(partition[picked], kind="stable")]
            bounds = np.searchsorted(partition[order], np.arange(work.partitions + 1))
            for p in range(work.partitions):
                if bounds[p] < bounds[p + 1]:
                    write_table(work.shuffle_file(p, unit, records), table.take(order[bounds[p]:bounds[p + 1]]))
        return len(self.keys)
