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
from flows.results import (EncodeRun, EvaluateRun, GateResult, IngestRun, PretrainRun, RegisterRun, StageRun,
                           TokenizerRun)
from flows.run_report import WorkProgress
from tasks.artifacts import StageOutput
from tasks.encode.record import EncodeRecord
from tasks.evaluate.record import EvaluateRecord
from tasks.ingest.record import IngestRecord
from tasks.stage_record import StageRecord
from tasks.tokenizer.record import TokenizerRecord
from tasks.training.record import PretrainRecord
from tasks.tracking import compute
from tasks.tracking.datasets import DatasetRef, log_datasets, output_ref, split_ref
from tasks.tracking.runs import Run, open_run


IO_RETRIES = {"retries": 2, "retry_delay_seconds": exponential_backoff(backoff_factor=5),
              "retry_jitter_factor": 0.5}

def _tell(result: StageRun) -> StageRun:
    """Say what the stage did: in the task's Prefect run log (the flow run's Logs tab), and as the
    description of its MLflow run."""
    from tasks.tracking.runs import DESCRIPTION

    line = story.line(result)
    get_run_logger().info("%s %s: %s", result.stage, "reused its output" if result.cached else "done", line)
    open_run(result.run_id).set_tags({DESCRIPTION: line})
    return result


def _warn(stage: str, message: str) -> None:
    """A warning the user should see: in the run log and on the terminal."""
    get_run_logger().warning("%s: %s", stage, message)
    emit(Notice(stage, "warning", message))


def _scanned(phase: str, result: dict[str, Any]) -> dict[str, float]:  # a scan_unit task's counts
    return {"documents": result["docs_in"], "bytes": result["bytes_in"]} if phase == "scan_unit" else {}


def _encoded(phase: str, result: dict[str, Any]) -> dict[str, float]:
    return {"tokens": sum(s["tokens"] for s in result["shards"])}


def _record(parent_id: str, record: StageRecord, cached: bool, log_files: list[str], inputs: list[DatasetRef],
            recipe: Recipe) -> Run:
    """The stage's MLflow child run, with its record, the files a reader wants beside it, its
    input and output datasets, and what making the output cost."""
    parent = open_run(parent_id)
    with parent.child(record.stage, tags={"werk.key": record.key, "werk.cached": cached, "werk.uri": record.uri}) as run:
        _log_stage(run, record, log_files, inputs, recipe, cached)
    return run


def _log_stage(run: Run, record: StageRecord, log_files: list[str], inputs: list[DatasetRef], recipe: Recipe,
               cached: bool) -> None:
    run.log_dict(record.model_dump(mode="json", by_alias=True), "manifest/_SUCCESS.json")
    for uri in log_files:
        run.log_remote_file(uri, "manifest")
    log_datasets(run.client, run.run_id, [*inputs, output_ref(record)])
    if recipe.lineage.openlineage and not cached:  # a reused output was made by a run that said so then
        from prefect import runtime

        from infra.storage import werk_home
        from tasks.lineage import openlineage

        try:
            openlineage.emit(recipe.lineage, werk_home(), f"{recipe.name}.{record.stage}", record, run.run_id, inputs,
                             output_ref(record), parent=(f"{recipe.name}.pipeline", str(runtime.flow_run.id or "")))
        except Exception as exc:  # noqa: BLE001 - a lineage server down must not fail a stage whose output is published
            _warn(record.stage, f"OpenLineage events not sent: {type(exc).__name__}: {exc}")
    # What making the output cost (when reused: what it cost when it was made; werk.cached says so).
    spent = stage_energy(record, recipe)
    run.log_metrics(compute.metrics(record.compute, spent))
    run.set_tags({"werk.energy_method": spent.method})


def stage_energy(record: StageRecord, recipe: Recipe) -> compute.Energy:
    c = recipe.compute
    return compute.energy(record.compute, c.cpu_watts_per_core, c.gpu_watts, c.cpus_per_worker, c.grid_gco2_per_kwh)


def _ingest_address(recipe: Recipe, root: str, **_: Any) -> StageOutput:
    from tasks.ingest.address import plan

    return plan(recipe.ingest, root)[0]


