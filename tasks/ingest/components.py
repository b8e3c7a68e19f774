"""Near-duplicate groups: connected components of the confirmed pairs, each keeping its first
member (the smallest canonical position); every other member is a loser, named after it.

While the confirmed pairs number at most `dedup.components_in_memory` (they are duplicates only,
~60 bytes each here), one task joins them with scipy. Beyond that, labels propagate through hash
partitions of the nodes, round by round, each task holding one partition's edges and labels:
- `spread` (per range file of pairs): every pair as two directed edges, routed by source node;
  every endpoint's first label, itself, routed by node;
- `settle` (per node partition and round): each node's label becomes the smallest it was offered;
- `propose` (per node partition and round): a node whose label changed offers it to its
  neighbours.
It stops when no label changes (after as many rounds as the longest path a label travels).
A label carries its node's doc id: a component's first member is `first` of some confirmed pair
(no member precedes it to pair it as `other`), and that pair names it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tasks.ingest.groups import LOSERS_SCHEMA
from infra import storage
from tasks.ingest.work import Work, list_files, read_table, resumable, write_table

CONFIRMED_SCHEMA = pa.schema([("first", pa.int64()), ("other", pa.int64()), ("first_id", pa.string())])
EDGES_SCHEMA = pa.schema([("source", pa.int64()), ("target", pa.int64())])
LABELS_SCHEMA = pa.schema([("node", pa.int64()), ("label", pa.int64()), ("label_id", pa.string())])
SETTLED_SCHEMA = pa.schema([*LABELS_SCHEMA, ("changed", pa.bool_())])


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
    # Nodes are sorted, so a component's first node is its first member in canonical order.
    _, root_of_label = np.unique(label, return_index=True)
    root = root_of_label[label]
    losers = np.flatnonzero(root != np.arange(len(nodes)))
    firsts, at = np.unique(first, return_index=True)
    root_ids = pairs.column("first_id").take(pa.array(at[np.searchsorted(firsts, nodes[root[losers]])]))
    write_table(out, _losers(nodes[losers], root_ids))
    return {"groups": int(len(root_of_label)), "losers": int(len(losers))}


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
    # Every endpoint offers itself; only `first` endpoints know their doc id (the only ones that
    # can end up as a component's label).
    offers = pa.table({"node": pa.concat_arrays([first.combine_chunks(), other.combine_chunks()]),
                       "label": pa.concat_arrays([first.combine_chunks(), other.combine_chunks()]),
                       "label_id": pa.concat_arrays([pairs.column("first_id").combine_chunks(),
                                                     pa.nulls(len(pairs), pa.string())])}, schema=LABELS_SCHEMA)
    _route(offers, "node", work.partitions, lambda p: storage.join(_proposals(work, 0, p), f"from-{r:04d}.parquet"))
    return {"edges": 2 * len(pairs)}


def _settle(work: Work, t: int, p: int) -> dict[str, Any]:
    offers = read_table(list_files(_proposals(work, t, p)), LABELS_SCHEMA)
    before = read_table(_labels(work, t - 1, p), SETTLED_SCHEMA).drop(["changed"]) if t else LABELS_SCHEMA.empty_table()
    both = pa.concat_tables([before, offers])
    # Per node the smallest label; among equal labels one that carries the doc id.
    both = both.sort_by([("node", "ascending"), ("label", "ascending"), ("label_id", "descending")])
    node = both.column("node").to_numpy()
    keep = np.flatnonzero(np.r_[True, node[1:] != node[:-1]]) if len(node) else np.empty(0, np.int64)
    settled = both.take(pa.array(keep))
    if t:
        old = before.sort_by("node")
        new_nodes = settled.column("node").to_numpy()
        was = np.full(len(new_nodes), np.iinfo(np.int64).max)
        at = np.searchsorted(new_nodes, old.column("node").to_numpy())
        was[at] = old.column("label").to_numpy()
        changed = settled.column("label").to_numpy() < was
    else:
        changed = np.ones(len(settled), dtype=bool)
    write_table(_labels(work, t, p), settled.append_column("changed", pa.array(changed)))
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
    lose = np.flatnonzero(label != node)
    root_ids = labels.column("label_id").take(pa.array(lose))
    if root_ids.null_count:  # a component's first member is always `first` of a pair: named
        raise AssertionError(f"near-duplicate group without a named first member in partition {p}")
    write_table(storage.join(near_losers_dir(work), f"p-{p:04d}.parquet"), _losers(node[lose], root_ids).sort_by("position"))
    # Every node is in a group of two or more; the one labelled with itself is its group's first.
    return {"losers": int(len(lose)), "groups": int((label == node).sum())}


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
