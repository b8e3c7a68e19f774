"""`werk serve`: MLflow's own model server on a registered version, in Werk's environment.

`mlflow models serve` alone fails from a plain shell in two ways: it looks for the model in
`./mlruns` unless MLFLOW_TRACKING_URI names Werk's store, and its scoring server starts by running
`uvicorn` from PATH, which holds the virtual environment's scripts only when it is activated. This
command sets both and then becomes `mlflow models serve` (exec), so signals, logs and exit codes
are MLflow's.
"""

from __future__ import annotations

import ipaddress
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from flows.cli_common import console, fail


def serve_command(model: str, host: str, port: int, workers: int) -> tuple[list[str], dict[str, str]]:
    """The argv and environment that serve `model`; pure, so a test can read them."""
    from tasks.tracking.setup import tracking_uri

    scripts = str(Path(sys.executable).parent)
    path = os.environ.get("PATH", "")
    uri = tracking_uri()
    # The registry too, as `configure` sets it: a MLFLOW_REGISTRY_URI of the shell would otherwise
    # resolve models:/ elsewhere than `werk export` and `werk evaluate` do.
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "MLFLOW_REGISTRY_URI": uri,
           "PATH": path if scripts in path.split(os.pathsep) else os.pathsep.join([scripts, path] if path else [scripts])}
    argv = [sys.executable, "-m", "mlflow", "models", "serve", "-m", model, "--env-manager", "local",
            "-h", host, "-p", str(port), "-w", str(workers)]
    return argv, env


def serve(
    model: Annotated[str, typer.Option(help="MLflow model URI, e.g. models:/werk-demo@champion.")],
    host: Annotated[str, typer.Option(help="Address to bind; loopback unless you mean to expose it.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 5001,
    workers: Annotated[int, typer.Option(help="Server processes (each loads the model).")] = 1,
) -> None:
    """Serve a registered model over HTTP with `mlflow models serve`: POST /invocations with
    {"inputs": [prompt, ...], "params": {"max_new_tokens": 64, ...}} answers {"predictions": [text, ...]}."""
    if not model.startswith(("models:/", "runs:/")):
        fail(f"--model {model!r}: a registered model (models:/NAME@ALIAS) or a runs:/ URI")
    try:
        address = ipaddress.ip_address(host)
        loopback, shown = address.is_loopback, f"[{host}]" if address.version == 6 else host
    except ValueError:
        loopback, shown = host == "localhost", host
    if not loopback:
        console.print(f"[yellow]serving on {escape(host)}: reachable from other machines, with no authentication[/]")
    argv, env = serve_command(model, host, port, workers)
    console.print(f"serving {escape(model)} on {escape(f'http://{shown}:{port}/invocations')} (Ctrl-C stops)")
    os.execve(argv[0], argv, env)