@task(name="ingest", cache_policy=StageCache(address=_ingest_address), **IO_RETRIES)
def ingest(recipe: Recipe, root: str, parent_id: str) -> IngestRun:
    """Read, clean, deduplicate and split the recipe's sources."""
    from tasks.ingest import stage

    from infra.ray_cluster import mapper, ray_session

    out, files = stage.plan(recipe.ingest, root)
    cached = out.is_complete()
    if cached:
        record = out.read(IngestRecord)
    else:
        progress = WorkProgress("ingest", recipe.name, phases=stage.PHASES, tally=_scanned)
        with ray_session():
            record = stage.run_ingest(recipe.ingest, out, files, mapper(recipe.ingest.num_workers, progress.on_map))
        progress.finish()
    sources = [DatasetRef(f"source:{s.name}", s.uri, (s.digest or record.key)[:36], "source") for s in record.sources]
    run = _record(parent_id, record, cached, [record.outputs.stats], sources, recipe)
    result = IngestRun(record=record, cached=cached, run_id=run.run_id)
    stats = record.stats
    run.log_metrics({"docs_in": stats.docs_in, "kept": stats.kept, "bytes_in": stats.bytes_in,
                     "bytes_out": stats.bytes_out, **{f"rejected.{k}": v for k, v in stats.rejected.items()},
                     **{f"redactions.{k}": v for k, v in stats.redactions.items()}})
    from tasks.ingest.report import markdown

    report = markdown(stats.model_dump(), f"Ingest: {recipe.name}")
    from flows.cards import dataset_documents

    card, croissant_doc = dataset_documents(recipe, record)
    run.log_text(card, "cards/DATASET_CARD.md")
    run.log_dict(croissant_doc, "cards/croissant.json")
    create_markdown_artifact(key="dataset-card", markdown=card, description=f"Dataset card of the {recipe.name} corpus")
    run.log_text(report, "manifest/stats.md")
    create_markdown_artifact(key="ingest-stats", markdown=report, description=f"Ingest stats for {recipe.name}")
    warning = story.quarantine_warning(result)
    if warning:
        _warn("ingest", warning)
    return _tell(result)


def _tokenizer_address(recipe: Recipe, root: str, ingest_result: IngestRun, **_: Any) -> StageOutput:
    from tasks.tokenizer.address import plan

    return plan(recipe.tokenizer, root, ingest_result.record.base_key)


@task(name="train-tokenizer", cache_policy=StageCache(address=_tokenizer_address), **IO_RETRIES)
def train_tokenizer(recipe: Recipe, root: str, parent_id: str, ingest_result: IngestRun) -> TokenizerRun:
    """Train the byte-level BPE tokenizer on the training split."""
    from tasks.tokenizer import train

    out = _tokenizer_address(recipe, root, ingest_result)
    cached = out.is_complete()
    ing = ingest_result.record
    sample = min(ing.stats.bytes_out, recipe.tokenizer.sample_bytes or ing.stats.bytes_out)

    def on_bytes(n: int) -> None:
        emit(Work("tokenizer", n / 1e6, sample / 1e6 or None, "MB of text sampled"))

    record = out.read(TokenizerRecord) if cached else train.run_tokenizer(
        recipe.tokenizer, out, ing.shards.train, ing.stats.bytes_out, ing.shards.val, on_bytes=on_bytes)
    run = _record(parent_id, record, cached, [record.outputs.tokenizer, out.path("fertility.json"), out.path("fertility.md")],
                  [output_ref(ing, "training")], recipe)
    result = TokenizerRun(record=record, cached=cached, run_id=run.run_id)
    rows = [{"language": lang, **{k: round(v, 3) if isinstance(v, float) else v for k, v in row.model_dump().items()}}
            for lang, row in record.summary.fertility.items()]
    if rows:
        create_table_artifact(key="tokenizer-fertility", table=rows,
                              description=f"Tokens per word and bytes per token per language ({recipe.name})")
    return _tell(result)


def _encode_address(recipe: Recipe, root: str, ingest_result: IngestRun, tok_result: TokenizerRun,
                    **_: Any) -> StageOutput:
    from tasks.encode.address import plan

    return plan(recipe.encode, root, ingest_result.key, tok_result.key)


