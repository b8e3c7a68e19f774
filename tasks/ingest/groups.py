"""One hash partition of the shuffle: duplicate groups decided, losers and candidate pairs out.

Records sharing a key form a group; its survivor is its first member in canonical order (the
smallest position), whichever unit or worker produced it. Per partition this writes:
- `losers/p-NNNN.parquet`: exact-duplicate and duplicate-id losers (position, reason, detail),
  sorted by position so that each range of units reads only its part;
- `pairs/p-NNNN.parquet`: for each LSH bucket with more than one document, candidate pairs from
  every later member to the bucket's first and to the member before it (confirmed by signature
  similarity later);
- `index/part-NNNN.parquet` in the stage output: (doc_id, position) of the first holder of every
  id in this partition, sorted by id: one read finds which unit holds a document.
Memory: one partition's records (~(bands + 2) × documents / P rows).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from infra import storage
from tasks.ingest.shuffle import BAND, EXACT, ID, SCHEMA
from tasks.ingest.work import Work, list_files, read_table, resumable, write_table

LOSERS_SCHEMA = pa.schema([("position", pa.int64()), ("reason", pa.string()), ("detail", pa.string())])
PAIRS_SCHEMA = pa.schema([("first", pa.int64()), ("other", pa.int64())])
INDEX_SCHEMA = pa.schema([("doc_id", pa.string()), ("position", pa.int64())])


def losers_file(work: Work, partition: int) -> str:
    return work.path("losers", f"p-{partition:04d}.parquet")


def pairs_file(work: Work, partition: int) -> str:
    return work.path("pairs", f"p-{partition:04d}.parquet")


def index_file(out_uri: str, partition: int) -> str:
    return storage.join(out_uri, "index", f"part-{partition:04d}.parquet")


@resumable("group")
def group_partition(work: Work, partition: int, out_uri: str) -> dict[str, Any]:
    table = read_table(list_files(work.shuffle_dir(partition)), SCHEMA)
    kind = table.column("kind").to_numpy()
    k0 = table.column("k0").to_numpy()
    k1 = table.column("k1").to_numpy()
    pos = table.column("position").to_numpy()
    order = np.lexsort((pos, k1, k0, kind))  # by kind, key, then canonical position
    kind, k0, k1, pos = kind[order], k0[order], k1[order], pos[order]
    n = len(order)
    first = np.ones(n, dtype=bool)
    if n:
        first[1:] = (kind[1:] != kind[:-1]) | (k0[1:] != k0[:-1]) | (k1[1:] != k1[:-1])
    # For every record, the index (in sorted order) of its group's first member.
    head = np.maximum.accumulate(np.where(first, np.arange(n), 0))
    doc_ids = table.column("doc_id").take(pa.array(order))

    losers = []
    for k, reason in ((EXACT, "duplicate_exact"), (ID, "duplicate_id")):
        lose = np.flatnonzero(~first & (kind == k))
        if len(lose):
            survivors = doc_ids.take(pa.array(head[lose]))
            detail = (pc.binary_join_element_wise("same text as ", survivors, "") if k == EXACT
                      else doc_ids.take(pa.array(lose)))
            losers.append(pa.table({"position": pos[lose], "reason": pa.array([reason] * len(lose)),
                                    "detail": detail}, schema=LOSERS_SCHEMA))
    lost = pa.concat_tables(losers) if losers else LOSERS_SCHEMA.empty_table()
    write_table(losers_file(work, partition), lost.sort_by("position"))

    # Each later member pairs with its bucket's first and with the member before it: two
    # revisions of a page that share a bucket with an older, less similar one still meet.
    banded = np.flatnonzero(~first & (kind == BAND))
    found = np.concatenate([np.stack([pos[head[banded]], pos[banded]], axis=1),
                            np.stack([pos[banded - 1], pos[banded]], axis=1)])
    pairs = np.unique(found, axis=0) if len(banded) else np.empty((0, 2), np.int64)
    write_table(pairs_file(work, partition),
                pa.table({"first": pairs[:, 0], "other": pairs[:, 1]}, schema=PAIRS_SCHEMA).sort_by("other"))

    holders = np.flatnonzero(first & (kind == ID))
    index = pa.table({"doc_id": doc_ids.take(pa.array(holders)), "position": pos[holders]}, schema=INDEX_SCHEMA)
    write_table(index_file(out_uri, partition), index.sort_by("doc_id"))
    counts = pc.value_counts(lost.column("reason")).to_pylist()
    return {"losers": {c["values"]: c["counts"] for c in counts}, "pairs": len(pairs)}
