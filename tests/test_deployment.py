"""prefect.yaml deploys the pipeline to a real Prefect server; a process worker runs it on demand,
as a click in the Prefect UI would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from infra.services import Service, free_port, prefect_server, venv_bin

REPO = Path(__file__).resolve().parents[1]
POOL = "werk-process"


def test_deployment_entrypoint_and_parameters_match_the_flow():
    from prefect.flows import load_flow_from_entrypoint

    spec = yaml.safe_load((REPO / "prefect.yaml").read_text())
    (dep,) = spec["deployments"]
    flow = load_flow_from_entrypoint(str(REPO / dep["entrypoint"]))
    assert flow.name == "werk-pipeline"
    assert set(dep["parameters"]) == set(flow.parameters.properties)
    flow.validate_parameters(dep["parameters"])  # raises on a mismatch
    assert dep["work_pool"]["name"] == POOL


@pytest.mark.slow
def test_deployed_pipeline_runs_on_a_process_worker(tmp_path):
    logs = tmp_path / "logs"
    port = free_port()
    env = {**os.environ, "PREFECT_API_URL": f"http://127.0.0.1:{port}/api", "WERK_REPO": str(REPO),
           "WERK_HOME": str(tmp_path / "home"), "PREFECT_HOME": str(tmp_path / "client-prefect")}
    env.pop("MLFLOW_TRACKING_URI", None)
    prefect = venv_bin("prefect")

    def cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        done = subprocess.run([prefect, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
        assert done.returncode == 0, (args, done.stdout[-3000:], done.stderr[-3000:])
        return done

    with prefect_server(port, tmp_path / "server-prefect", logs):
        cli("work-pool", "create", POOL, "--type", "process")
        cli("--no-prompt", "deploy", "--all")
        worker = Service("prefect-worker", [prefect, "worker", "start", "--pool", POOL, "--limit", "1"],
                         f"http://127.0.0.1:{port}/api/health", logs / "worker.log", env=env)
        with worker:
            params = json.dumps({"recipe": "debug", "overrides": ["train.max_steps=10"]})
            cli("deployment", "run", "werk-pipeline/werk-pipeline", "--params", params, "--watch",
                "--watch-timeout", "600", timeout=700)
        runs = subprocess.run(
            [sys.executable, "-c", "import asyncio, json\n"
             "from prefect.client.orchestration import get_client\n"
             "async def main():\n"
             "    async with get_client() as c:\n"
             "        rs = await c.read_flow_runs()\n"
             "        print(json.dumps([[r.state.type.value, r.parameters] for r in rs]))\n"
             "asyncio.run(main())"],
            env=env, capture_output=True, text=True, timeout=120)
        assert runs.returncode == 0, runs.stderr
    (state, parameters), = json.loads(runs.stdout)
    assert state == "COMPLETED"
    assert parameters["overrides"] == ["train.max_steps=10"]
    # The worker's flow run used Werk's embedded MLflow and storage under its WERK_HOME.
    assert (tmp_path / "home" / "mlflow.db").exists()
    assert list((tmp_path / "home" / "store" / "evaluate").glob("*/_SUCCESS.json"))
