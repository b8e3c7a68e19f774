"""`werk ui` starts a real Prefect server and MLflow UI on loopback, and stops both on Ctrl-C."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from infra.services import free_port

pytestmark = pytest.mark.slow


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_werk_ui_serves_both_uis_and_stops_them(werk_home):
    prefect_port, mlflow_port = free_port(), free_port()
    werk = str(Path(sys.executable).parent / "werk")
    proc = subprocess.Popen([werk, "ui", "--prefect-port", str(prefect_port), "--mlflow-port", str(mlflow_port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and not any(l.startswith("MLflow UI:") for l in lines):
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line.strip())
        assert f"Prefect UI: http://127.0.0.1:{prefect_port}" in lines, (lines, proc.stderr.read() if proc.poll() is not None else "")
        assert f"MLflow UI:  http://127.0.0.1:{mlflow_port}" in lines
        with urllib.request.urlopen(f"http://127.0.0.1:{prefect_port}/api/health", timeout=5) as r:
            assert r.status == 200
        with urllib.request.urlopen(f"http://127.0.0.1:{mlflow_port}/health", timeout=5) as r:
            assert r.status == 200
        assert (werk_home / "prefect").is_dir() and (werk_home / "mlflow.db").exists()
        # While it serves, runs in this WERK_HOME find the UIs to link to.
        from flows.links import published

        assert published(werk_home).prefect == f"http://127.0.0.1:{prefect_port}"
        assert published(werk_home).mlflow == f"http://127.0.0.1:{mlflow_port}"
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(60)
    assert not (werk_home / "ui.json").exists()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (_port_open(prefect_port) or _port_open(mlflow_port)):
        time.sleep(0.2)
    assert not _port_open(prefect_port) and not _port_open(mlflow_port)
