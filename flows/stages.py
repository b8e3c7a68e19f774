"""Thin Prefect tasks, one per stage: plan the content-addressed output, run it unless it is
already complete, and record the stage in its own MLflow child run.

The work itself is done by pure functions in `tasks/`; these wrappers add orchestration
(caching across runs, retries, Prefect artifacts) and tracking only. Each stage task carries a
`StageCache` policy keyed by its output's content address (see `flows/caching.py`). Stages that read and write storage retry with
exponential backoff: their outputs are content-addressed and published atomically, so a retry
redoes the work and never sees half of it. Pretraining does not: Ray Train restarts its workers
from the last checkpoint, and a stop on a signal must end the run.
"""

from __future__ import annotations

from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.tasks import exponential_backoff

from flows import story
from flows.caching import StageCache
from flows.events import Notice, Work, emit
from flows.recipe import Recipe
from flows.run_report import WorkProgress
from infra import storage
from tasks.artifacts import StageOutput
from tasks.tracking.runs import Run, open_run


IO_RETRIES = {"retries": 2, "retry_delay_seconds": exponential_backoff(backoff_factor=5),
              "retry_jitter_factor": 0.5}

def _tell(result: dict[str, Any]) -> dict[str, Any]:
    """Say what the stage did: in the task's Prefect run log (the flow run's Logs tab), and as the
    description of its MLflow run."""
    from tasks.tracking.runs import DESCRIPTION

    line = story.line(result)
    get_run_logger().info("%s %s: %s", result["stage"], "reused its output" if result["cached"] else "done", line)
    open_run(result["run_id"]).set_tags({DESCRIPTION: line})
    return result


def _warn(stage: str, message: str) -> None:
    """A warning the user should see: in the run log and on the terminal."""
    get_run_logger().warning("%s: %s", stage, message)
    emit(Notice(stage, "warning", message))


def _scanned(phase: str, result: dict[str, Any]) -> dict[str, float]:
    return {"documents": result["docs_in"], "bytes": result["bytes_in"]} if phase == "scan_unit" else {}


def _encoded(phase: str, result: dict[str, Any]) -> dict[str, float]:
    return {"tokens": sum(s["tokens"] for s in result["shards"])}


def _record(parent_id: str, out: StageOutput, cached: bool, summary: dict[str, Any], log_files: list[str]) -> dict[str, Any]:
    parent = open_run(parent_id)
    with parent.child(out.stage, tags={"werk.key": out.key, "werk.cached": cached, "werk.uri": out.uri}) as run:
        _log_stage(run, out, summary, log_files)
        return {"stage": out.stage, "key": out.key, "uri": out.uri, "cached": cached, "run_id": run.run_id, **summary}


def _log_stage(run: Run, out: StageOutput, summary: dict[str, Any], log_files: list[str]) -> None:
    run.log_dict(out.completion(), "manifest/_SUCCESS.json")
    for uri in log_files:
        run.log_remote_file(uri, "manifest")


def _ingest_address(recipe: Recipe, root: str, **_: Any) -> StageOutput:
    from tasks.ingest.address import plan

    return plan(recipe.ingest, root)[0]


@task(name="ingest", cache_policy=StageCache(address=_ingest_address), **IO_RETRIES)
def ingest(recipe: Recipe, root: str, parent_id: str) -> dict[str, Any]:
    """Read, clean, deduplicate and split the recipe's sources."""
    from tasks.ingest import stage

    from infra.ray_cluster import mapper, ray_session

    out, files = stage.plan(recipe.ingest, root)
    cached = out.is_complete()
    if cached:
        stats = out.completion()["stats"]
    else:
        progress = WorkProgress("ingest", recipe.name, phases=stage.PHASES, tally=_scanned)
        with ray_session():
            stats = stage.run_ingest(recipe.ingest, out, files, mapper(recipe.ingest.num_workers, progress.on_map))
        progress.finish()
    done = out.completion()
    result = _record(parent_id, out, cached, {"stats": stats, "outputs": stage.ingest_outputs(out), "shards": done["shards"]},
                     [stage.ingest_outputs(out)["stats"]])
    run = open_run(result["run_id"])
    run.log_metrics({"docs_in": stats["docs_in"], "kept": stats["kept"], "bytes_in": stats["bytes_in"],
                     "bytes_out": stats["bytes_out"], **{f"rejected.{k}": v for k, v in stats["rejected"].items()},
                     **{f"redactions.{k}": v for k, v in stats["redactions"].items()}})
    from tasks.ingest.report import markdown

    report = markdown(stats, f"Ingest: {recipe.name}")
    run.log_text(report, "manifest/stats.md")
    create_markdown_artifact(key="ingest-stats", markdown=report, description=f"Ingest stats for {recipe.name}")
    warning = story.quarantine_warning(result)
    if warning:
        _warn("ingest", warning)
    return _tell(result)


