"""The same pipeline on real servers, switched by environment and recipe only: a Prefect server,
an MLflow tracking server with S3 artifacts, a Ray cluster of two nodes, and a SeaweedFS S3
storage root. Every service is started by this test on 127.0.0.1 and stopped by its PID.

The two Ray nodes share nothing on disk: each has its own temporary folder and its own WERK_HOME
(its scratch: the node's shard cache), and every stage output is on S3. Two training workers of
one CPU each, on nodes of one CPU each, train on different nodes. The outputs equal a single-node
run's."""

from __future__ import annotations

import json
import math
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import psutil
import pytest

from infra import storage
from infra.services import free_port, mlflow_server, prefect_server, seaweedfs_s3

pytestmark = pytest.mark.slow
BUCKET = "werk-cluster"
CORPUS = Path(__file__).parent / "assets" / "corpus"
SOURCES = (f"ingest.sources=[{{name: shakespeare, uri: 's3://{BUCKET}/raw/shakespeare/*.txt', license: pd, language: en}}, "
           f"{{name: parlspeech, uri: 's3://{BUCKET}/raw/parlspeech', license: CC0-1.0, id_field: id}}]")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cluster")
    logs = tmp / "logs"
    access, secret = "werk-" + secrets.token_hex(4), secrets.token_hex(16)
    s3, endpoint = seaweedfs_s3(tmp / "s3", access, secret, logs)
    aws = {"AWS_ACCESS_KEY_ID": access, "AWS_SECRET_ACCESS_KEY": secret, "AWS_ENDPOINT_URL": endpoint,
           "AWS_DEFAULT_REGION": "us-east-1"}
    started = []
    ray_cluster = None
    saved = dict(os.environ)
    try:
        started.append(s3.start())
        os.environ.update(aws)
        fs, _ = storage.filesystem(f"s3://{BUCKET}")
        fs.mkdir(BUCKET)
        # The sources too are on S3: no node reads another's disk.
        for path in CORPUS.rglob("*"):
            if path.is_file():
                storage.upload_file(path, f"s3://{BUCKET}/raw/{path.relative_to(CORPUS).as_posix()}")
        mlflow_port, prefect_port = free_port(), free_port()
        started.append(mlflow_server(
            mlflow_port, f"sqlite:///{tmp / 'mlflow.db'}", logs, artifacts_destination=f"s3://{BUCKET}/mlartifacts",
            env={**aws, "MLFLOW_S3_ENDPOINT_URL": endpoint}).start(timeout=180))
        started.append(prefect_server(prefect_port, tmp / "prefect", logs).start(timeout=180))
        ray_cluster, ray_pids, ray_tmp = _two_nodes(tmp, aws)
        yield {
            **aws,
            "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{mlflow_port}",
            "PREFECT_API_URL": f"http://127.0.0.1:{prefect_port}/api",
            "RAY_ADDRESS": ray_cluster.address,
            "RAY_AUTH_MODE": "token",
            "RAY_AUTH_TOKEN_PATH": os.environ["RAY_AUTH_TOKEN_PATH"],
            "WERK_HOME": str(tmp / "client-home"),
        }
    finally:
        if ray_cluster is not None:
            ray_cluster.shutdown()
            assert not [p for p in ray_pids if psutil.pid_exists(p) and psutil.Process(p).status() != "zombie"]
            shutil.rmtree(ray_tmp, ignore_errors=True)
        os.environ.clear()
        os.environ.update(saved)
        for svc in reversed(started):
            svc.stop()
        assert all(svc.proc.poll() is not None for svc in started)


