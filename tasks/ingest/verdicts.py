"""The corpus-wide verdicts of one range of units, gathered from every partition's losers.

A document may lose in several groups (an exact copy with a new id also reuses an old id); its
reason is the first that applies in the order exact, id, near, and its detail names that group's
survivor. With near dedup on, the exact and id verdicts of each range are gathered first
(`prior`): near-duplicate groups need them to leave those documents out of the survivors.
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


def prior_file(work: Work, r: int) -> str:
    return work.path("prior", f"r-{r:04d}.parquet")


def _decide(sources: list[str], lo: int, hi: int) -> pa.Table:
    """One verdict per losing position in [lo, hi), by precedence, sorted by position.
    Memory: the losers of one range of units (duplicates only, not the range's documents)."""
    table = read_table(sources, LOSERS_SCHEMA, filters=[("position", ">=", lo), ("position", "<", hi)])
    rank = np.array([PRECEDENCE.index(x) for x in table.column("reason").to_pylist()], dtype=np.int8)
    pos = table.column("position").to_numpy()
    order = np.lexsort((rank, pos))
    keep = order[np.r_[True, np.diff(pos[order]) != 0]] if len(order) else order
    return table.take(pa.array(keep))


def _exact_and_id_sources(work: Work) -> list[str]:
    return [losers_file(work, p) for p in range(work.partitions)] + [id_losers_file(work, p) for p in range(work.partitions)]


@resumable("prior")
def prior(work: Work, r: int) -> dict[str, Any]:
    """The exact and id verdicts of one range, before near-duplicate groups are formed."""
    table = _decide(_exact_and_id_sources(work), *work.range_positions(r))
    write_table(prior_file(work, r), table)
    return {"losers": len(table)}


def prior_losers(work: Work, r: int) -> np.ndarray:
    """Sorted positions of range `r`'s documents that lost to an exact copy or a reused id."""
    return read_table(prior_file(work, r), columns=["position"]).column("position").to_numpy()


@resumable("verdicts")
def gather(work: Work, r: int, near: bool) -> dict[str, Any]:
    sources = [prior_file(work, r), *list_files(near_losers_dir(work))] if near else _exact_and_id_sources(work)
    table = _decide(sources, *work.range_positions(r))
    write_table(verdicts_file(work, r), table)
    return {"losers": len(table)}


def unit_verdicts(work: Work, unit: int) -> dict[int, tuple[str, str]]:
    """{index in the unit: (reason, detail)} for this unit's candidates that lost (size: this
    unit's duplicates)."""
    lo, hi = position(unit, 0), position(unit + 1, 0)
    table = read_table(verdicts_file(work, work.range_of(unit)), filters=[("position", ">=", lo), ("position", "<", hi)])
    return {p - lo: (r, d) for p, r, d in zip(table.column("position").to_pylist(), table.column("reason").to_pylist(),
                                             table.column("detail").to_pylist())}