def _tokenizer_address(recipe: Recipe, root: str, ingest_result: dict[str, Any], **_: Any) -> StageOutput:
    from tasks.tokenizer.address import plan

    return plan(recipe.tokenizer, root, ingest_result["key"])


@task(name="train-tokenizer", cache_policy=StageCache(address=_tokenizer_address), **IO_RETRIES)
def train_tokenizer(recipe: Recipe, root: str, parent_id: str, ingest_result: dict[str, Any]) -> dict[str, Any]:
    """Train the byte-level BPE tokenizer on the training split."""
    from tasks.tokenizer import train

    out = _tokenizer_address(recipe, root, ingest_result)
    cached = out.is_complete()
    sample = min(ingest_result["stats"]["bytes_out"], recipe.tokenizer.sample_bytes or ingest_result["stats"]["bytes_out"])

    def on_bytes(n: int) -> None:
        emit(Work("tokenizer", n / 1e6, sample / 1e6 or None, "MB of text sampled"))

    summary = out.completion()["summary"] if cached else train.run_tokenizer(
        recipe.tokenizer, out, ingest_result["shards"]["train"], ingest_result["stats"]["bytes_out"],
        ingest_result["shards"]["val"], on_bytes=on_bytes)
    tokenizer_uri = out.path("tokenizer.json")
    result = _record(parent_id, out, cached, {"summary": summary, "tokenizer": tokenizer_uri},
                     [tokenizer_uri, out.path("fertility.json"), out.path("fertility.md")])
    rows = [{"language": lang, **{k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()}}
            for lang, row in summary.get("fertility", {}).items()]
    if rows:
        create_table_artifact(key="tokenizer-fertility", table=rows,
                              description=f"Tokens per word and bytes per token per language ({recipe.name})")
    return _tell(result)


def _encode_address(recipe: Recipe, root: str, ingest_result: dict[str, Any], tok_result: dict[str, Any],
                    **_: Any) -> StageOutput:
    from tasks.encode.address import plan

    return plan(recipe.encode, root, ingest_result["key"], tok_result["key"])


@task(name="encode", cache_policy=StageCache(address=_encode_address), **IO_RETRIES)
def encode(recipe: Recipe, root: str, parent_id: str, ingest_result: dict[str, Any], tok_result: dict[str, Any]) -> dict[str, Any]:
    """Encode both splits into token shards with a document index."""
    from tasks.encode import stage

    out = _encode_address(recipe, root, ingest_result, tok_result)
    cached = out.is_complete()
    if cached:
        summary = out.completion()["summary"]
    else:
        from infra.ray_cluster import mapper, ray_session

        progress = WorkProgress("encode", recipe.name, tally=_encoded)
        with ray_session():
            summary = stage.run_encode(recipe.encode, out, ingest_result["shards"], tok_result["tokenizer"],
                                       mapper(on_progress=progress.on_map))
        progress.finish()
    result = _record(parent_id, out, cached, {"summary": summary}, [])
    open_run(result["run_id"]).log_metrics(
        {f"{split}.{k}": v for split, s in summary["splits"].items() for k, v in s.items() if k not in ("shards", "sha256", "shard_tokens")})
    return _tell(result)


def _pretrain_job(recipe: Recipe, tok_result: dict[str, Any], encode_result: dict[str, Any]):
    from tasks.training.job import PretrainJob

    splits = encode_result["summary"]["splits"]
    return PretrainJob(
        model=recipe.model, train=recipe.train, compute=recipe.compute,
        vocab_size=encode_result["summary"]["vocab_size"],
        train_shards=splits["train"]["shards"], val_shards=splits["val"]["shards"],
        train_sha256=splits["train"].get("sha256"), val_sha256=splits["val"].get("sha256"),
        train_tokens=splits["train"].get("shard_tokens"), val_tokens=splits["val"].get("shard_tokens"),
        tokenizer_uri=tok_result["tokenizer"],
    )