def _two_nodes(tmp: Path, aws: dict[str, str]):
    """A Ray head and a second node on loopback, one CPU each; the nodes' own environment carries
    the S3 keys, as an IAM role or a site config would, and a WERK_HOME of their own."""
    from ray.cluster_utils import Cluster

    token = tmp / "ray-token"
    token.write_text(secrets.token_hex(32))
    os.environ.update({"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token)})
    # This process loaded Ray's configuration and token at import (test collection): make it read
    # them again, as `ray.init` does for a new local cluster.
    from ray._raylet import AuthenticationTokenLoader, Config

    Config.initialize("")
    AuthenticationTokenLoader.instance().reset_cache()
    # Ray's socket paths must stay under 108 bytes: short temporary folders, one per node.
    short = Path(tempfile.mkdtemp(prefix="werk-", dir="/tmp"))
    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 1, "node_ip_address": "127.0.0.1", "temp_dir": str(short / "head"), "include_dashboard": False,
        "env_vars": {**aws, "WERK_HOME": str(tmp / "nodes" / "head")}})
    cluster.add_node(num_cpus=1, node_ip_address="127.0.0.1", temp_dir=str(short / "second"),
                     env_vars={**aws, "WERK_HOME": str(tmp / "nodes" / "second")})
    nodes = [cluster.head_node, *cluster.worker_nodes]
    pids = [p.process.pid for node in nodes for procs in node.all_processes.values() for p in procs]
    return cluster, pids, short


@pytest.fixture(scope="module")
def summary(cluster):
    werk = str(Path(sys.executable).parent / "werk")
    env = {**os.environ, **cluster}
    done = subprocess.run([werk, "run", "--recipe", "debug", "--set", f"storage_root=s3://{BUCKET}/store", "--set", SOURCES,
                           "--json"], env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-5000:]
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def single_node(cluster, summary, tmp_path_factory):
    """The same recipe on one machine's own Ray, to a local storage root."""
    tmp = tmp_path_factory.mktemp("single")
    werk = str(Path(sys.executable).parent / "werk")
    env = {**os.environ, **cluster, "WERK_HOME": str(tmp / "home")}
    for key in ("RAY_ADDRESS", "RAY_AUTH_TOKEN_PATH"):
        env.pop(key)
    done = subprocess.run([werk, "run", "--recipe", "debug", "--set", f"storage_root={tmp / 'store'}", "--set", SOURCES,
                           "--json"], env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-5000:]
    return json.loads(done.stdout)


def test_training_ran_on_both_nodes_each_reading_shards_through_its_own_cache(cluster, summary):
    nodes = Path(cluster["WERK_HOME"]).parent / "nodes"
    for node in ("head", "second"):
        cached = list((nodes / node / "cache" / "shards" / "files").glob("*/*.bin"))
        assert cached, f"no shard in the {node} node's cache"
    assert not (Path(cluster["WERK_HOME"]) / "cache" / "shards").exists()  # the driver trains nothing


def test_two_nodes_produce_what_one_node_produces(cluster, summary, single_node):
    fs, _ = storage.filesystem(f"s3://{BUCKET}")
    for stage in ("ingest", "tokenizer", "encode"):
        remote, local = summary["stages"][stage], single_node["stages"][stage]
        assert remote["key"] == local["key"], stage
        ours = {p.removeprefix(remote["uri"].removeprefix("s3://")): fs.cat_file(p) for p in fs.find(remote["uri"])}
        theirs = {"/" + str(p.relative_to(local["uri"])): p.read_bytes() for p in Path(local["uri"]).rglob("*") if p.is_file()}
        # The completion marker and Prefect's cached task results name their run: not outputs.
        ours, theirs = ({k: v for k, v in d.items() if k != "/_SUCCESS.json" and not k.startswith("/_prefect/")}
                        for d in (ours, theirs))
        assert ours.keys() == theirs.keys(), stage
        assert all(ours[k] == theirs[k] for k in ours), [k for k in ours if ours[k] != theirs[k]]
    for metric in ("train_loss", "val_loss", "eval_loss"):
        assert summary["metrics"][metric] == pytest.approx(single_node["metrics"][metric], rel=1e-4), metric


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
