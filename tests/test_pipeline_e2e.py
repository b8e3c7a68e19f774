"""The whole pipeline on the `debug` recipe, on the real stack: a real Prefect API (test harness),
a local Ray with 2 training workers, MLflow on SQLite. Slow (about two minutes)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

STAGES = ("ingest", "tokenizer", "encode", "pretrain", "evaluate")


@pytest.fixture(scope="module")
def prefect_api():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    home = tmp_path_factory.mktemp("werk-e2e")
    saved = {k: os.environ.get(k) for k in ("WERK_HOME", "MLFLOW_TRACKING_URI")}
    os.environ["WERK_HOME"] = str(home)
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    yield home
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="module")
def first_run(prefect_api, home):
    from flows.pipeline import pipeline

    return pipeline(recipe="debug")


def test_every_stage_produced_its_artifacts(first_run):
    s = first_run
    assert set(s["stages"]) == set(STAGES)
    assert not any(st["cached"] for st in s["stages"].values())
    for stage, st in s["stages"].items():
        assert Path(st["uri"], "_SUCCESS.json").is_file(), stage
    for name, uri in s["artifacts"].items():
        assert Path(uri).exists(), name
    assert list(Path(s["artifacts"]["shards"]).glob("train-*.bin"))
    report = json.loads(Path(s["artifacts"]["eval_report_json"]).read_text())
    assert report["samples"] and "bits per byte" in Path(s["artifacts"]["eval_report"]).read_text()


def test_metrics_are_finite_and_counts_reconcile(first_run):
    for name, value in first_run["metrics"].items():
        assert value is not None and math.isfinite(value), name
    ing = first_run["ingest"]
    assert ing["docs_in"] == ing["kept"] + sum(ing["rejected"].values())
    assert ing["kept"] > 0


def test_mlflow_records_parent_and_stage_runs(first_run):
    from mlflow import MlflowClient

    from tasks.tracking.setup import configure

    assert first_run["mlflow"]["tracking_uri"].startswith("sqlite:///")
    configure()
    client = MlflowClient()
    parent = client.get_run(first_run["mlflow"]["parent_run_id"])
    tags = parent.data.tags
    assert tags["werk.recipe"] == "debug"
    assert tags["werk.prefect_flow_run_id"] == first_run["prefect_flow_run_id"] != ""
    assert tags["werk.git_commit"]
    assert parent.info.status == "FINISHED"
    assert parent.data.params["train.max_steps"] == "20"
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id, "config")}
    assert "config/recipe.yaml" in artifacts
    children = client.search_runs(
        [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
    )
    assert {c.data.tags["werk.stage"] for c in children} >= {*STAGES, "register"}
    pre = next(c for c in children if c.data.tags["werk.stage"] == "pretrain")
    losses = client.get_metric_history(pre.info.run_id, "train/loss")
    assert len(losses) >= 2 and all(math.isfinite(m.value) for m in losses)
    for metric in ("perf/tokens_per_sec", "perf/step_time_s", "train/grad_norm", "train/lr",
                   "system/cpu_utilization_percentage", "system/system_memory_usage_megabytes"):
        assert client.get_metric_history(pre.info.run_id, metric), metric
    assert client.get_metric_history(pre.info.run_id, "val/loss")
    ingest_run = next(c for c in children if c.data.tags["werk.stage"] == "ingest")
    assert {a.path for a in client.list_artifacts(ingest_run.info.run_id, "manifest")} >= {
        "manifest/manifest.parquet", "manifest/stats.json", "manifest/_SUCCESS.json"}


def test_prefect_flow_run_completed(first_run):
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        run = client.read_flow_run(first_run["prefect_flow_run_id"])
    assert run.state.is_completed()
    assert run.parameters["recipe"] == "debug"


def test_registered_model_loads_and_generates(first_run):
    import mlflow.pyfunc
    from mlflow import MlflowClient

    from tasks.tracking.setup import configure

    configure()
    assert first_run["model_uri"] == "models:/werk-debug@candidate"
    version = MlflowClient().get_model_version_by_alias("werk-debug", "candidate")
    assert str(version.version) == first_run["model_version"]
    model = mlflow.pyfunc.load_model(first_run["model_uri"])
    out = model.predict(["The ", "Der "], params={"max_new_tokens": 8, "seed": 1})
    assert len(out) == 2 and out[0].startswith("The") and out[1].startswith("Der")
    assert len(out[0]) > len("The")


def test_second_run_reuses_every_stage_output(first_run, prefect_api):
    from flows.pipeline import pipeline

    again = pipeline(recipe="debug")
    assert all(st["cached"] for st in again["stages"].values())
    assert {k: v["key"] for k, v in again["stages"].items()} == {k: v["key"] for k, v in first_run["stages"].items()}
    assert again["metrics"]["eval_bits_per_byte"] == first_run["metrics"]["eval_bits_per_byte"]
    assert again["mlflow"]["parent_run_id"] != first_run["mlflow"]["parent_run_id"]


def test_cli_json_run_and_generate(first_run, home):
    """`werk run --json` prints one JSON object on stdout; `werk generate` loads the model back."""
    werk = str(Path(sys.executable).parent / "werk")
    env = {**os.environ, "WERK_HOME": str(home)}
    env.pop("PREFECT_API_URL", None)  # the CLI uses its own embedded default
    done = subprocess.run([werk, "run", "--recipe", "debug", "--json"], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout)
    assert summary["model_uri"] == "models:/werk-debug@candidate"
    assert all(st["cached"] for st in summary["stages"].values())
    gen = subprocess.run([werk, "generate", "--model", summary["model_uri"], "--prompt", "ROMEO. ", "--max-new-tokens", "5"],
                         env=env, capture_output=True, text=True, timeout=300)
    assert gen.returncode == 0, gen.stderr[-3000:]
    assert gen.stdout.startswith("ROMEO.")
