"""Which MLflow Werk talks to: `MLFLOW_TRACKING_URI` if set, else a SQLite store in WERK_HOME."""

from __future__ import annotations

import os
import threading

from infra.storage import werk_home

# Held while `warm_up` prepares the store, so that a run's first `configure` waits for it rather
# than creating the same tables beside it.
_warming = threading.RLock()


def tracking_uri() -> str:
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    home = werk_home()
    home.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{home / 'mlflow.db'}"


def default_artifact_location() -> str | None:
    """A local store (the embedded SQLite default) keeps artifacts in WERK_HOME; a tracking server
    chooses its own. Judged by the URI, not by whether MLFLOW_TRACKING_URI is set: MLflow's
    `set_tracking_uri` sets that variable itself, and a local store would then put artifacts in
    `./mlruns` of whatever directory Werk runs in."""
    if tracking_uri().startswith(("http://", "https://", "databricks")):
        return None
    return (werk_home() / "mlartifacts").as_uri()


def configure() -> str:
    """Point this process's MLflow client at Werk's tracking store; returns the URI."""
    with _warming:
        import mlflow

        uri = tracking_uri()
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)
        return uri


def warm_up() -> None:
    """Import MLflow and open the tracking store once (a new SQLite store creates its tables:
    seconds on a first run), so that the run's first use does not wait for either."""
    with _warming:
        configure()
        from mlflow import MlflowClient

        MlflowClient().search_experiments(max_results=1)
