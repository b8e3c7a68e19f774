"""Near-duplicate groups: connected components of the confirmed pairs, each keeping its first
member (the smallest canonical position) that has not already lost to an exact copy or a reused
id; every other member that had not lost either is a near-duplicate loser, named after it. (A
near copy of a document dropped for its reused id is kept, as it would be had that document never
been there; a group joins through all its members, as LSH buckets do.)

While the confirmed pairs number at most `dedup.components_in_memory` (they are duplicates only,
~60 bytes each here), one task joins them with scipy. Beyond that, labels propagate through hash
partitions of the nodes, round by round, each task holding one partition's edges and labels:
- `spread` (per range file of pairs): every pair as two directed edges, routed by source node;
  every endpoint's first label, itself, routed by node;
- `settle` (per node partition and round): each node's label becomes the smallest it was offered;
- `propose` (per node partition and round): a node whose label changed offers it to its
  neighbours.
It stops when no label changes (after as many rounds as the longest path a label travels).
A label is a node's key (its position, with `OUT` set when it already lost, so that such nodes
come after every other) and carries its node's doc id.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tasks.ingest.groups import LOSERS_SCHEMA
from infra import storage
from tasks.ingest.work import Work, list_files, read_table, resumable, write_table

# `first_out`/`other_out`: the endpoint already lost to an exact copy or a reused id.
CONFIRMED_SCHEMA = pa.schema([("first", pa.int64()), ("other", pa.int64()), ("first_id", pa.string()),
                              ("other_id", pa.string()), ("first_out", pa.bool_()), ("other_out", pa.bool_())])
EDGES_SCHEMA = pa.schema([("source", pa.int64()), ("target", pa.int64())])
LABELS_SCHEMA = pa.schema([("node", pa.int64()), ("label", pa.int64()), ("label_id", pa.string())])
SETTLED_SCHEMA = pa.schema([*LABELS_SCHEMA, ("out", pa.bool_()), ("changed", pa.bool_())])
# Positions are unit << 32 | index with far fewer than 2^30 units, so bit 62 is free to mark a node
# that already lost: its key sorts after every node that did not.
OUT = np.int64(1 << 62)


def _key(positions: np.ndarray, out: np.ndarray) -> np.ndarray:
    return positions | np.where(out, OUT, np.int64(0))


def confirmed_dir(work: Work) -> str:
    return work.path("confirmed")


def near_losers_dir(work: Work) -> str:
    return work.path("near")


def _losers(nodes: np.ndarray, root_ids: pa.Array) -> pa.Table:
    return pa.table({"position": nodes, "reason": pa.array(["duplicate_near"] * len(nodes), pa.string()),
                     "detail": pc.binary_join_element_wise("near duplicate of ", root_ids, "")}, schema=LOSERS_SCHEMA)


@resumable("components")
def components(work: Work, index: int) -> dict[str, Any]:
    """All confirmed pairs in one task (scipy's connected components)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    pairs = read_table(list_files(confirmed_dir(work)), CONFIRMED_SCHEMA)
    first, other = pairs.column("first").to_numpy(), pairs.column("other").to_numpy()
    out = storage.join(near_losers_dir(work), "losers.parquet")
    if not len(first):
        write_table(out, LOSERS_SCHEMA.empty_table())
        return {"groups": 0, "losers": 0}
    nodes = np.unique(np.concatenate([first, other]))  # sorted: canonical order
    a, b = np.searchsorted(nodes, first), np.searchsorted(nodes, other)
    _, label = connected_components(coo_matrix((np.ones(len(a), np.int8), (a, b)), shape=(len(nodes),) * 2),
                                    directed=False)
    # Each node's doc id and whether it already lost, from any pair that holds it.
    ends = np.concatenate([a, b])
    _, at = np.unique(ends, return_index=True)  # nodes in order
    ids = pa.concat_arrays([pairs.column("first_id").combine_chunks(), pairs.column("other_id").combine_chunks()]).take(pa.array(at))
    lost = np.concatenate([pairs.column("first_out").to_numpy(zero_copy_only=False),
                           pairs.column("other_out").to_numpy(zero_copy_only=False)])[at]
    # A component's survivor: its smallest key (its first member that has not lost). scipy's
    # labels are 0..components-1, so the heads, by label, index straight by label.
    order = np.lexsort((_key(nodes, lost), label))
    heads = order[np.r_[True, label[order][1:] != label[order][:-1]]]
    root = heads[label]
    losers = np.flatnonzero(~lost & (root != np.arange(len(nodes))))
    write_table(out, _losers(nodes[losers], ids.take(pa.array(root[losers]))))
    return {"groups": int((~lost[heads]).sum()), "losers": int(len(losers))}


def _partition(nodes: np.ndarray, partitions: int) -> np.ndarray:
    """A node's partition: its position mixed (consecutive positions spread evenly)."""
    with np.errstate(over="ignore"):
        mixed = nodes.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    return ((mixed >> np.uint64(32)) % np.uint64(partitions)).astype(np.int64)


def _route(table: pa.Table, key: str, partitions: int, path) -> None:
    """Write `table`'s rows to `path(p)` by the partition of column `key` (non-empty parts only)."""
    part = _partition(table.column(key).to_numpy(), partitions)
    order = np.argsort(part, kind="stable")
    bounds = np.searchsorted(part[order], np.arange(partitions + 1))
    for p in range(partitions):
        if bounds[p] < bounds[p + 1]:
            write_table(path(p), table.take(pa.array(order[bounds[p]:bounds[p + 1]])))


def _round_dir(work: Work, t: int) -> str:
    return work.path("cc", f"round-{t:04d}")


def _proposals(work: Work, t: int, p: int) -> str:
    return storage.join(_round_dir(work, t), "proposals", f"p-{p:04d}")


def _labels(work: Work, t: int, p: int) -> str:
    return storage.join(_round_dir(work, t), "labels", f"p-{p:04d}.parquet")


@resumable("spread")
def spread(work: Work, r: int) -> dict[str, Any]:
    pairs = read_table(storage.join(confirmed_dir(work), f"r-{r:04d}.parquet"), CONFIRMED_SCHEMA)
    first, other = pairs.column("first"), pairs.column("other")
    edges = pa.table({"source": pa.concat_arrays([first.combine_chunks(), other.combine_chunks()]),
                      "target": pa.concat_arrays([other.combine_chunks(), first.combine_chunks()])}, schema=EDGES_SCHEMA)
    _route(edges, "source", work.partitions, lambda p: work.path("cc", "edges", f"p-{p:04d}", f"from-{r:04d}.parquet"))
    # Every endpoint offers itself: its key and doc id.
    nodes = pa.concat_arrays([first.combine_chunks(), other.combine_chunks()])
    lost = np.concatenate([pairs.column("first_out").to_numpy(zero_copy_only=False),
                           pairs.column("other_out").to_numpy(zero_copy_only=False)])
    offers = pa.table({"node": nodes, "label": _key(nodes.to_numpy(), lost),
                       "label_id": pa.concat_arrays([pairs.column("first_id").combine_chunks(),
                                                     pairs.column("other_id").combine_chunks()])}, schema=LABELS_SCHEMA)
    _route(offers, "node", work.partitions, lambda p: storage.join(_proposals(work, 0, p), f"from-{r:04d}.parquet"))
    return {"edges": 2 * len(pairs)}


def _settle(work: Work, t: int, p: int) -> dict[str, Any]:
    offers = read_table(list_files(_proposals(work, t, p)), LABELS_SCHEMA)
    before = read_table(_labels(work, t - 1, p), SETTLED_SCHEMA).sort_by("node") if t else SETTLED_SCHEMA.empty_table()
    both = pa.concat_tables([before.select(LABELS_SCHEMA.names), offers])
    # Per node the smallest label (ties carry the same doc id).
    both = both.sort_by([("node", "ascending"), ("label", "ascending")])
    node = both.column("node").to_numpy()
    keep = np.flatnonzero(np.r_[True, node[1:] != node[:-1]]) if len(node) else np.empty(0, np.int64)
    settled = both.take(pa.array(keep))
    label = settled.column("label").to_numpy()
    if t:
        # Offers reach only nodes of the first round, so the nodes are the same as before.
        if len(settled) != len(before):
            raise AssertionError(f"label round {t} of partition {p} met nodes the first round did not have")
        out = before.column("out").to_numpy(zero_copy_only=False)
        changed = label < before.column("label").to_numpy()
    else:
        # The first round's offers are each node's own key only.
        out = (label & OUT) != 0
        changed = np.ones(len(settled), dtype=bool)
    write_table(_labels(work, t, p), settled.append_column("out", pa.array(out)).append_column("changed", pa.array(changed)))
    return {"changed": int(changed.sum())}


def _propose(work: Work, t: int, p: int) -> dict[str, Any]:
    labels = read_table(_labels(work, t, p), SETTLED_SCHEMA, filters=[("changed", "==", True)])
    edges = read_table(list_files(work.path("cc", "edges", f"p-{p:04d}")), EDGES_SCHEMA)
    moved = labels.join(edges, keys="node", right_keys="source", join_type="inner")
    offers = pa.table({"node": moved.column("target"), "label": moved.column("label"),
                       "label_id": moved.column("label_id")}, schema=LABELS_SCHEMA)
    _route(offers, "node", work.partitions, lambda q: storage.join(_proposals(work, t + 1, q), f"from-{p:04d}.parquet"))
    return {"offers": len(offers)}


# One marker per (round, partition): index = round * partitions + partition.
@resumable("settle")
def settle(work: Work, index: int) -> dict[str, Any]:
    return _settle(work, *divmod(index, work.partitions))


@resumable("propose")
def propose(work: Work, index: int) -> dict[str, Any]:
    return _propose(work, *divmod(index, work.partitions))


@resumable("name")
def name(work: Work, index: int) -> dict[str, Any]:
    """The losers of one node partition after the last round (index = round * partitions + p)."""
    t, p = divmod(index, work.partitions)
    labels = read_table(_labels(work, t, p), SETTLED_SCHEMA)
    node, label = labels.column("node").to_numpy(), labels.column("label").to_numpy()
    out = labels.column("out").to_numpy(zero_copy_only=False)
    # A node that has not lost holds the smallest key of its group: its own (the survivor) or a
    # survivor's before it, never one marked OUT.
    lose = np.flatnonzero(~out & (label != node))
    root_ids = labels.column("label_id").take(pa.array(lose))
    write_table(storage.join(near_losers_dir(work), f"p-{p:04d}.parquet"), _losers(node[lose], root_ids).sort_by("position"))
    return {"losers": int(len(lose)), "groups": int((~out & (label == node)).sum())}


def partitioned_components(work: Work, mapper) -> dict[str, Any]:
    """The rounds, driven from here; the driver holds per-task counts only."""
    mapper(spread, [(work, r) for r in range(work.ranges)])
    t = 0
    changed = sum(r["changed"] for r in mapper(settle, [(work, p) for p in range(work.partitions)]))
    while changed:
        mapper(propose, [(work, t * work.partitions + p) for p in range(work.partitions)])
        t += 1
        changed = sum(r["changed"] for r in mapper(settle, [(work, t * work.partitions + p) for p in range(work.partitions)]))
    named = mapper(name, [(work, t * work.partitions + p) for p in range(work.partitions)])
    return {"groups": sum(r["groups"] for r in named), "losers": sum(r["losers"] for r in named), "rounds": t + 1}