def _pretrain_address(recipe: Recipe, root: str, tok_result: dict[str, Any], encode_result: dict[str, Any],
                      **_: Any) -> StageOutput:
    from tasks.training.address import plan

    return plan(_pretrain_job(recipe, tok_result, encode_result), root, encode_result["key"])


@task(name="pretrain", cache_policy=StageCache(address=_pretrain_address))
def pretrain(recipe: Recipe, root: str, parent_id: str, tok_result: dict[str, Any], encode_result: dict[str, Any]) -> dict[str, Any]:
    """Train the GPT with Ray Train + Lightning; resumes from the last checkpoint if interrupted."""
    from infra.ray_cluster import ray_session
    from flows.training_watch import TrainingWatch
    from tasks.training import launch
    from tasks.training.job import accumulation_steps
    from tasks.tracking.setup import tracking_uri

    parent = open_run(parent_id)
    job = _pretrain_job(recipe, tok_result, encode_result)
    accumulation_steps(job, recipe.compute.num_workers)  # a global batch that does not divide fails now
    out = launch.plan(job, root, encode_result["key"])
    cached = out.is_complete()
    with parent.child("pretrain", tags={"werk.key": out.key, "werk.cached": cached, "werk.uri": out.uri}) as run:
        if cached:
            summary = out.completion()["summary"]
        else:
            job = job.model_copy(update={"mlflow_tracking_uri": tracking_uri(), "mlflow_run_id": run.run_id})
            progress = WorkProgress("pretrain", recipe.name)
            watch = TrainingWatch(job.train.max_steps, progress, get_run_logger())
            with ray_session(min_cpus=recipe.compute.num_workers * recipe.compute.cpus_per_worker):
                summary = launch.run_pretrain(job, out, root, on_status=watch)
            progress.finish()
        run.log_dict(out.completion(), "manifest/_SUCCESS.json")
        run.log_metrics({"parameters": summary["parameters"], "global_step": summary["global_step"]})
        return _tell({"stage": "pretrain", "key": out.key, "uri": out.uri, "cached": cached, "run_id": run.run_id,
                      "summary": summary, "weights": out.path("model.pt"), "model_config": out.path("model_config.json")})


