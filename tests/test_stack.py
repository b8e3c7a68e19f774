"""`werk stack up` brings up the team stack on 127.0.0.1; a deployed pipeline triggered with
`prefect deployment run` runs on its process worker against its Ray head, MLflow server and S3;
every artifact is in S3 behind MLflow; no socket listens beyond loopback; a canary secret from
the environment leaks nowhere; `werk stack down` leaves no process behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.user_shell import user_env

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
CANARY = "werk-canary-7f3a9c1e5b2d4680"


def _werk(*args: str, env: dict, timeout: float = 600) -> subprocess.CompletedProcess:
    werk = str(Path(sys.executable).parent / "werk")
    return subprocess.run([werk, *args], env=env, capture_output=True, text=True, timeout=timeout, cwd=REPO)


def _listening(pids: set[int]) -> list[tuple[int, str]]:
    import psutil

    found = []
    for conn in psutil.net_connections(kind="inet"):
        if conn.status == psutil.CONN_LISTEN and conn.pid in pids:
            found.append((conn.pid, conn.laddr.ip))
    return found


def _tree(pid: int) -> set[int]:
    import psutil

    try:
        root = psutil.Process(pid)
        return {pid, *(p.pid for p in root.children(recursive=True))}
    except psutil.NoSuchProcess:
        return set()


def test_stack_runs_a_deployed_pipeline_securely_and_stops_cleanly(tmp_path):
    import psutil

    home = tmp_path / "home"
    # From a user's fresh shell (empty HOME, no Werk/Prefect/MLflow/Ray variables), as the README
    # documents it: the stack finds its programs and writes nothing outside WERK_HOME.
    user_home = tmp_path / "user"
    env = user_env(user_home, home, WERK_TEST_CANARY=CANARY)
    up = _werk("stack", "up", "--json", env=env, timeout=600)
    assert up.returncode == 0, up.stderr[-4000:]
    state = json.loads(up.stdout)
    stack_env = {**env, **state["env"], "PREFECT_HOME": str(tmp_path / "client-prefect")}
    try:
        pids = set().union(*(_tree(s["pid"]) for s in state["services"].values()))
        assert set(state["services"]) == {"s3", "mlflow", "prefect", "ray", "worker"}

        prefect = str(Path(sys.executable).parent / "prefect")
        deploy = subprocess.run([prefect, "--no-prompt", "deploy", "--all"], cwd=REPO, env=stack_env,
                                capture_output=True, text=True, timeout=300)
        assert deploy.returncode == 0, deploy.stdout[-3000:] + deploy.stderr[-3000:]
        params = json.dumps({"recipe": "debug", "overrides": ["train.max_steps=10"]})
        # Twice: the second run finds every stage in Prefect's cache, whose records live in S3.
        for _ in range(2):
            run = subprocess.run([prefect, "deployment", "run", "werk-pipeline/werk-pipeline", "--params", params,
                                  "--watch", "--watch-timeout", "900"], cwd=REPO, env=stack_env, capture_output=True,
                                 text=True, timeout=1000)
            assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]

        # Every socket the stack (and the work it ran) listens on is on loopback.
        pids |= set().union(*(_tree(s["pid"]) for s in state["services"].values()))
        listening = _listening(pids)
        assert listening and all(ip in ("127.0.0.1", "::1", "::ffff:127.0.0.1") for _, ip in listening), listening

        # The run used the stack: MLflow server, artifacts in S3, stage outputs in S3.
        from mlflow import MlflowClient

        os.environ.update({k: stack_env[k] for k in ("AWS_ENDPOINT_URL", "AWS_SHARED_CREDENTIALS_FILE",
                                                     "AWS_DEFAULT_REGION")})
        client = MlflowClient(stack_env["MLFLOW_TRACKING_URI"])
        (experiment,) = [e for e in client.search_experiments() if e.name == "werk-debug"]
        runs = client.search_runs([experiment.experiment_id])
        parent = next(r for r in runs if r.data.tags.get("werk.flow") == "pipeline")
        assert parent.info.status == "FINISHED"
        assert parent.info.artifact_uri.startswith("mlflow-artifacts:")
        version = client.get_model_version_by_alias("werk-debug", "champion")

        import s3fs

        fs = s3fs.S3FileSystem(endpoint_url=stack_env["AWS_ENDPOINT_URL"])
        objects = fs.find("werk/")
        assert any("/mlflow/" in o and o.endswith("MLmodel") for o in objects)
        assert any(o.startswith("werk/store/evaluate/") and o.endswith("_SUCCESS.json") for o in objects)
        assert any(o.startswith("werk/store/ray/pretrain-") for o in objects)
        records = [o for o in objects if o.startswith("werk/store/") and "/_prefect/" in o]
        assert sorted(o.split("/")[2] for o in records) == ["encode", "evaluate", "ingest", "pretrain", "tokenizer"]
        assert version.source

        # The canary (and the S3 secret) appear in no log, MLflow param/tag/artifact, or Prefect result.
        secret = (home / "stack" / "aws-credentials").read_text().split("aws_secret_access_key = ")[1].strip()
        ray_token = (home / "stack" / "ray-auth-token").read_text().strip()
        for private in ("aws-credentials", "ray-auth-token"):
            assert oct((home / "stack" / private).stat().st_mode & 0o777) == "0o600"
        SECRETS = (("canary", CANARY), ("S3 secret", secret), ("Ray token", ray_token))
        leaks = []
        for log in (home / "stack" / "logs").glob("*.log"):
            text = log.read_text(errors="replace")
            leaks += [f"{log.name}: {name}" for name, value in SECRETS if value in text]
        leaks += [f"state.json: {n}" for n, v in SECRETS
                  if v in (home / "stack" / "state.json").read_text()]
        for r in runs:
            blob = json.dumps({"params": r.data.params, "tags": r.data.tags})
            leaks += [f"run {r.info.run_id} params/tags" for _, v in SECRETS if v in blob]
            for path in fs.find(f"werk/mlflow/{experiment.experiment_id}/{r.info.run_id}/"):
                if fs.size(path) < 5_000_000 and any(v.encode() in fs.cat(path) for _, v in SECRETS):
                    leaks.append(path)
        leaks += [path for path in records if any(v.encode() in fs.cat(path) for _, v in SECRETS)]
        results = subprocess.run(
            [sys.executable, "-c", "import asyncio, json\n"
             "from prefect.client.orchestration import get_client\n"
             "async def main():\n"
             "    async with get_client() as c:\n"
             "        runs = await c.read_flow_runs()\n"
             "        arts = await c.read_artifacts()\n"
             "        tasks = await c.read_task_runs()\n"
             "        blocks = await c.read_block_documents()\n"
             "        print(json.dumps({'runs': [r.model_dump(mode='json') for r in runs],\n"
             "                          'tasks': [t.model_dump(mode='json') for t in tasks],\n"
             "                          'blocks': [b.model_dump(mode='json') for b in blocks],\n"
             "                          'artifacts': [a.model_dump(mode='json') for a in arts]}))\n"
             "asyncio.run(main())"], env=stack_env, capture_output=True, text=True, timeout=120)
        assert results.returncode == 0, results.stderr[-2000:]
        api = json.loads(results.stdout)
        assert len(api["runs"]) == 2 and {r["state"]["type"] for r in api["runs"]} == {"COMPLETED"}
        second = max(api["runs"], key=lambda r: r["expected_start_time"])["id"]
        states = {t["name"].rsplit("-", 1)[0]: t["state"]["name"] for t in api["tasks"] if t["flow_run_id"] == second}
        assert {states[t] for t in ("ingest", "train-tokenizer", "encode", "pretrain", "evaluate")} == {"Cached"}, states
        leaks += [f"prefect API: {n}" for n, v in SECRETS if v in results.stdout]
        assert not leaks, leaks
    finally:
        down = _werk("stack", "down", env=env, timeout=300)
    assert down.returncode == 0, down.stderr[-3000:]
    assert not [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
    status = _werk("stack", "status", "--json", env=env, timeout=60)
    assert status.returncode == 0 and json.loads(status.stdout) == {}
    assert not list(user_home.iterdir()), sorted(str(p) for p in user_home.rglob("*"))


def test_stack_keeps_prefect_state_in_postgresql(tmp_path):
    """`werk stack up --prefect-db URL`: Prefect's server runs on PostgreSQL; the password comes
    from the environment through Prefect's own `${PREFECT_API_DATABASE_PASSWORD}` placeholder and
    appears in no log, state file or command line."""
    import asyncio
    import secrets

    import asyncpg
    import psutil

    from helpers.postgres import USER, postgres

    password = secrets.token_hex(16)
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "PREFECT_API", "AWS_", "RAY_ADDRESS"))}
    env.update({"WERK_HOME": str(home), "PREFECT_API_DATABASE_PASSWORD": password})
    with postgres(password) as port:
        url = f"postgresql+asyncpg://{USER}:${{PREFECT_API_DATABASE_PASSWORD}}@127.0.0.1:{port}/postgres"
        up = _werk("stack", "up", "--prefect-db", url, "--json", env=env, timeout=600)
        try:
            assert up.returncode == 0, up.stderr[-4000:]
            state = json.loads(up.stdout)
            pids = set().union(*(_tree(s["pid"]) for s in state["services"].values()))

            async def pools() -> set[str]:
                conn = await asyncpg.connect(host="127.0.0.1", port=port, user=USER, password=password, database="postgres")
                try:
                    return {r["name"] for r in await conn.fetch("select name from work_pool")}
                finally:
                    await conn.close()

            # The work pools `up` created through the Prefect API are rows in PostgreSQL.
            assert {"werk-cpu", "werk-gpu"} <= asyncio.run(pools())
            assert not (home / "stack" / "prefect" / "prefect.db").exists()
            texts = [p.read_text(errors="replace") for p in (home / "stack" / "logs").glob("*.log")]
            texts.append((home / "stack" / "state.json").read_text())
            texts += [" ".join(psutil.Process(p).cmdline()) for p in pids if psutil.pid_exists(p)]
            assert not [t[:200] for t in texts if password in t]
            # Only the Prefect server has the password in its environment; the worker, Ray, MLflow and S3 do not.
            holders = {name for name, s in state["services"].items()
                       if psutil.Process(s["pid"]).environ().get("PREFECT_API_DATABASE_PASSWORD") == password}
            assert holders == {"prefect"}, holders
        finally:
            down = _werk("stack", "down", env=env, timeout=300)
        assert down.returncode == 0, down.stderr[-3000:]
