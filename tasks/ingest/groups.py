"""Hash partitions of the shuffle: duplicate groups decided, losers and candidate pairs out.

Records sharing a key form a group; its survivor is its first member in canonical order (the
smallest position), whichever unit or worker produced it. Ids are compared among the documents
that survived exact dedup, so each partition is visited twice:
- `group_partition`: exact duplicates and LSH buckets. Writes `losers/p-NNNN.parquet` (exact
  losers, sorted by position so that each range of units reads only its part), the same losers'
  positions routed to the partitions of their ids, and `pairs/p-NNNN.parquet`: for each bucket
  with more than one document, candidate pairs from every later member to the bucket's first and
  to the member before it (confirmed by signature similarity later);
- `id_partition`: duplicate ids among the exact survivors (`losers-id/p-NNNN.parquet`), and
  `index/part-NNNN.parquet` in the stage output: (doc_id, position) of the first survivor holding
  each id, sorted by id: one read finds which unit holds a document.
Memory: one partition's records (~(bands + 2) × documents / P rows).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from infra import storage
from tasks.ingest.erasures import tombstones
from tasks.ingest.shuffle import BAND, EXACT, SCHEMA, id_key, partition_of
from tasks.ingest.work import Work, list_files, read_table, resumable, write_table

LOSERS_SCHEMA = pa.schema([("position", pa.int64()), ("reason", pa.string()), ("detail", pa.string())])
PAIRS_SCHEMA = pa.schema([("first", pa.int64()), ("other", pa.int64())])
POSITIONS_SCHEMA = pa.schema([("position", pa.int64())])
INDEX_SCHEMA = pa.schema([("doc_id", pa.string()), ("position", pa.int64())])


def losers_file(work: Work, partition: int) -> str:
    return work.path("losers", f"p-{partition:04d}.parquet")


def pairs_file(work: Work, partition: int) -> str:
    return work.path("pairs", f"p-{partition:04d}.parquet")


def index_file(out_uri: str, partition: int) -> str:
    return storage.join(out_uri, "index", f"part-{partition:04d}.parquet")


def _groups(table: pa.Table) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, pa.ChunkedArray]:
    """Records sorted by kind, key, then canonical position: (kind, position, whether each is its
    group's first, the index of its group's first, doc ids), all in that order."""
    kind = table.column("kind").to_numpy()
    k0 = table.column("k0").to_numpy()
    k1 = table.column("k1").to_numpy()
    pos = table.column("position").to_numpy()
    order = np.lexsort((pos, k1, k0, kind))
    kind, k0, k1, pos = kind[order], k0[order], k1[order], pos[order]
    n = len(order)
    first = np.ones(n, dtype=bool)
    if n:
        first[1:] = (kind[1:] != kind[:-1]) | (k0[1:] != k0[:-1]) | (k1[1:] != k1[:-1])
    head = np.maximum.accumulate(np.where(first, np.arange(n), 0))
    return kind, pos, first, head, table.column("doc_id").take(pa.array(order))


def _exact_by_id_dir(work: Work, partition: int) -> str:
    return work.path("exact-by-id", f"p-{partition:04d}")


def id_losers_file(work: Work, partition: int) -> str:
    return work.path("losers-id", f"p-{partition:04d}.parquet")


@resumable("group")
def group_partition(work: Work, partition: int) -> dict[str, Any]:
    """Exact duplicates and LSH candidate pairs of one partition. Exact losers also go to the
    partitions of their ids, so that ids are compared among exact survivors only (`id_partition`)."""
    table = read_table(list_files(work.shuffle_dir(partition)), SCHEMA)
    kind, pos, first, head, doc_ids = _groups(table)

    lose = np.flatnonzero(~first & (kind == EXACT))
    lost = pa.table({"position": pos[lose], "reason": pa.array(["duplicate_exact"] * len(lose), pa.string()),
                     "detail": pc.binary_join_element_wise("same text as ", doc_ids.take(pa.array(head[lose])), "")},
                    schema=LOSERS_SCHEMA)
    write_table(losers_file(work, partition), lost.sort_by("position"))
    by_id = np.array([partition_of(id_key(d), work.partitions) for d in doc_ids.take(pa.array(lose)).to_pylist()],
                     dtype=np.int64)
    # Only where there are any (P x P files otherwise, nearly all empty): `id_partition` runs after
    # every `group_partition` has finished, so the files it lists are the complete set.
    for q in np.unique(by_id):
        write_table(storage.join(_exact_by_id_dir(work, int(q)), f"from-{partition:04d}.parquet"),
                    pa.table({"position": pos[lose[by_id == q]]}, schema=POSITIONS_SCHEMA))

    # Each later member pairs with its bucket's first and with the member before it: two
    # revisions of a page that share a bucket with an older, less similar one still meet.
    banded = np.flatnonzero(~first & (kind == BAND))
    found = np.concatenate([np.stack([pos[head[banded]], pos[banded]], axis=1),
                            np.stack([pos[banded - 1], pos[banded]], axis=1)])
    pairs = np.unique(found, axis=0) if len(banded) else np.empty((0, 2), np.int64)
    write_table(pairs_file(work, partition),
                pa.table({"first": pairs[:, 0], "other": pairs[:, 1]}, schema=PAIRS_SCHEMA).sort_by("other"))

    return {"exact_losers": len(lose), "pairs": len(pairs)}


@resumable("ids")
def id_partition(work: Work, partition: int, out_uri: str) -> dict[str, Any]:
    """Duplicate ids among the exact survivors of one id partition, and its part of the index:
    (doc_id, position) of the first survivor holding each id."""
    table = read_table(list_files(work.shuffle_dir(partition, "ids")), SCHEMA)
    exact = read_table(list_files(_exact_by_id_dir(work, partition)), POSITIONS_SCHEMA).column("position")
    table = table.filter(pc.invert(pc.is_in(table.column("position"), value_set=exact.combine_chunks())))
    _, pos, first, _, doc_ids = _groups(table)
    lose = np.flatnonzero(~first)
    lost = pa.table({"position": pos[lose], "reason": pa.array(["duplicate_id"] * len(lose), pa.string()),
                     "detail": doc_ids.take(pa.array(lose))}, schema=LOSERS_SCHEMA)
    write_table(id_losers_file(work, partition), lost.sort_by("position"))
    holders = np.flatnonzero(first)
    index = pa.table({"doc_id": doc_ids.take(pa.array(holders)), "position": pos[holders]}, schema=INDEX_SCHEMA)
    erased = tombstones(work.uri).requests
    if erased:  # an erased document is not found by its id any more
        index = index.filter(pc.invert(pc.is_in(index.column("doc_id"), value_set=pa.array(list(erased), pa.string()))))
    write_table(index_file(out_uri, partition), index.sort_by("doc_id"))
    return {"id_losers": len(lose)}