def _kept_checkpoints(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """Every checkpoint training kept, once each (the best may also be one of the newest)."""
    rows = {c["step"]: {"uri": c["uri"], "step": c["step"], "kind": "kept"} for c in summary.get("kept_checkpoints", [])}
    best = summary.get("best")
    if best:
        rows[best["step"]] = {"uri": best["checkpoint"], "step": best["step"],
                              "kind": "best" if best["step"] not in rows else "kept, best"}
    return list(rows.values())


def _curves(run_id: str) -> dict[str, list[tuple[int, float]]]:
    run = open_run(run_id)
    return {name: [(m.step, m.value) for m in run.client.get_metric_history(run_id, name)]
            for name in ("train/loss", "val/loss")}


def _evaluate_address(recipe: Recipe, root: str, pretrain_result: dict[str, Any], **_: Any) -> StageOutput:
    from tasks.evaluate.address import plan

    return plan(recipe.eval, root, pretrain_result["key"])


@task(name="evaluate", cache_policy=StageCache(address=_evaluate_address), **IO_RETRIES)
def evaluate(recipe: Recipe, root: str, parent_id: str, ingest_result: dict, tok_result: dict, encode_result: dict,
             pretrain_result: dict) -> dict[str, Any]:
    """Held-out loss, perplexity and bits per byte (overall, per source and language) against a
    unigram baseline; downstream tasks; samples; report with plots."""
    from tasks.evaluate import stage
    from tasks.evaluate.report import flat_metrics

    out = _evaluate_address(recipe, root, pretrain_result)
    cached = out.is_complete()
    if cached:
        report = out.completion()["summary"]
    else:
        inputs = stage.EvalInputs(
            weights=pretrain_result["weights"], config=pretrain_result["model_config"],
            tokenizer=tok_result["tokenizer"], encode_summary=encode_result["summary"],
            encode_index=storage.join(encode_result["uri"], "index"),
            ingest_manifest=ingest_result["outputs"]["manifest"],
            checkpoints=_kept_checkpoints(pretrain_result["summary"]),
            final_step=pretrain_result["summary"]["global_step"],
        )
        trained_in = pretrain_result["summary"].get("mlflow_run_id") or pretrain_result["run_id"]
        def on_scored(what: str, done: int, total: int) -> None:
            emit(Work("evaluate", done, total, what))

        report = stage.run_evaluate(recipe.eval, out, recipe.name, inputs, _curves(trained_in), on_scored=on_scored)
    files = [out.path(name) for name in ("eval_report.json", "eval_report.md", *stage.PLOTS)]
    result = _record(parent_id, out, cached, {"report": report, "report_md": out.path("eval_report.md"),
                                              "report_json": out.path("eval_report.json")}, files)
    metrics = {f"eval/{k}": v for k, v in flat_metrics(report).items()}
    open_run(result["run_id"]).log_metrics(metrics)
    open_run(parent_id).log_metrics(metrics)
    return _tell(result)


def _gate_result(decision) -> dict[str, Any]:
    return {"metric": decision.metric, "candidate": decision.candidate, "champion": decision.champion,
            "champion_version": decision.champion_version, "reason": decision.reason}


@task(name="register", cache_policy=NO_CACHE, **IO_RETRIES)
def register(recipe: Recipe, parent_id: str, tok_result: dict, pretrain_result: dict, eval_result: dict) -> dict[str, Any]:
    """Log the model with its tokenizer as werk-<recipe>@candidate; the gate moves @champion if it wins.

    A model already registered from the same pretraining and evaluation is not registered again:
    it becomes the candidate once more and keeps the gate decision it got then."""
    from mlflow import MlflowClient

    from tasks.evaluate.report import flat_metrics, markdown
    from tasks.registry.gate import gate, recorded_decision
    from tasks.registry.register import register_model

    report = eval_result["report"]
    name, client = recipe.registered_model_name, MlflowClient()
    keys = {"werk.pretrain_key": pretrain_result["key"], "werk.evaluate_key": eval_result["key"]}
    parent = open_run(parent_id)
    prior = client.search_model_versions(
        f"name='{name}' and " + " and ".join(f"tags.`{k}`='{v}'" for k, v in keys.items()))
    with parent.child("register", tags={"werk.cached": bool(prior)}) as run:
        if prior:
            version = str(max(int(v.version) for v in prior))
            client.set_registered_model_alias(name, "candidate", version)
            decision = recorded_decision(client.get_model_version(name, version))
            reg = {"model_uri": f"models:/{name}@candidate", "name": name, "version": version}
        else:
            reg = register_model(
                run.run_id, name, "candidate", pretrain_result["weights"], pretrain_result["model_config"],
                tok_result["tokenizer"], tags={**keys, "werk.parent_run_id": parent_id},
            )
            decision = gate(client, name, reg["version"], flat_metrics(report), recipe.registry)
        comparison = [
            "| metric | candidate | champion | decision |", "|---|---:|---:|---|",
            f"| {decision.metric} | {decision.candidate:.6g} (v{reg['version']}) | "
            + (f"{decision.champion:.6g} (v{decision.champion_version})" if decision.champion is not None else "none")
            + f" | {'promoted to champion' if decision.promote else 'not promoted'} |",
            "", decision.reason,
        ]
        run.log_text(markdown(report, comparison), "eval_report.md")
        # In the Prefect UI, the plots come from the MLflow UI where its address is known.
        from flows import links
        from tasks.tracking.setup import tracking_uri

        mlflow_ui = links.current(tracking_uri()).mlflow
        text = markdown(report, comparison, plot_url=(lambda name: links.mlflow_artifact(
            mlflow_ui, eval_result["run_id"], f"manifest/{name}")) if mlflow_ui else None)
        run.set_tags({"werk.model_uri": reg["model_uri"], "werk.model_version": reg["version"],
                      "werk.promoted": decision.promote})
        create_markdown_artifact(key="eval-report", markdown=text, description=f"Evaluation of {recipe.name}")
        return _tell({"stage": "register", "run_id": run.run_id, **reg, "cached": bool(prior), "promoted": decision.promote,
                      "gate": _gate_result(decision)})

