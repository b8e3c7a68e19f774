"""The ingest stage on its own, as a Prefect flow (`werk ingest`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow

from flows import stages
from flows.caching import run_stage, stage_task_options
from flows.context import flow_run


def source_overrides(paths: list[str]) -> list[str]:
    """`--source PATH_OR_URI` as a recipe override replacing the recipe's sources."""
    items = []
    for i, p in enumerate(paths):
        stem = Path(p.rstrip("/").split("://")[-1]).name.split(".")[0].lower() or f"source{i}"
        name = "".join(c if c.isalnum() or c in "_.-" else "-" for c in stem).strip("-") or f"source{i}"
        items.append(f"{{name: '{name}-{i}', uri: '{p}', license: unspecified}}")
    return [f"ingest.sources=[{', '.join(items)}]"] if items else []


@flow(name="werk-ingest", validate_parameters=True)
def ingest_flow(recipe: str = "demo", overrides: list[str] | None = None) -> dict[str, Any]:
    """Ingest the recipe's sources: clean, filter, deduplicate, redact, split; returns the stats.

    Args:
        recipe: Recipe name (`recipes/NAME.yaml`) or path to a recipe YAML file.
        overrides: Dotted overrides applied to the recipe, e.g. `ingest.dedup.near=true`.
    """
    overrides = list(overrides or [])
    with flow_run(recipe, overrides, "ingest", "ingest", stages=("ingest",)) as run:
        cfg, root, parent = run.cfg, run.root, run.parent
        parent.log_params({"ingest": cfg.ingest.model_dump(mode="json")})
        result = run_stage(stages.ingest, stage_task_options(root), cfg, root, parent.run_id)
        record = result.record
        return {
            **record.stats.model_dump(include={"docs_in", "kept", "rejected", "redactions", "bytes_in", "bytes_out",
                                               "by_source", "files_ignored"}),
            "cached": result.cached, "key": result.key,
            "outputs": {**record.outputs.model_dump(), "documents": record.shards.model_dump()},
            "mlflow": {"parent_run_id": parent.run_id, "ingest_run_id": result.run_id},
        }
