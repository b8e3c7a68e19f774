"""Near duplicates from candidate pairs: confirm each pair by signature similarity, then group.

A candidate pair (first, other) came from an LSH bucket. Confirming it needs both signatures,
which live with their units, so the pairs travel in two hops, each task holding one range of
units' signatures at a time:
1. `attach` (per range of `other`): adds the other's signature, doc id and whether it already
   lost to an exact copy or a reused id (`verdicts.prior`), routes the pair to first's range;
2. `confirm` (per range of `first`): compares with first's signature, keeps the pair when the
   estimated Jaccard similarity reaches the threshold, adds first's doc id and verdict.
Then `components.py` joins confirmed pairs into groups (connected components) whose survivor is
the first member in canonical order that has not already lost.
Memory: `attach`/`confirm` hold one range's pairs and one unit's signatures.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pyarrow as pa

from infra import storage
from tasks.ingest.config import DedupConfig
from tasks.ingest.components import CONFIRMED_SCHEMA, confirmed_dir
from tasks.ingest.groups import PAIRS_SCHEMA, pairs_file
from tasks.ingest.minhash import similarity
from tasks.ingest.verdicts import prior_losers
from tasks.ingest.work import UNIT_BITS, Work, list_files, read_table, resumable, write_table



def signatures_file(work: Work, unit: int) -> str:
    return work.unit_file(unit, "signatures", "npy")


def write_signatures(work: Work, unit: int, signatures: np.ndarray) -> None:
    with storage.open_write(signatures_file(work, unit)) as fh:
        np.save(fh, signatures, allow_pickle=False)


def read_signatures(work: Work, unit: int) -> np.ndarray:
    fs, path = storage.filesystem(signatures_file(work, unit))
    with fs.open(path, "rb") as fh:
        return np.load(io.BytesIO(fh.read()), allow_pickle=False)


def _hop_dir(work: Work, r: int) -> str:
    return work.path("hop", f"r-{r:04d}")


def _doc_ids(work: Work, unit: int, index: np.ndarray) -> list[str]:
    ids = read_table(work.unit_file(unit, "candidates"), columns=["doc_id"]).column("doc_id")
    return ids.take(pa.array(index)).to_pylist()


def _by_unit(positions: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """Row indices grouped by the unit of each position, units ascending."""
    units = positions >> UNIT_BITS
    order = np.argsort(units, kind="stable")
    cuts = np.flatnonzero(np.diff(units[order])) + 1
    return [(int(units[idx[0]]), idx) for idx in np.split(order, cuts) if len(idx)]


@resumable("attach")
def attach(work: Work, r: int, num_perm: int) -> dict[str, Any]:
    lo, hi = work.range_positions(r)
    pairs = read_table([pairs_file(work, p) for p in range(work.partitions)], PAIRS_SCHEMA,
                       filters=[("other", ">=", lo), ("other", "<", hi)])
    # A pair that shares several bands comes from several partitions: confirm it once.
    unique = np.unique(np.stack([pairs.column("first").to_numpy(), pairs.column("other").to_numpy()], axis=1), axis=0) \
        if len(pairs) else np.empty((0, 2), np.int64)
    first, other = unique[:, 0], unique[:, 1]
    sigs = np.empty((len(other), num_perm), dtype=np.uint32)
    other_ids = np.empty(len(other), dtype=object)
    for unit, rows in _by_unit(other):
        index = other[rows] & ((1 << UNIT_BITS) - 1)
        sigs[rows] = read_signatures(work, unit)[index]
        other_ids[rows] = _doc_ids(work, unit, index)
    other_out = np.isin(other, prior_losers(work, r))
    target = np.array([work.range_of(int(u)) for u in first >> UNIT_BITS], dtype=np.int64)
    for t in np.unique(target):
        rows = np.flatnonzero(target == t)
        write_table(storage.join(_hop_dir(work, int(t)), f"from-{r:04d}.parquet"), pa.table({
            "first": first[rows], "other": other[rows], "other_id": pa.array(list(other_ids[rows]), pa.string()),
            "other_out": other_out[rows],
            "signature": pa.FixedSizeListArray.from_arrays(sigs[rows].reshape(-1), num_perm)}, schema=_hop_schema(num_perm)))
    return {"pairs": int(len(other))}


def _hop_schema(num_perm: int) -> pa.Schema:
    return pa.schema([("first", pa.int64()), ("other", pa.int64()), ("other_id", pa.string()), ("other_out", pa.bool_()),
                      ("signature", pa.list_(pa.uint32(), num_perm))])


@resumable("confirm")
def confirm(work: Work, r: int, cfg: DedupConfig) -> dict[str, Any]:
    hops = read_table(list_files(_hop_dir(work, r)), _hop_schema(cfg.num_perm))
    first, other = hops.column("first").to_numpy(), hops.column("other").to_numpy()
    other_sigs = hops.column("signature").combine_chunks().flatten().to_numpy().reshape(-1, cfg.num_perm) \
        if len(hops) else np.empty((0, cfg.num_perm), np.uint32)
    keep = np.zeros(len(first), dtype=bool)
    first_ids = np.empty(len(first), dtype=object)
    for unit, rows in _by_unit(first):
        index = first[rows] & ((1 << UNIT_BITS) - 1)
        keep[rows] = similarity(read_signatures(work, unit)[index], other_sigs[rows]) >= cfg.threshold
        first_ids[rows] = _doc_ids(work, unit, index)
    first_out = np.isin(first, prior_losers(work, r))
    confirmed = pa.table({"first": first[keep], "other": other[keep], "first_id": pa.array(list(first_ids[keep]), pa.string()),
                          "other_id": hops.column("other_id").filter(pa.array(keep)), "first_out": first_out[keep],
                          "other_out": hops.column("other_out").filter(pa.array(keep))}, schema=CONFIRMED_SCHEMA)
    # Written even when empty: one file per range, which `spread` reads.
    write_table(storage.join(confirmed_dir(work), f"r-{r:04d}.parquet"), confirmed)
    return {"candidates": int(len(first)), "confirmed": int(keep.sum())}
