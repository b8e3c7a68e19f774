"""Which MLflow Werk talks to: `MLFLOW_TRACKING_URI` if set, else a SQLite store in WERK_HOME."""

from __future__ import annotations

import os

from infra.storage import werk_home


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
    import mlflow

    uri = tracking_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return uri