@task(name="encode", cache_policy=StageCache(address=_encode_address), **IO_RETRIES)
def encode(recipe: Recipe, root: str, parent_id: str, ingest_result: IngestRun, tok_result: TokenizerRun) -> EncodeRun:
    """Encode both splits into token shards with a document index."""
    from tasks.encode import stage

    out = _encode_address(recipe, root, ingest_result, tok_result)
    cached = out.is_complete()
    if cached:
        record = out.read(EncodeRecord)
    else:
        from infra.ray_cluster import mapper, ray_session

        progress = WorkProgress("encode", recipe.name, tally=_encoded)
        with ray_session():
            record = stage.run_encode(recipe.encode, out, ingest_result.record.shards.model_dump(), tok_result.tokenizer,
                                      mapper(on_progress=progress.on_map))
        progress.finish()
    run = _record(parent_id, record, cached, [], [output_ref(ingest_result.record, "input"), output_ref(tok_result.record, "input")],
                  recipe)
    run.log_metrics({f"{split}.{k}": getattr(s, k) for split, s in record.summary.splits.items()
                     for k in ("tokens", "docs", "text_bytes")})
    return _tell(EncodeRun(record=record, cached=cached, run_id=run.run_id))


def _pretrain_job(recipe: Recipe, tok_result: TokenizerRun, encode_result: EncodeRun):
    from tasks.training.job import PretrainJob

    summary = encode_result.record.summary
    train, val = summary.splits["train"], summary.splits["val"]
    model, init_sha256 = recipe.model, None
    if model.init_from:  # the shape from the folder (`tasks/export/init_from.py`)
        from tasks.export.init_from import imported, shape_fields

        shape, init_sha256 = imported(model.init_from, summary.vocab_size)
        model = model.model_copy(update=shape_fields(shape))
    return PretrainJob(
        model=model, train=recipe.train, compute=recipe.compute, vocab_size=summary.vocab_size,
        train_shards=train.shards, val_shards=val.shards, train_sha256=train.sha256, val_sha256=val.sha256,
        train_tokens=train.shard_tokens, val_tokens=val.shard_tokens, tokenizer_uri=tok_result.tokenizer,
        init_sha256=init_sha256,
    )


def _pretrain_address(recipe: Recipe, root: str, tok_result: TokenizerRun, encode_result: EncodeRun,
                      **_: Any) -> StageOutput:
    from tasks.training.address import plan

    return plan(_pretrain_job(recipe, tok_result, encode_result), root, encode_result.key)


@task(name="pretrain", cache_policy=StageCache(address=_pretrain_address))
def pretrain(recipe: Recipe, root: str, parent_id: str, tok_result: TokenizerRun, encode_result: EncodeRun) -> PretrainRun:
    """Train the GPT with Ray Train + Lightning; resumes from the last checkpoint if interrupted."""
    from infra.ray_cluster import ray_session
    from flows.training_watch import TrainingWatch
    from tasks.training import launch
    from tasks.training.job import accumulation_steps
    from tasks.tracking.setup import tracking_uri

    parent = open_run(parent_id)
    job = _pretrain_job(recipe, tok_result, encode_result)
    accumulation_steps(job, recipe.compute.num_workers)  # a global batch that does not divide fails now
    out = launch.plan(job, root, encode_result.key)
    cached = out.is_complete()
    with parent.child("pretrain", tags={"werk.key": out.key, "werk.cached": cached, "werk.uri": out.uri}) as run:
        if cached:
            record = out.read(PretrainRecord)
        else:
            job = job.model_copy(update={"mlflow_tracking_uri": tracking_uri(), "mlflow_run_id": run.run_id})
            progress = WorkProgress("pretrain", recipe.name)
            watch = TrainingWatch(job.train.max_steps, progress, get_run_logger())
            with ray_session(min_cpus=recipe.compute.num_workers * recipe.compute.cpus_per_worker):
                record = launch.run_pretrain(job, out, root, on_status=watch)
            progress.finish()
        enc = encode_result.record
        _log_stage(run, record, [], [split_ref(enc, "train", "training"), split_ref(enc, "val", "validation")], recipe,
                   cached)
        run.log_metrics({"parameters": record.summary.parameters, "global_step": record.summary.global_step})
        return _tell(PretrainRun(record=record, cached=cached, run_id=run.run_id))


