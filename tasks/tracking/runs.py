"""The one place Werk opens MLflow runs: a parent run per pipeline run, a child run per stage.

Runs are addressed by id through `MlflowClient` rather than MLflow's thread-local "active run", so
stages may run in Prefect's worker threads and the Ray Train rank-0 worker can log into the
pretrain child run from another process.
"""

from __future__ import annotations

import json
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from tasks.tracking import setup

if TYPE_CHECKING:
    from mlflow import MlflowClient

# MLflow is imported where a run is opened, not at module level: `prefect deploy` imports the flow
# modules in the user's own shell, where importing MLflow would write under ~/.config and cost
# seconds for nothing.

PARAM_MAX = 6000  # MLflow's limit on a parameter value
# A pipeline run's tags that its stage runs carry too, so each stage run links back to the flow run.
INHERITED = ("werk.recipe", "werk.prefect_flow_run_id", "werk.prefect_flow_run_url")
DESCRIPTION = "mlflow.note.content"  # what the MLflow UI shows as a run's or experiment's description


def flatten(obj: Any, prefix: str = "") -> dict[str, str]:
    """`{"train": {"lr": 1e-3}}` -> `{"train.lr": "0.001"}`; lists become JSON."""
    out: dict[str, str] = {}
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.update(flatten(v, f"{prefix}{k}."))
    else:
        value = json.dumps(obj) if isinstance(obj, (list, tuple)) else str(obj)
        out[prefix.rstrip(".")] = value[:PARAM_MAX]
    return out


@dataclass
class Run:
    client: MlflowClient
    run_id: str
    experiment_id: str
    inherited: dict[str, str] = field(default_factory=dict)  # tags its child runs get (INHERITED)

    # One request per batch, not per value: against a tracking server each call is a round trip.
    # Batches stay within MLflow's limits (100 params or tags, 1000 metrics per request).
    def log_params(self, params: dict[str, Any]) -> None:
        from mlflow.entities import Param

        items = [Param(k, v) for k, v in flatten(params).items()]
        for i in range(0, len(items), 100):
            self.client.log_batch(self.run_id, params=items[i:i + 100], synchronous=True)

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        now = int(time.time() * 1000)
        from mlflow.entities import Metric

        items = [Metric(k, float(v), now, step or 0) for k, v in metrics.items()
                 if isinstance(v, (int, float)) and not isinstance(v, bool)]
        for i in range(0, len(items), 1000):
            self.client.log_batch(self.run_id, metrics=items[i:i + 1000], synchronous=True)

    def set_tags(self, tags: dict[str, Any]) -> None:
        from mlflow.entities import RunTag

        items = [RunTag(k, str(v)) for k, v in tags.items()]
        for i in range(0, len(items), 100):
            self.client.log_batch(self.run_id, tags=items[i:i + 100], synchronous=True)

    def log_dict(self, obj: Any, artifact_file: str) -> None:
        self.client.log_dict(self.run_id, obj, artifact_file)

    def log_text(self, text: str, artifact_file: str) -> None:
        self.client.log_text(self.run_id, text, artifact_file)

    def log_artifact(self, local_path: str | Path, artifact_path: str | None = None) -> None:
        self.client.log_artifact(self.run_id, str(local_path), artifact_path)

    def log_artifacts(self, local_dir: str | Path, artifact_path: str | None = None) -> None:
        self.client.log_artifacts(self.run_id, str(local_dir), artifact_path)

    def log_remote_file(self, uri: str, artifact_path: str | None = None) -> None:
        """Copy a stage output (local or S3) into the run's artifacts."""
        from infra import storage

        if not storage.is_remote(uri):
            self.log_artifact(uri, artifact_path)
            return
        with tempfile.TemporaryDirectory() as tmp:
            local = Path(tmp) / Path(uri).name
            fs, path = storage.filesystem(uri)
            fs.get_file(path, str(local))
            self.log_artifact(local, artifact_path)

    @contextmanager
    def child(self, name: str, tags: dict[str, Any] | None = None) -> Iterator[Run]:
        run = self.client.create_run(
            self.experiment_id,
            run_name=name,
            tags={**self.inherited, "mlflow.parentRunId": self.run_id, "werk.stage": name,
                  **{k: str(v) for k, v in (tags or {}).items()}},
        )
        child = Run(self.client, run.info.run_id, self.experiment_id, self.inherited)
        with _terminate_on_exit(child):
            yield child


@contextmanager
def _terminate_on_exit(run: Run) -> Iterator[None]:
    from mlflow.entities import RunStatus

    try:
        yield
    except BaseException:
        run.client.set_terminated(run.run_id, RunStatus.to_string(RunStatus.FAILED))
        raise
    run.client.set_terminated(run.run_id, RunStatus.to_string(RunStatus.FINISHED))


def ensure_experiment(client: MlflowClient, name: str) -> str:
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    location = setup.default_artifact_location()
    return client.create_experiment(name, artifact_location=f"{location}/{name}" if location else None)


@contextmanager
def pipeline_run(experiment: str, run_name: str, tags: dict[str, Any], description: str | None = None) -> Iterator[Run]:
    """The parent run of one pipeline run; FAILED if the pipeline raises. `description`: the
    experiment's, shown by the MLflow UI above its runs."""
    setup.configure()
    from mlflow import MlflowClient

    client = MlflowClient()
    exp_id = ensure_experiment(client, experiment)
    if description:
        client.set_experiment_tag(exp_id, DESCRIPTION, description)
    run = client.create_run(exp_id, run_name=run_name, tags={k: str(v) for k, v in tags.items()})
    parent = Run(client, run.info.run_id, exp_id, {k: str(tags[k]) for k in INHERITED if k in tags})
    with _terminate_on_exit(parent):
        yield parent


def open_run(run_id: str) -> Run:
    """A handle on an existing run (e.g. the parent, from inside a stage task)."""
    setup.configure()
    from mlflow import MlflowClient

    client = MlflowClient()
    run = client.get_run(run_id)
    return Run(client, run_id, run.info.experiment_id, {k: v for k, v in run.data.tags.items() if k in INHERITED})
