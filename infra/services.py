"""Launch and stop the real services Werk talks to, on 127.0.0.1 only.

Used by `werk ui` and by the tests: a Prefect server, an MLflow tracking server, a SeaweedFS S3
store. Each runs in its own session so stopping it (by its PID's process group) also stops the
workers it forked; SIGTERM first, SIGKILL if it has not exited in time.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


# Which install brings each program Werk starts: the runtime dependencies, or the `stack` extra.
INSTALLS = {"weed": "pip install 'werk[stack]'  (from a clone: make install-stack)"}
RUNTIME_INSTALL = "pip install werk  (from a clone: make install)"


class MissingExecutable(RuntimeError):
    """A program Werk starts is not installed; the message (one line) names the install command."""


def venv_bin(name: str) -> str:
    """An executable installed beside this Python (the project's virtual environment), else on PATH."""
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise MissingExecutable(f"`{name}` is not installed: {INSTALLS.get(name, RUNTIME_INSTALL)}")
    return found


# Secrets one service needs and no other: kept out of every service's environment but the one
# that asks for them (the Prefect server's database password, not its workers' or Ray's).
SERVICE_SECRETS = ("PREFECT_API_DATABASE_PASSWORD", "PREFECT_SERVER_DATABASE_PASSWORD")


@dataclass
class Service:
    name: str
    argv: list[str]
    health_url: str
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    any_http_status_is_healthy: bool = False
    stop_timeout: float = 20.0
    secrets: tuple[str, ...] = ()  # names in SERVICE_SECRETS this service inherits
    proc: subprocess.Popen | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def start(self, timeout: float = 120.0) -> Service:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            self.argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env={**{k: v for k, v in os.environ.items() if k not in SERVICE_SECRETS or k in self.secrets}, **self.env},
            start_new_session=True,
        )
        log.close()
        self.wait_healthy(timeout)
        return self

    def healthy(self) -> bool:
        if self.health_url.startswith("tcp://"):
            host, _, port = self.health_url.removeprefix("tcp://").partition(":")
            try:
                with socket.create_connection((host, int(port)), timeout=2):
                    return True
            except OSError:
                return False
        try:
            with urllib.request.urlopen(self.health_url, timeout=2) as resp:
                return resp.status < 500
        except urllib.error.HTTPError as exc:
            return self.any_http_status_is_healthy and exc.code < 500
        except (urllib.error.URLError, OSError):
            return False

    def wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; log: {self.log_path}\n{self.tail()}")
            if self.healthy():
                return
            time.sleep(0.25)
        self.stop()
        raise TimeoutError(f"{self.name} not healthy after {timeout:.0f}s; log: {self.log_path}\n{self.tail()}")

    def tail(self, n: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def stop(self, timeout: float | None = None) -> None:
        if not self.proc or self.proc.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, timeout or self.stop_timeout), (signal.SIGKILL, 10.0)):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                return
            try:
                self.proc.wait(wait)
                return
            except subprocess.TimeoutExpired:
                continue

    def __enter__(self) -> Service:
        return self.start() if self.proc is None else self

    def __exit__(self, *exc) -> None:
        self.stop()


def prefect_server(port: int, prefect_home: Path, log_dir: Path) -> Service:
    api = f"http://{LOOPBACK}:{port}/api"
    prefect_home.mkdir(parents=True, exist_ok=True)
    return Service(
        name="prefect-server",
        argv=[venv_bin("prefect"), "server", "start", "--host", LOOPBACK, "--port", str(port)],
        health_url=f"{api}/health",
        log_path=log_dir / "prefect-server.log",
        env={
            "PREFECT_HOME": str(prefect_home),
            # The UI calls the API on 4200 unless told where it is.
            "PREFECT_UI_API_URL": api,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        },
        secrets=SERVICE_SECRETS,  # a PostgreSQL URL may name its password as ${PREFECT_API_DATABASE_PASSWORD}
    )