def _kept_checkpoints(summary) -> list[dict[str, Any]]:
    """Every checkpoint training kept, once each (the best may also be one of the newest)."""
    rows = {c.step: {"uri": c.uri, "step": c.step, "kind": "kept"} for c in summary.kept_checkpoints}
    best = summary.best
    if best:
        rows[best.step] = {"uri": best.checkpoint, "step": best.step, "kind": "best" if best.step not in rows else "kept, best"}
    return list(rows.values())


def _curves(run_id: str) -> dict[str, list[tuple[int, float]]]:
    run = open_run(run_id)
    return {name: [(m.step, m.value) for m in run.client.get_metric_history(run_id, name)]
            for name in ("train/loss", "val/loss")}


def _evaluate_address(recipe: Recipe, root: str, pretrain_result: PretrainRun, **_: Any) -> StageOutput:
    from tasks.evaluate.address import plan

    return plan(recipe.eval, root, pretrain_result.key)


@task(name="evaluate", cache_policy=StageCache(address=_evaluate_address), **IO_RETRIES)
def evaluate(recipe: Recipe, root: str, parent_id: str, ingest_result: IngestRun, tok_result: TokenizerRun,
             encode_result: EncodeRun, pretrain_result: PretrainRun) -> EvaluateRun:
    """Held-out loss, perplexity and bits per byte (overall, per source and language) against a
    unigram baseline; downstream tasks; samples; report with plots."""
    from tasks.evaluate import stage
    from tasks.evaluate.report import flat_metrics

    out = _evaluate_address(recipe, root, pretrain_result)
    cached = out.is_complete()
    pre = pretrain_result.record
    if cached:
        record = out.read(EvaluateRecord)
    else:
        inputs = stage.EvalInputs(
            weights=pre.outputs.weights, config=pre.outputs.config,
            tokenizer=tok_result.tokenizer, encode_summary=encode_result.record.summary,
            encode_index=encode_result.record.outputs.index,
            ingest_manifest=ingest_result.record.outputs.manifest,
            checkpoints=_kept_checkpoints(pre.summary),
            final_step=pre.summary.global_step,
        )
        trained_in = pre.summary.mlflow_run_id or pretrain_result.run_id
        def on_scored(what: str, done: int, total: int) -> None:
            emit(Work("evaluate", done, total, what))

        record = stage.run_evaluate(recipe.eval, out, recipe.name, inputs, _curves(trained_in), on_scored=on_scored)
    files = [out.path(name) for name in ("eval_report.json", "eval_report.md", *stage.PLOTS)]
    run = _record(parent_id, record, cached, files, [output_ref(pre, "model"),
                                                    split_ref(encode_result.record, "val", "evaluation")], recipe)
    metrics = {f"eval/{k}": v for k, v in flat_metrics(record.summary.model_dump()).items()}
    run.log_metrics(metrics)
    open_run(parent_id).log_metrics(metrics)
    return _tell(EvaluateRun(record=record, cached=cached, run_id=run.run_id))


def _gate_result(decision) -> GateResult:
    return GateResult(metric=decision.metric, candidate=decision.candidate, champion=decision.champion,
                      champion_version=decision.champion_version, reason=decision.reason)


