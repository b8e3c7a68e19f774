"""The ingest stage's content address: what its output depends on (code version, config, and the
input files as they are now). Light on imports, so a cached rerun can check it without loading the
stage's code."""

from __future__ import annotations

from typing import Any

from tasks.artifacts import StageOutput
from tasks.ingest.config import IngestConfig
from tasks.ingest.readers import scan_source

STAGE = "ingest"
VERSION = 5  # 4: corpus-wide dedup by hash partitions and connected components; manifest in parts
# 5: a near-duplicate group keeps its first member that survived exact and id dedup


def source_fingerprint(cfg: IngestConfig) -> dict[str, Any]:
    """What the input files are now (names, sizes, versions): part of the output's address.

    Files of unsupported types are listed under `<source>:ignored` so the stats can name them.
    """
    found: dict[str, Any] = {}
    for src in cfg.sources:
        found[src.name], found[f"{src.name}:ignored"] = scan_source(src)
    return found


def plan(cfg: IngestConfig, root: str) -> tuple[StageOutput, dict[str, Any]]:
    files = source_fingerprint(cfg)
    # Worker count and where groups are joined are not part of the address: neither changes the output.
    identity = cfg.model_dump(mode="json", exclude={"num_workers": True, "dedup": {"components_in_memory"}})
    inputs: dict[str, Any] = {"files": files}
    if cfg.dedup.near:  # near-duplicate verdicts depend on the MinHash library's algorithm
        from tasks.ingest.minhash import ALGORITHM

        inputs["minhash"] = ALGORITHM
    return StageOutput.at(root, STAGE, VERSION, identity, inputs), files
