"""The ingest stage's content address: what its output depends on (code version, config, and the
input files as they are now). Light on imports, so a cached rerun can check it without loading the
stage's code."""

from __future__ import annotations

from typing import Any

from tasks.artifacts import StageOutput, content_key
from tasks.ingest.config import IngestConfig
from tasks.ingest.readers import scan_source

STAGE = "ingest"
VERSION = 6  # 4: corpus-wide dedup by hash partitions and connected components; manifest in parts
# 5: a near-duplicate group keeps its first member that survived exact and id dedup
# 6: opt-outs and erasure tombstones; quarantine rows name their doc id and sha256; two-level key


def source_fingerprint(cfg: IngestConfig) -> dict[str, Any]:
    """What the input files are now (names, sizes, versions): part of the output's address.

    Files of unsupported types are listed under `<source>:ignored` so the stats can name them.
    """
    found: dict[str, Any] = {}
    for src in cfg.sources:
        found[src.name], found[f"{src.name}:ignored"] = scan_source(src)
    return found


def base_key(cfg: IngestConfig, files: dict[str, Any]) -> str:
    """The key of the ingest before erasures: config, input files, opt-out lists' content."""
    from tasks.governance.optout import load as load_opt_outs

    # Worker count and where groups are joined are not part of the address: neither changes the output.
    identity = cfg.model_dump(mode="json", exclude={"num_workers": True, "dedup": {"components_in_memory"},
                                                    "sources": {"__all__": {"kind", "description", "homepage"}}})
    inputs: dict[str, Any] = {"files": files, "opt_outs": load_opt_outs(cfg.opt_out.lists).digest}
    if cfg.dedup.near:  # near-duplicate verdicts depend on the MinHash library's algorithm
        from tasks.ingest.minhash import ALGORITHM

        inputs["minhash"] = ALGORITHM
    return content_key(STAGE, VERSION, identity, inputs)


def plan(cfg: IngestConfig, root: str) -> tuple[StageOutput, dict[str, Any]]:
    """The output's address has two levels: `base_key` (which grows with the input file list, so it
    is hashed first), then the digest of the erasure tombstones that apply to these sources. An
    erasure rebuild computes the new key from the record's address alone (`StageOutput.rekeyed`)."""
    from tasks.governance.register import applicable

    files = source_fingerprint(cfg)
    tombstones = applicable(root, [s.uri for s in cfg.sources]).digest
    return StageOutput.at(root, STAGE, VERSION, {"base": base_key(cfg, files)}, {"tombstones": tombstones}), files