@task(name="register", cache_policy=NO_CACHE, **IO_RETRIES)
def register(recipe: Recipe, root: str, parent_id: str, ingest_result: IngestRun, tok_result: TokenizerRun,
             encode_result: EncodeRun, pretrain_result: PretrainRun, eval_result: EvaluateRun) -> RegisterRun:
    """Log the model with its tokenizer as werk-<recipe>@candidate; the gate moves @champion if it wins.

    A model already registered from the same pretraining and evaluation is not registered again:
    it becomes the candidate once more and keeps the gate decision it got then."""
    from mlflow import MlflowClient

    from tasks.evaluate.report import flat_metrics, markdown
    from tasks.governance.flags import pending_for
    from tasks.registry.gate import gate, recorded_decision
    from tasks.registry.register import register_model

    report = eval_result.record.summary.model_dump()
    name, client = recipe.registered_model_name, MlflowClient()
    keys = {"werk.pretrain_key": pretrain_result.key, "werk.evaluate_key": eval_result.key}
    parent = open_run(parent_id)
    pending = pending_for(root, ingest_result.record)  # erasures since its data was made: never promoted
    stages_used = [r.record for r in (ingest_result, tok_result, encode_result, pretrain_result, eval_result)]
    cost = compute.total([(r.compute, stage_energy(r, recipe)) for r in stages_used])
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
                run.run_id, name, "candidate", pretrain_result.record.outputs.weights, pretrain_result.record.outputs.config,
                tok_result.tokenizer, tags={**keys, "werk.parent_run_id": parent_id},
            )
            decision = gate(client, name, reg["version"], flat_metrics(report), recipe.registry, erasure_pending=pending)
            for k, v in cost.items():  # what the model cost, from its data to its evaluation
                client.set_model_version_tag(name, reg["version"], f"compute.{k}", str(v))
            run.log_metrics({f"compute/total_{k}": v for k, v in cost.items() if not isinstance(v, str)})
            open_run(parent_id).log_metrics({f"compute/total_{k}": v for k, v in cost.items() if not isinstance(v, str)})
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
            mlflow_ui, eval_result.run_id, f"manifest/{name}")) if mlflow_ui else None)
        registered = client.get_model_version(name, reg["version"])
        card = _documentation(recipe, run, client, registered, ingest_result, encode_result, pretrain_result,
                              eval_result, cost, pending)
        # Not only a new version: one whose export failed in an earlier run gets its folder now.
        if recipe.registry.export_hf and "werk.export.hf" not in registered.tags:
            _export_hf(run, client, name, reg["version"], pretrain_result, tok_result, card)
        run.set_tags({"werk.model_uri": reg["model_uri"], "werk.model_version": reg["version"],
                      "werk.promoted": decision.promote})
        create_markdown_artifact(key="eval-report", markdown=text, description=f"Evaluation of {recipe.name}")
        return _tell(RegisterRun(run_id=run.run_id, model_uri=reg["model_uri"], name=name, version=reg["version"],
                                 cached=bool(prior), promoted=decision.promote, gate=_gate_result(decision)))


def _documentation(recipe: Recipe, run: Run, client, registered, ing: IngestRun, enc: EncodeRun,
                   pre: PretrainRun, ev: EvaluateRun, cost: dict[str, Any], pending: list[str]) -> str:
    """The model card (the version's description in MLflow) and the AI Act training-content summary
    of `registered` (an MLflow ModelVersion); the card."""
    from datetime import datetime, timezone

    from flows.cards import model_documents

    name, version = registered.name, str(registered.version)  # (the SQL store gives an int)
    created = int(registered.creation_timestamp)
    date = datetime.fromtimestamp(created / 1000, timezone.utc).date().isoformat()
    card, summary_md, summary = model_documents(recipe, name, version, date, ing.record, enc.record, pre.record,
                                                ev.record, cost, pending)
    client.update_model_version(name, version, description=card)
    run.log_text(card, "MODEL_CARD.md")
    run.log_text(summary_md, "AI_ACT_SUMMARY.md")
    run.log_dict(summary, "ai_act_summary.json")
    create_markdown_artifact(key="model-card", markdown=card, description=f"Model card of {name} version {version}")
    create_markdown_artifact(key="ai-act-summary", markdown=summary_md,
                             description=f"AI Act training-content summary of {name} version {version}")
    return card


def _export_hf(run: Run, client, name: str, version: str, pre: PretrainRun, tok: TokenizerRun, card: str) -> None:
    """The version's Hugging Face folder as the `hf` artifact of its run, named in a version tag."""
    from tasks.export.registered import ARTIFACT, export_hf

    try:
        refused = export_hf(pre.record.outputs.weights, pre.record.outputs.config, tok.tokenizer, card, run.log_artifacts)
    except Exception as exc:  # noqa: BLE001 - the version is registered and gated: say why, a rerun tries again
        get_run_logger().warning("the Hugging Face folder of %s version %s failed: %s", name, version, exc)
        return
    if refused:
        get_run_logger().warning("no Hugging Face folder for %s version %s: %s", name, version, refused)
        client.set_model_version_tag(name, version, "werk.export.hf", f"none: {refused}")
    else:
        client.set_model_version_tag(name, version, "werk.export.hf", f"runs:/{run.run_id}/{ARTIFACT}")
