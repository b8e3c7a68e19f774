"""The corpus-wide verdicts of one range of units, gathered from every partition's losers.

A document may lose in several groups (an exact copy is also a near copy); its reason is the
first that applies in the order exact, id, near, and its detail names that group's survivor.
Each unit's writer then reads only its range's file.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from tasks.ingest.components import near_losers_dir
from tasks.ingest.groups import LOSERS_SCHEMA, id_losers_file, losers_file
from tasks.ingest.work import Work, list_files, position, read_table, resumable, write_table

PRECEDENCE = ("duplicate_exact", "duplicate_id", "duplicate_near")


def verdicts_file(work: Work, r: int) -> str:
    return work.path("verdicts", f"r-{r:04d}.parquet")


@resumable("verdicts")
def gather(work: Work, r: int, near: bool) -> dict[str, Any]:
    # Memory: the losers of one range of units (duplicates only, not the range's documents).
    lo, hi = work.range_positions(r)
    sources = [losers_file(work, p) for p in range(work.partitions)] + [id_losers_file(work, p) for p in range(work.partitions)]
    if near:
        sources += list_files(near_losers_dir(work))
    table = read_table(sources, LOSERS_SCHEMA, filters=[("position", ">=", lo), ("position", "<", hi)])
    rank = np.array([PRECEDENCE.index(x) for x in table.column("reason").to_pylist()], dtype=np.int8)
    pos = table.column("position").to_numpy()
    order = np.lexsort((rank, pos))
    keep = order[np.r_[True, np.diff(pos[order]) != 0]] if len(order) else order
    write_table(verdicts_file(work, r), table.take(pa.array(keep)))
    return {"losers": int(len(keep))}


def unit_verdicts(work: Work, unit: int) -> dict[int, tuple[str, str]]:
    """{index in the unit: (reason, detail)} for this unit's candidates that lost (size: this
    unit's duplicates)."""
    lo, hi = position(unit, 0), position(unit + 1, 0)
    table = read_table(verdicts_file(work, work.range_of(unit)), filters=[("position", ">=", lo), ("position", "<", hi)])
    return {p - lo: (r, d) for p, r, d in zip(table.column("position").to_pylist(), table.column("reason").to_pylist(),
                                             table.column("detail").to_pylist())}
