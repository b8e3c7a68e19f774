"""The local team stack behind `werk stack up|down|status`: the real services a team shares,
started together on 127.0.0.1 and stopped together.

`up` starts, in order: SeaweedFS (S3, with credentials), an MLflow tracking server (SQLite
backend, artifacts in `s3://<bucket>/mlflow`, job execution off), a Prefect server (SQLite, or
PostgreSQL given a URL), a Ray head, and a Prefect process worker on the `werk-cpu` pool (the `werk-gpu` pool is created
with a concurrency limit of 1 for workers on GPU machines) whose
runs use all of them. PIDs, ports and log paths go to `WERK_HOME/stack/state.json`; `down` stops
exactly those processes (each with its whole process group, checked against its start time so a
recycled PID is never touched) and nothing else.

S3 credentials are taken from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY when set, else generated;
they are written only to a 0600 AWS shared-credentials file that clients find through
AWS_SHARED_CREDENTIALS_FILE (the standard credential chain), never to the state file or a log.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra import services
from infra.services import LOOPBACK, Service, free_port, venv_bin
from infra.storage import write_private_file

POOL = "werk-cpu"  # the stack's worker serves the CPU pool
GPU_POOL = "werk-gpu"  # created with a concurrency limit of 1; its workers run on GPU machines


@dataclass(frozen=True)
class StackConfig:
    home: Path
    bucket: str = "werk"
    prefect_database_url: str | None = None  # PostgreSQL, e.g. postgresql+asyncpg://…; default SQLite
    ray_cpus: int = 2
    repo: Path = Path(__file__).resolve().parents[1]

    @property
    def dir(self) -> Path:
        return self.home / "stack"

    @property
    def state_file(self) -> Path:
        return self.dir / "state.json"

    @property
    def credentials_file(self) -> Path:
        return self.dir / "aws-credentials"

    @property
    def ray_token_file(self) -> Path:
        return self.dir / "ray-auth-token"


def _credentials(cfg: StackConfig) -> tuple[str, str]:
    key, secret = os.environ.get("AWS_ACCESS_KEY_ID"), os.environ.get("AWS_SECRET_ACCESS_KEY")
    if not (key and secret):
        key, secret = "werk-" + secrets.token_hex(6), secrets.token_urlsafe(32)
    write_private_file(cfg.credentials_file, f"[default]\naws_access_key_id = {key}\naws_secret_access_key = {secret}\n")
    return key, secret


def _create_bucket(endpoint: str, bucket: str, key: str, secret: str) -> None:
    import boto3
    from botocore.exceptions import ClientError

    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=key,
                      aws_secret_access_key=secret)
    deadline = time.monotonic() + 60
    while True:
        try:
            s3.create_bucket(Bucket=bucket)
            return
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                return
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _record(svc: Service, url: str) -> dict[str, Any]:
    import psutil

    return {"pid": svc.pid, "started": psutil.Process(svc.pid).create_time(), "log": str(svc.log_path), "url": url}


# Every program `up` starts. All are looked up before anything starts, so a missing one is a
# one-line error naming its install command, not a half-started stack.
PROGRAMS = ("weed", "mlflow", "prefect", "ray", "werk")


def up(cfg: StackConfig) -> dict[str, Any]:
    for program in PROGRAMS:
        venv_bin(program)
    if cfg.state_file.exists() and any(_alive(s) for s in read_state(cfg)["services"].values()):
        raise RuntimeError(f"a stack is already up (see {cfg.state_file}); `werk stack down` first")
    logs = cfg.dir / "logs"
    key, secret = _credentials(cfg)
    started: list[tuple[str, Service, str]] = []
    state: dict[str, Any] = {"services": {}, "env": {}}
    try:
        s3, endpoint = services.seaweedfs_s3(cfg.dir / "s3", key, secret, logs)
        started.append(("s3", s3.start(timeout=120), endpoint))
        s3_env = {"AWS_ENDPOINT_URL": endpoint, "AWS_SHARED_CREDENTIALS_FILE": str(cfg.credentials_file),
                  "AWS_DEFAULT_REGION": "us-east-1"}
        _create_bucket(endpoint, cfg.bucket, key, secret)

        mlflow_port = free_port()
        mlflow = services.mlflow_server(mlflow_port, f"sqlite:///{cfg.dir / 'mlflow.db'}", logs,
                                        artifacts_destination=f"s3://{cfg.bucket}/mlflow", env=s3_env)
        started.append(("mlflow", mlflow.start(timeout=180), f"http://{LOOPBACK}:{mlflow_port}"))

        prefect_port = free_port()
        prefect = services.prefect_server(prefect_port, cfg.dir / "prefect", logs)
        if cfg.prefect_database_url:
            prefect.env["PREFECT_API_DATABASE_CONNECTION_URL"] = cfg.prefect_database_url
        api = f"http://{LOOPBACK}:{prefect_port}/api"
        started.append(("prefect", prefect.start(timeout=180), api))

        # Ray's socket paths must stay under 108 bytes: its session lives in a short temporary folder.
        ray_dir = tempfile.mkdtemp(prefix="werk-ray-")
        state["ray_temp_dir"] = ray_dir
        # Ray token authentication, with this stack's own token (clients read it from the file).
        write_private_file(cfg.ray_token_file, secrets.token_hex(16))
        ray_auth = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(cfg.ray_token_file)}
        ray, ray_address = services.ray_head(Path(ray_dir), logs, num_cpus=cfg.ray_cpus)
        # Ray's workers read and write the storage root: the cluster's own environment carries the
        # S3 endpoint and the credential file, as an instance role or a site config would.
        ray.env.update({**ray_auth, **s3_env})
        started.append(("ray", ray.start(timeout=120), ray_address))

        # The stack's Ray head is a loopback-only single node: its clients must run Ray in the same mode.
        env = {**s3_env, "PREFECT_API_URL": api, "MLFLOW_TRACKING_URI": f"http://{LOOPBACK}:{mlflow_port}",
               "RAY_ADDRESS": ray_address, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", **ray_auth, "WERK_STORAGE_ROOT": f"s3://{cfg.bucket}/store",
               "WERK_REPO": str(cfg.repo), "WERK_HOME": str(cfg.home)}
        client = {**os.environ, **env, "PREFECT_HOME": str(cfg.dir / "prefect-client")}
        for pool in (POOL, GPU_POOL):
            subprocess.run([venv_bin("prefect"), "work-pool", "create", pool, "--type", "process", "--overwrite"],
                           env=client, check=True, capture_output=True, timeout=120)
        subprocess.run([venv_bin("prefect"), "work-pool", "set-concurrency-limit", GPU_POOL, "1"],
                       env=client, check=True, capture_output=True, timeout=120)
        # `werk worker`: a Prefect worker in the environment Werk prepares, which its flow runs inherit.
        worker = Service("prefect-worker", [venv_bin("werk"), "worker", "--pool", POOL],
                         health_url=f"{api}/health", log_path=logs / "prefect-worker.log",
                         env={**env, "PREFECT_HOME": str(cfg.dir / "prefect-client")})
        started.append(("worker", worker.start(timeout=60), POOL))
        state["env"] = env
    except BaseException:
        for _, svc, _ in reversed(started):
            svc.stop()
        raise
    state["services"] = {name: _record(svc, url) for name, svc, url in started}
    cfg.state_file.write_text(json.dumps(state, indent=2))
    return state


def read_state(cfg: StackConfig) -> dict[str, Any]:
    if not cfg.state_file.exists():
        return {"services": {}, "env": {}}
    return json.loads(cfg.state_file.read_text())


def _alive(record: dict[str, Any]) -> bool:
    import psutil

    try:
        return abs(psutil.Process(record["pid"]).create_time() - record["started"]) < 1.0
    except psutil.NoSuchProcess:
        return False


def _process_group(pgid: int) -> list:
    import psutil

    members = []
    for proc in psutil.process_iter():
        try:
            if os.getpgid(proc.pid) == pgid:
                members.append(proc)
        except (ProcessLookupError, psutil.NoSuchProcess):
            continue
    return members


def status(cfg: StackConfig) -> dict[str, dict[str, Any]]:
    return {name: {**rec, "alive": _alive(rec)} for name, rec in read_state(cfg)["services"].items()}


def down(cfg: StackConfig, timeout: float = 30.0) -> list[str]:
    """Stop what `up` started, newest first; returns the names it stopped."""
    import psutil

    stopped = []
    for name, rec in reversed(list(read_state(cfg)["services"].items())):
        if not _alive(rec):
            continue
        group = _process_group(rec["pid"])
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(rec["pid"], sig)
            except ProcessLookupError:
                break
            _, alive = psutil.wait_procs(group, timeout=timeout if sig == signal.SIGTERM else 10)
            if not alive:
                break
        stopped.append(name)
    temp = read_state(cfg).get("ray_temp_dir")
    if temp:
        shutil.rmtree(temp, ignore_errors=True)
    cfg.state_file.unlink(missing_ok=True)
    return stopped
