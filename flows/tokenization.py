"""Tokenizer training and encoding on their own, as a Prefect flow (`werk tokenize`).

Runs ingest first when its output is not already there (content-addressed, so usually a lookup).
"""

from __future__ import annotations

from typing import Any

from prefect import flow

from flows import stages
from flows.caching import run_stage, stage_task_options
from flows.context import flow_run


@flow(name="werk-tokenize", validate_parameters=True)
def tokenize_flow(recipe: str = "demo", overrides: list[str] | None = None) -> dict[str, Any]:
    """Train (or load) the tokenizer and encode both splits into token shards.

    Args:
        recipe: Recipe name (`recipes/NAME.yaml`) or path to a recipe YAML file.
        overrides: Dotted overrides applied to the recipe, e.g. `tokenizer.vocab_size=16384`.
    """
    overrides = list(overrides or [])
    with flow_run(recipe, overrides, "tokenize", "tokenize", stages=("ingest", "tokenizer", "encode")) as run:
        cfg, root, parent = run.cfg, run.root, run.parent
        parent.log_params({"tokenizer": cfg.tokenizer.model_dump(mode="json"), "encode": cfg.encode.model_dump(mode="json")})
        cache = stage_task_options(root)
        ing = run_stage(stages.ingest, cache, cfg, root, parent.run_id)
        tok = run_stage(stages.train_tokenizer, cache, cfg, root, parent.run_id, ing)
        enc = run_stage(stages.encode, cache, cfg, root, parent.run_id, ing, tok)
        encoded = enc.record.summary
        return {
            "tokenizer": tok.tokenizer, "vocab_size": tok.record.summary.vocab_size,
            "fertility": tok.record.summary.model_dump()["fertility"],
            "shards": enc.uri, "dtype": encoded.dtype,
            "splits": {s: d.model_dump(exclude={"shards"}) for s, d in encoded.splits.items()},
            "cached": {"ingest": ing.cached, "tokenizer": tok.cached, "encode": enc.cached},
            "mlflow": {"parent_run_id": parent.run_id},
        }
