"""Held-out tokens per source and per language, from the ingest manifest and the encode index."""

from __future__ import annotations

from pathlib import PurePosixPath

import numpy as np
import pyarrow.parquet as pq

from infra import storage
from tasks.encode.shard_format import open_shard


def held_out_groups(manifest_uri: str, index_uri: str, val_shards: list[str], eot: int) -> dict[str, np.ndarray]:
    """`source:<name>` and `language:<code>` -> the group's validation documents' tokens, in
    index order, each document ending with `<|endoftext|>` (the stream starts with one too)."""
    fs, path = storage.filesystem(manifest_uri)
    # The manifest's parts, validation rows only (size: the held-out documents).
    manifest = pq.read_table(path, filesystem=fs, columns=["doc_id", "source", "language"],
                             filters=[("split", "==", "val")]).to_pylist()
    fs, path = storage.filesystem(index_uri)
    index = pq.read_table(path, filesystem=fs, filters=[("split", "==", "val")]).to_pylist()
    about = {r["doc_id"]: r for r in manifest}
    shards = {PurePosixPath(u).name: np.asarray(open_shard(storage.local_copy(u))[1]) for u in val_shards}
    members: dict[str, list[np.ndarray]] = {}
    for row in index:
        doc = about.get(row["doc_id"])
        if doc is None:
            continue
        tokens = shards[row["shard"]][row["offset"] : row["offset"] + row["length"]]
        for key in (f"source:{doc['source']}", f"language:{doc['language'] or 'unknown'}"):
            members.setdefault(key, []).append(tokens)
    return {k: np.concatenate([np.array([eot], dtype=v[0].dtype), *v]) for k, v in sorted(members.items())}
