"""The same pipeline on real servers, switched by environment and recipe only: a Prefect server,
an MLflow tracking server with S3 artifacts, a Ray head, and a SeaweedFS S3 storage root. Every
service is started by this test on 127.0.0.1 and stopped by its PID."""

from __future__ import annotations

import json
import math
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from infra import storage
from infra.services import free_port, mlflow_server, prefect_server, ray_head, seaweedfs_s3

pytestmark = pytest.mark.slow
BUCKET = "werk-cluster"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cluster")
    logs = tmp / "logs"
    access, secret = "werk-" + secrets.token_hex(4), secrets.token_hex(16)
    s3, endpoint = seaweedfs_s3(tmp / "s3", access, secret, logs)
    aws = {"AWS_ACCESS_KEY_ID": access, "AWS_SECRET_ACCESS_KEY": secret, "AWS_ENDPOINT_URL": endpoint,
           "AWS_DEFAULT_REGION": "us-east-1"}
    started = []
    saved = dict(os.environ)
    try:
        started.append(s3.start())
        os.environ.update(aws)
        fs, _ = storage.filesystem(f"s3://{BUCKET}")
        fs.mkdir(BUCKET)
        mlflow_port, prefect_port = free_port(), free_port()
        started.append(mlflow_server(
            mlflow_port, f"sqlite:///{tmp / 'mlflow.db'}", logs, artifacts_destination=f"s3://{BUCKET}/mlartifacts",
            env={**aws, "MLFLOW_S3_ENDPOINT_URL": endpoint}).start(timeout=180))
        started.append(prefect_server(prefect_port, tmp / "prefect", logs).start(timeout=180))
        # The cluster's own environment carries the S3 keys, as an IAM role or a site config would.
        head, ray_address = ray_head(tmp / "ray", logs)
        head.env.update(aws)
        started.append(head.start(timeout=120))
        yield {
            **aws,
            "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{mlflow_port}",
            "PREFECT_API_URL": f"http://127.0.0.1:{prefect_port}/api",
            "RAY_ADDRESS": ray_address,
            "RAY_AUTH_MODE": "token",
            "WERK_HOME": str(tmp / "client-home"),
        }
    finally:
        os.environ.clear()
        os.environ.update(saved)
        for svc in reversed(started):
            svc.stop()
        assert all(svc.proc.poll() is not None for svc in started)


@pytest.fixture(scope="module")
def summary(cluster):
    werk = str(Path(sys.executable).parent / "werk")
    env = {**os.environ, **cluster}
    done = subprocess.run([werk, "run", "--recipe", "debug", "--set", f"storage_root=s3://{BUCKET}/store", "--json"],
                          env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-5000:]
    return json.loads(done.stdout)


def test_stage_outputs_and_checkpoints_are_in_s3(cluster, summary):
    os.environ.update(cluster)
    for stage, st in summary["stages"].items():
        assert st["uri"].startswith(f"s3://{BUCKET}/store/{stage}/"), stage
        assert storage.exists(st["uri"] + "/_SUCCESS.json")
    fs, _ = storage.filesystem(f"s3://{BUCKET}")
    checkpoints = fs.glob(f"{BUCKET}/store/ray/pretrain-*/step-*/checkpoint.ckpt")
    assert checkpoints, fs.find(f"{BUCKET}/store/ray")
    assert all(math.isfinite(v) for v in summary["metrics"].values())


def test_tracking_server_holds_runs_and_s3_artifacts(cluster, summary):
    from mlflow import MlflowClient

    assert summary["mlflow"]["tracking_uri"] == cluster["MLFLOW_TRACKING_URI"]
    client = MlflowClient(tracking_uri=cluster["MLFLOW_TRACKING_URI"])
    parent = client.get_run(summary["mlflow"]["parent_run_id"])
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["werk.prefect_flow_run_id"] == summary["prefect_flow_run_id"]
    pre = client.get_run(summary["mlflow"]["stage_run_ids"]["pretrain"])
    assert client.get_metric_history(pre.info.run_id, "train/loss")
    os.environ.update(cluster)
    fs, _ = storage.filesystem(f"s3://{BUCKET}")
    assert fs.glob(f"{BUCKET}/mlartifacts/**/recipe.yaml")  # artifacts landed in the bucket


def test_prefect_server_recorded_the_flow_run(cluster, summary):
    import httpx

    r = httpx.get(f"{cluster['PREFECT_API_URL']}/flow_runs/{summary['prefect_flow_run_id']}", timeout=10)
    assert r.status_code == 200
    assert r.json()["state"]["type"] == "COMPLETED"


def test_model_registered_on_the_server_generates(cluster, summary):
    werk = str(Path(sys.executable).parent / "werk")
    gen = subprocess.run([werk, "generate", "--model", summary["model_uri"], "--prompt", "Voorzitter, ",
                          "--max-new-tokens", "6"], env={**os.environ, **cluster}, capture_output=True, text=True, timeout=300)
    assert gen.returncode == 0, gen.stderr[-3000:]
    assert gen.stdout.startswith("Voorzitter,")
