"""Where the Prefect and MLflow UIs are, so that each can link to the other.

A run learns the addresses when it starts:
- MLflow: the tracking server itself when `MLFLOW_TRACKING_URI` is http(s) (a team stack, a
  shared server); else the MLflow UI of a running `werk ui` for this WERK_HOME.
- Prefect: `PREFECT_UI_URL`, or the server behind `PREFECT_API_URL` (a team stack, a worker's
  server); else the Prefect UI of a running `werk ui`.
`werk ui` says where it serves in `WERK_HOME/ui.json` while it runs. Where neither is known (a
first run with nothing started), no link is written: a link to nothing helps nobody.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from infra.storage import werk_home


@dataclass(frozen=True)
class UiUrls:
    prefect: str | None = None
    mlflow: str | None = None


def ui_file(home: Path | None = None) -> Path:
    return (home or werk_home()) / "ui.json"


def publish(urls: UiUrls, pid: int, home: Path | None = None) -> None:
    """`werk ui` says where its UIs are (removed by `withdraw` when it stops)."""
    path = ui_file(home)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps({**asdict(urls), "pid": pid}))
    tmp.replace(path)


def withdraw(home: Path | None = None) -> None:
    ui_file(home).unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def published(home: Path | None = None) -> UiUrls:
    """The UIs of a running `werk ui` for this WERK_HOME (none if it is not running)."""
    try:
        found = json.loads(ui_file(home).read_text())
    except (OSError, ValueError):
        return UiUrls()
    if not _alive(int(found.get("pid", 0))):
        return UiUrls()
    return UiUrls(prefect=found.get("prefect"), mlflow=found.get("mlflow"))


def current(tracking_uri: str, home: Path | None = None) -> UiUrls:
    local = published(home)
    mlflow = tracking_uri.rstrip("/") if tracking_uri.startswith(("http://", "https://")) else local.mlflow
    prefect = os.environ.get("PREFECT_UI_URL") or None
    api = os.environ.get("PREFECT_API_URL", "")
    if not prefect and api.startswith(("http://", "https://")):
        prefect = api.rstrip("/").removesuffix("/api")
    return UiUrls(prefect=(prefect or local.prefect or None), mlflow=mlflow)


def mlflow_run(base: str, experiment_id: str, run_id: str) -> str:
    return f"{base.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"


def mlflow_experiment(base: str, experiment_id: str) -> str:
    return f"{base.rstrip('/')}/#/experiments/{experiment_id}"


def mlflow_model_version(base: str, name: str, version: str) -> str:
    return f"{base.rstrip('/')}/#/models/{name}/versions/{version}"


def mlflow_artifact(base: str, run_id: str, path: str) -> str:
    """A run's artifact file as the MLflow server serves it (what its UI shows images with)."""
    from urllib.parse import urlencode

    return f"{base.rstrip('/')}/get-artifact?{urlencode({'path': path, 'run_uuid': run_id})}"


def prefect_flow_run(base: str, flow_run_id: str) -> str:
    return f"{base.rstrip('/')}/runs/flow-run/{flow_run_id}"


def latest_pages(urls: UiUrls) -> dict[str, str]:
    """The pages of the latest pipeline run recorded in MLflow: its Prefect flow run, its MLflow
    run and the model version it registered (those whose UI address is known)."""
    from mlflow import MlflowClient

    from tasks.tracking.setup import configure

    configure()
    client = MlflowClient()
    experiments = [e.experiment_id for e in client.search_experiments()]
    if not experiments:
        return {}
    found = client.search_runs(experiments, "tags.`werk.flow` = 'pipeline'", order_by=["attributes.start_time DESC"],
                               max_results=1)
    if not found:
        return {}
    run = found[0]
    pages = {}
    flow_run_id = run.data.tags.get("werk.prefect_flow_run_id")
    if urls.prefect and flow_run_id:
        pages["Prefect flow run"] = prefect_flow_run(urls.prefect, flow_run_id)
    if urls.mlflow:
        pages["MLflow run"] = mlflow_run(urls.mlflow, run.info.experiment_id, run.info.run_id)
        registered = client.search_runs([run.info.experiment_id],
                                        f"tags.`mlflow.parentRunId` = '{run.info.run_id}' and tags.`werk.stage` = 'register'",
                                        max_results=1)
        tags = registered[0].data.tags if registered else {}
        if tags.get("werk.model_uri") and tags.get("werk.model_version"):
            name = tags["werk.model_uri"].removeprefix("models:/").split("@")[0].split("/")[0]
            pages["Registered model"] = mlflow_model_version(urls.mlflow, name, tags["werk.model_version"])
    return pages
