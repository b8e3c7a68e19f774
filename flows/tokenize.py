"""Tokenizer training and encoding on their own, as a Prefect flow (`werk tokenize`).

Runs ingest first when its output is not already there (content-addressed, so usually a lookup).
"""

from __future__ import annotations

from typing import Any

from prefect import flow, runtime

from flows import stages
from flows.provenance import git_commit
from flows.recipe import load_recipe
from infra.storage import werk_home
from tasks.tracking.runs import pipeline_run


@flow(name="werk-tokenize", validate_parameters=True)
def tokenize_flow(recipe: str = "demo", overrides: list[str] | None = None) -> dict[str, Any]:
    """Train (or load) the tokenizer and encode both splits into token shards.

    Args:
        recipe: Recipe name (`recipes/NAME.yaml`) or path to a recipe YAML file.
        overrides: Dotted overrides applied to the recipe, e.g. `tokenizer.vocab_size=16384`.
    """
    overrides = list(overrides or [])
    cfg = load_recipe(recipe, overrides)
    root = cfg.storage_root or str(werk_home() / "store")
    flow_run_id = str(runtime.flow_run.id or "")
    tags = {"werk.recipe": cfg.name, "werk.prefect_flow_run_id": flow_run_id, "werk.git_commit": git_commit(),
            "werk.flow": "tokenize", "werk.storage_root": root}
    with pipeline_run(f"werk-{cfg.name}", f"tokenize-{flow_run_id[:8] or 'local'}", tags) as parent:
        parent.log_params({"tokenizer": cfg.tokenizer.model_dump(mode="json"), "encode": cfg.encode.model_dump(mode="json")})
        parent.log_dict(cfg.model_dump(mode="json"), "config/recipe.yaml")
        ing = stages.ingest(cfg, root, parent.run_id)
        tok = stages.train_tokenizer(cfg, root, parent.run_id, ing)
        enc = stages.encode(cfg, root, parent.run_id, ing, tok)
        return {
            "tokenizer": tok["tokenizer"], "vocab_size": tok["summary"]["vocab_size"],
            "fertility": tok["summary"].get("fertility", {}),
            "shards": enc["uri"], "dtype": enc["summary"]["dtype"],
            "splits": {s: {k: v for k, v in d.items() if k != "shards"} for s, d in enc["summary"]["splits"].items()},
            "cached": {"ingest": ing["cached"], "tokenizer": tok["cached"], "encode": enc["cached"]},
            "mlflow": {"parent_run_id": parent.run_id},
        }