def mlflow_server(
    port: int, backend_store_uri: str, log_dir: Path, artifacts_destination: str | None = None,
    env: dict[str, str] | None = None,
) -> Service:
    argv = [venv_bin("mlflow"), "server", "--host", LOOPBACK, "--port", str(port), "--workers", "1",
            "--backend-store-uri", backend_store_uri]
    if artifacts_destination:
        argv += ["--artifacts-destination", artifacts_destination]
    return Service(
        name="mlflow-server",
        argv=argv,
        health_url=f"http://{LOOPBACK}:{port}/health",
        log_path=log_dir / "mlflow-server.log",
        # Job execution spawns ~7 extra processes and ~1.5 GB that Werk does not use.
        env={"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", **(env or {})},
    )


def seaweedfs_s3(data_dir: Path, access_key: str, secret_key: str, log_dir: Path) -> tuple[Service, str]:
    """A single-process SeaweedFS with an S3 gateway; returns the service and its endpoint URL."""
    data_dir.mkdir(parents=True, exist_ok=True)
    config = data_dir / "s3.json"
    config.write_text(json.dumps({"identities": [{
        "name": "werk", "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
        "actions": ["Admin", "Read", "List", "Tagging", "Write"]}]}))
    config.chmod(0o600)
    master, volume, filer, s3_port = _seaweedfs_ports()
    argv = [
        venv_bin("weed"), "mini", f"-dir={data_dir}", f"-ip={LOOPBACK}", f"-ip.bind={LOOPBACK}",
        f"-master.port={master}", f"-volume.port={volume}",
        f"-filer.port={filer}", f"-s3.port={s3_port}", f"-s3.config={config}",
        "-webdav=false", "-admin.ui=false", "-s3.port.iceberg=0", "-s3.port.lance=0",
    ]
    endpoint = f"http://{LOOPBACK}:{s3_port}"
    return Service("seaweedfs", argv, endpoint + "/", log_dir / "seaweedfs.log",
                   any_http_status_is_healthy=True), endpoint


def _seaweedfs_ports() -> tuple[int, int, int, int]:
    """Free ports for SeaweedFS's master, volume, filer and S3 servers.

    SeaweedFS opens a gRPC twin at port + 10000 for each server and refuses any port that equals
    another's twin, so the four ports and their four twins must be eight distinct free ports.
    """
    taken: set[int] = set()
    chosen: list[int] = []
    for _ in range(400):
        port = free_port()
        twin = port + 10000
        if twin >= 65536 or {port, twin} & taken:
            continue
        with socket.socket() as s:
            try:
                s.bind((LOOPBACK, twin))
            except OSError:
                continue
        taken |= {port, twin}
        chosen.append(port)
        if len(chosen) == 4:
            return chosen[0], chosen[1], chosen[2], chosen[3]
    raise RuntimeError("no four free port pairs (port and port + 10000) for SeaweedFS")


def ray_head(temp_dir: Path, log_dir: Path, num_cpus: int = 2) -> tuple[Service, str]:
    """A single-node Ray head on loopback (`ray start --head --block`); returns it and its address."""
    port = free_port()
    while 10002 <= port <= 19999:  # Ray refuses a head port inside its worker-port range
        port = free_port()
    argv = [venv_bin("ray"), "start", "--head", "--block", f"--port={port}", f"--num-cpus={num_cpus}",
            f"--temp-dir={temp_dir}", "--include-dashboard=false", f"--node-ip-address={LOOPBACK}",
            "--disable-usage-stats"]
    # Without this, Ray replaces the loopback address with the machine's and binds every interface.
    env = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
    # gcs_server ignores SIGTERM for a long while: give it a few seconds, then SIGKILL the group.
    head = Service("ray-head", argv, f"tcp://{LOOPBACK}:{port}", log_dir / "ray-head.log", env=env, stop_timeout=5.0)
    return head, f"{LOOPBACK}:{port}"
