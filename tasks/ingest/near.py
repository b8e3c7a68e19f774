"""Near duplicates from candidate pairs: confirm each pair by signature similarity, then group.

A candidate pair (first, other) came from an LSH bucket. Confirming it needs both signatures,
which live with their units, so the pairs travel in two hops, each task holding one range of
units' signatures at a time:
1. `attach` (per range of `other`): adds the other's signature, routes the pair to first's range;
2. `confirm` (per range of `first`): compares with first's signature, keeps the pair when the
   estimated Jaccard similarity reaches the threshold, names first by its doc id.
Then `components.py` joins confirmed pairs into groups (connected components) whose survivor is
the first member in canonical order.
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
    for unit, rows in _by_unit(other):
        sigs[rows] = read_signatures(work, unit)[other[rows] & ((1 << UNIT_BITS) - 1)]
    target = np.array([work.range_of(int(u)) for u in first >> UNIT_BITS], dtype=np.int64)
    for t in np.unique(target):
        rows = np.flatnonzero(target == t)
        write_table(storage.join(_hop_dir(work, int(t)), f"from-{r:04d}.parquet"), pa.table({
            "first": first[rows], "other": other[rows],
            "signature": pa.FixedSizeListArray.from_arrays(sigs[rows].reshape(-1), num_perm)}))
    return {"pairs": int(len(other))}


@resumable("confirm")
def confirm(work: Work, r: int, cfg: DedupConfig) -> dict[str, Any]:
    hops = read_table(list_files(_hop_dir(work, r)), pa.schema([
        ("first", pa.int64()), ("other", pa.int64()), ("signature", pa.list_(pa.uint32(), cfg.num_perm))]))
    first, other = hops.column("first").to_numpy(), hops.column("other").to_numpy()
    other_sigs = hops.column("signature").combine_chunks().flatten().to_numpy().reshape(-1, cfg.num_perm) \
        if len(hops) else np.empty((0, cfg.num_perm), np.uint32)
    keep = np.zeros(len(first), dtype=bool)
    first_ids = np.empty(len(first), dtype=object)
    for unit, rows in _by_unit(first):
        index = first[rows] & ((1 << UNIT_BITS) - 1)
        keep[rows] = similarity(read_signatures(work, unit)[index], other_sigs[rows]) >= cfg.threshold
        ids = read_table(work.unit_file(unit, "candidates"), columns=["doc_id"]).column("doc_id")
        first_ids[rows] = ids.take(pa.array(index)).to_pylist()
    confirmed = pa.table({"first": first[keep], "other": other[keep], "first_id": pa.array(list(first_ids[keep]), pa.string())},
                         schema=CONFIRMED_SCHEMA)
    # Written even when empty: one file per range, which `spread` reads.
    write_table(storage.join(confirmed_dir(work), f"r-{r:04d}.parquet"), confirmed)
    return {"candidates": int(len(first)), "confirmed": int(keep.sum())}
