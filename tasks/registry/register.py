"""Log the trained model with its tokenizer to MLflow and register it with an alias."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import mlflow
from mlflow import MlflowClient
from mlflow.models import infer_signature

from infra import storage
from tasks.registry.pyfunc import DEFAULT_PARAMS

MODEL_CODE = Path(__file__).with_name("model_code.py")


def _requirements() -> list[str]:
    from importlib.metadata import version

    return [f"{pkg}=={version(pkg).split('+')[0]}" for pkg in ("torch", "tokenizers", "mlflow")]


def register_model(
    run_id: str, name: str, alias: str, weights_uri: str, model_config_uri: str, tokenizer_uri: str,
    tags: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Log the model into `run_id`, register a new version of `name` and point `alias` at it."""
    with tempfile.TemporaryDirectory() as tmp:
        artifacts = {}
        for key, uri in {"weights": weights_uri, "model_config": model_config_uri, "tokenizer": tokenizer_uri}.items():
            local = Path(tmp) / Path(uri).name
            fs, path = storage.filesystem(uri)
            fs.get_file(path, str(local))
            artifacts[key] = str(local)
        signature = infer_signature(["prompt"], ["generated text"], params=DEFAULT_PARAMS)
        with mlflow.start_run(run_id=run_id):
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=str(MODEL_CODE),
                artifacts=artifacts,
                signature=signature,
                pip_requirements=_requirements(),
                registered_model_name=name,
            )
    client = MlflowClient()
    version = str(info.registered_model_version)
    client.set_registered_model_alias(name, alias, version)
    for k, v in (tags or {}).items():
        client.set_model_version_tag(name, version, k, str(v))
    return {"model_uri": f"models:/{name}@{alias}", "name": name, "version": version, "logged_model_uri": info.model_uri}
