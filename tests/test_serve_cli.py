"""`werk serve` hands MLflow's server what a plain shell lacks: Werk's store and the venv's scripts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from flows.serve_cli import serve_command


def test_serve_command_names_werks_store_and_puts_the_venv_scripts_on_path(werk_home, monkeypatch):
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    argv, env = serve_command("models:/werk-demo@champion", "127.0.0.1", 5123, 2)
    scripts = str(Path(sys.executable).parent)
    assert env["PATH"].split(os.pathsep)[0] == scripts and env["PATH"].endswith("/usr/bin:/bin")
    assert env["MLFLOW_TRACKING_URI"] == env["MLFLOW_REGISTRY_URI"] == f"sqlite:///{werk_home / 'mlflow.db'}"
    assert argv[:5] == [sys.executable, "-m", "mlflow", "models", "serve"]
    assert argv[argv.index("-m", 3) + 1] == "models:/werk-demo@champion"
    assert argv[argv.index("-h") + 1] == "127.0.0.1" and argv[argv.index("-p") + 1] == "5123"
    assert argv[argv.index("--env-manager") + 1] == "local"


def test_serve_command_keeps_a_tracking_server_and_does_not_repeat_the_scripts(monkeypatch):
    scripts = str(Path(sys.executable).parent)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", "sqlite:////elsewhere.db")  # the registry follows the tracking URI
    monkeypatch.setenv("PATH", f"{scripts}:/bin")
    _, env = serve_command("models:/m/1", "127.0.0.1", 5001, 1)
    assert env["MLFLOW_TRACKING_URI"] == env["MLFLOW_REGISTRY_URI"] == "http://127.0.0.1:5000"
    assert env["PATH"] == f"{scripts}:/bin"


def test_serve_refuses_a_path_that_is_not_a_model_uri(werk_home):
    werk = Path(sys.executable).parent / "werk"
    for given in ("/tmp/some/folder", "x[/]"):  # (markup in the name is shown, not interpreted)
        done = subprocess.run([str(werk), "serve", "--model", given], capture_output=True, text=True, timeout=120)
        assert done.returncode == 2 and "models:/" in done.stderr and given in done.stderr
        assert "Traceback" not in done.stderr
