"""What every Werk flow does first: resolve the recipe and open its parent MLflow run."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

from prefect import runtime

from flows import links
from flows.events import RunStarted, emit
from flows.links import UiUrls
from flows.provenance import git_commit
from flows.recipe import Recipe, load_recipe
from infra.environment import prepare
from infra.storage import storage_root
from tasks.tracking.runs import Run, pipeline_run
from tasks.tracking.setup import tracking_uri


@dataclass(frozen=True)
class FlowRun:
    cfg: Recipe
    root: str
    parent: Run
    flow_run_id: str
    commit: str
    ui: UiUrls  # where the Prefect and MLflow UIs are, where known (`flows/links.py`)


@contextmanager
def flow_run(recipe: str, overrides: list[str], kind: str, run_prefix: str | None = None,
             stages: tuple[str, ...] = ()) -> Iterator[FlowRun]:
    """The resolved recipe, its storage root, and a parent MLflow run tagged with the Prefect flow
    run, the git commit and the recipe, holding the resolved recipe as an artifact. Whoever
    watches the run hears that it started and which `stages` it will run."""
    # The CLI and `werk worker` prepared this process already; a flow run started by a plain
    # `prefect worker` has not: its Ray and MLflow settings can still take effect here.
    prepare()
    cfg = load_recipe(recipe, overrides)
    emit(RunStarted(str(runtime.flow_run.name or ""), stages))
    root = storage_root(cfg.storage_root)
    flow_run_id = str(runtime.flow_run.id or "")
    commit = git_commit()
    tags = {
        "werk.recipe": cfg.name,
        "werk.flow": kind,
        "werk.prefect_flow_run_id": flow_run_id,
        "werk.git_commit": commit,
        "mlflow.source.git.commit": commit,
        "werk.storage_root": root,
    }
    ui = links.current(tracking_uri())
    if ui.prefect and flow_run_id:
        tags["werk.prefect_flow_run_url"] = links.prefect_flow_run(ui.prefect, flow_run_id)
    name = f"{run_prefix or cfg.name}-{flow_run_id[:8] or 'local'}"
    description = f"Werk runs of the recipe `{cfg.name}`" + (f": {cfg.description}" if cfg.description else ".")
    from tasks.tracking.compute import use_meter

    with pipeline_run(f"werk-{cfg.name}", name, tags, description) as parent, use_meter(cfg.compute.energy()):
        parent.log_dict(cfg.model_dump(mode="json"), "config/recipe.yaml")
        parent.log_dict({"overrides": list(overrides)}, "config/overrides.json")
        yield FlowRun(cfg, root, parent, flow_run_id, commit, ui)
