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
POOL = "werk-cpu"


def test_every_deployment_matches_its_flow_and_the_pools():
    from prefect.flows import load_flow_from_entrypoint

    spec = yaml.safe_load((REPO / "prefect.yaml").read_text())
    deployments = {d["name"]: d for d in spec["deployments"]}
    assert set(deployments) == {"werk-pipeline", "nightly", "gpu", "ingest", "tokenize", "pretrain", "evaluate"}
    for dep in deployments.values():
        flow = load_flow_from_entrypoint(str(REPO / dep["entrypoint"]))
        assert set(dep["parameters"]) <= set(flow.parameters.properties), dep["name"]
        flow.validate_parameters(dep["parameters"])  # raises on a mismatch
        assert dep["work_pool"]["name"] in (POOL, "werk-gpu")
        if dep["work_pool"]["name"] == "werk-gpu":
            assert dep["concurrency_limit"] == 1, dep["name"]
    assert deployments["werk-pipeline"]["work_pool"]["name"] == POOL
    (nightly,) = deployments["nightly"]["schedules"]
    assert nightly["cron"] == "0 2 * * *" and nightly["active"] is False  # off until a team enables it
    assert deployments["pretrain"]["parameters"]["until"] == "pretrain"


def test_no_module_beside_an_entrypoint_shadows_the_standard_library():
    """Loading an entrypoint puts its folder first on sys.path (in a worker's flow run, and in this
    test process once the test above has run). A `flows/tokenize.py` then stood in for Python's
    `tokenize`, and every process spawned later (DDP ranks, multiprocessing) failed at start-up."""
    spec = yaml.safe_load((REPO / "prefect.yaml").read_text())
    folders = {(REPO / d["entrypoint"].split(":")[0]).parent for d in spec["deployments"]}
    shadowing = sorted(str(p.relative_to(REPO)) for folder in folders for p in folder.glob("*.py")
                       if p.stem in sys.stdlib_module_names)
    assert folders and not shadowing


def test_the_pipeline_form_is_typed_with_defaults_and_descriptions():
    from flows.pipeline import pipeline

    schema = pipeline.parameters.model_dump()
    settings = schema["definitions"]["RunSettings"]["properties"]
    assert {"max_steps", "num_workers", "use_gpu", "seed", "storage_root"} <= set(settings)
    assert all(field.get("description") for field in settings.values())
    assert schema["properties"]["until"]["default"] == "register"
    with pytest.raises(Exception, match="max_steps"):
        pipeline.validate_parameters({"recipe": "debug", "settings": {"max_steps": 0}})


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
        cli("work-pool", "create", "werk-gpu", "--type", "process")
        cli("--no-prompt", "deploy", "--all")
        worker = Service("prefect-worker", [prefect, "worker", "start", "--pool", POOL, "--limit", "1"],
                         f"http://127.0.0.1:{port}/api/health", logs / "worker.log", env=env)
        with worker:
            params = json.dumps({"recipe": "debug", "overrides": [], "settings": {"max_steps": 10}})
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
    assert parameters["settings"] == {"max_steps": 10}
    # The worker's flow run used Werk's embedded MLflow and storage under its WERK_HOME.
    assert (tmp_path / "home" / "mlflow.db").exists()
    assert list((tmp_path / "home" / "store" / "evaluate").glob("*/_SUCCESS.json"))
    # The typed setting reached the recipe: pretraining ran 10 steps.
    (record,) = (tmp_path / "home" / "store" / "pretrain").glob("*/_SUCCESS.json")
    assert json.loads(record.read_text())["summary"]["global_step"] == 10
