"""The Werk pipeline: ingest -> tokenizer -> encode -> pretrain -> evaluate -> register.

One Prefect flow, one parent MLflow run tagged with the flow run, the git commit and the recipe,
and one child run per stage. Stages hand each other URIs of content-addressed outputs, so a
second run of the same recipe on the same data redoes nothing it already finished.
"""

from __future__ import annotations

from typing import Any

from prefect import flow

from flows import stages
from flows.caching import run_stage, stage_task_options
from flows.context import FlowRun, flow_run
from flows.params import STAGES, RunSettings, Stage
from flows import links
from flows.results import StageRun
from flows.run_report import StageProgress, publish_summary, summary_markdown
from infra.ray_cluster import shared_ray
from tasks.tracking.runs import DESCRIPTION
from tasks.tracking.setup import tracking_uri


@flow(name="werk-pipeline", validate_parameters=True)
def pipeline(recipe: str = "demo", overrides: list[str] | None = None, settings: RunSettings | None = None,
             until: Stage = "register") -> dict[str, Any]:
    """Run the pipeline for one recipe and return a summary of what it produced.

    Args:
        recipe: Recipe name (`recipes/NAME.yaml`) or path to a recipe YAML file.
        overrides: Dotted overrides applied to the recipe, e.g. `train.max_steps=50`.
        settings: Typed common settings; each one set becomes an override (applied after `overrides`).
        until: Last stage to run; earlier stages whose outputs exist are reused, not rerun.
    """
    overrides = list(overrides or []) + (settings.overrides() if settings else [])
    with flow_run(recipe, overrides, "pipeline", stages=STAGES[:STAGES.index(until) + 1]) as run, \
            shared_ray(min_cpus=run.cfg.compute.num_workers * run.cfg.compute.cpus_per_worker):
        cfg, root, parent = run.cfg, run.root, run.parent
        parent.log_params(cfg.model_dump(mode="json"))
        last = STAGES.index(until)
        progress = StageProgress(cfg.name, until)
        cache = stage_task_options(root)

        def step(result):
            progress.advance()
            return result

        ing = step(run_stage(stages.ingest, cache, cfg, root, parent.run_id))
        tok = step(run_stage(stages.train_tokenizer, cache, cfg, root, parent.run_id, ing)) if last >= 1 else None
        enc = step(run_stage(stages.encode, cache, cfg, root, parent.run_id, ing, tok)) if last >= 2 else None
        pre = step(run_stage(stages.pretrain, cache, cfg, root, parent.run_id, tok, enc)) if last >= 3 else None
        if last < 4:
            return _finish(parent, _summary(run, until, [r for r in (ing, tok, enc, pre) if r is not None]))
        ev = step(run_stage(stages.evaluate, cache, cfg, root, parent.run_id, ing, tok, enc, pre))
        reg = step(run_stage(stages.register, {}, cfg, root, parent.run_id, ing, tok, enc, pre, ev))

        report, trained = ev.record.summary, pre.record.summary
        summary = {
            **_summary(run, until, [ing, tok, enc, pre, ev], also_ran=(reg,)),
            "artifacts": {
                "documents": ing.record.outputs.train,
                "manifest": ing.record.outputs.manifest,
                "quarantine": ing.record.outputs.quarantine,
                "tokenizer": tok.tokenizer,
                "shards": enc.uri,
                "weights": pre.record.outputs.weights,
                "eval_report": ev.record.outputs["report_md"],
                "eval_report_json": ev.record.outputs["report_json"],
            },
            "ingest": ing.record.stats.model_dump(),
            "metrics": {
                "train_loss": trained.metrics.get("train/loss"),
                "val_loss": trained.metrics.get("val/loss"),
                "eval_loss": report.model.loss,
                "eval_perplexity": report.model.perplexity,
                "eval_bits_per_byte": report.model.bits_per_byte,
                "unigram_bits_per_byte": report.unigram_baseline.bits_per_byte,
            },
            "model_uri": reg.model_uri,
            "model_name": reg.name,
            "model_version": reg.version,
            "promoted": reg.promoted,
            "registered_before": reg.cached,
            "gate": reg.gate.model_dump(),
            "downstream": {name: t.model_dump(include={"acc", "acc_stderr", "acc_norm", "random_baseline", "n"})
                           for name, t in report.tasks.items()},
            "samples": [s.model_dump() for s in report.samples],
        }
        if run.ui.mlflow:
            summary["links"]["mlflow_model_version"] = links.mlflow_model_version(run.ui.mlflow, reg.name, reg.version)
        return _finish(parent, summary)


def _summary(run: FlowRun, until: str, results: list[StageRun], also_ran: tuple[StageRun, ...] = ()) -> dict[str, Any]:
    """What every pipeline summary holds: the run's identity, its MLflow runs and its stage outputs."""
    return {
        "recipe": run.cfg.name,
        "until": until,
        "prefect_flow_run_id": run.flow_run_id,
        "git_commit": run.commit,
        "mlflow": {
            "tracking_uri": tracking_uri(),
            "experiment_id": run.parent.experiment_id,
            "parent_run_id": run.parent.run_id,
            "stage_run_ids": {r.stage: r.run_id for r in (*results, *also_ran)},
        },
        "stages": {r.stage: {"uri": r.uri, "key": r.key, "cached": r.cached} for r in results},
        "links": _links(run),
    }


def _links(run: FlowRun) -> dict[str, str]:
    """The run's pages in the UIs whose addresses are known (`flows/links.py`)."""
    found = {}
    if run.ui.prefect and run.flow_run_id:
        found["prefect_flow_run"] = links.prefect_flow_run(run.ui.prefect, run.flow_run_id)
    if run.ui.mlflow:
        found["mlflow_ui"] = run.ui.mlflow
        found["mlflow_experiment"] = links.mlflow_experiment(run.ui.mlflow, run.parent.experiment_id)
        found["mlflow_run"] = links.mlflow_run(run.ui.mlflow, run.parent.experiment_id, run.parent.run_id)
    return found


def _finish(parent, summary: dict[str, Any]) -> dict[str, Any]:
    parent.log_dict(summary, "summary.json")
    # The MLflow UI shows this as the run's description: the same summary the Prefect UI shows.
    parent.set_tags({DESCRIPTION: summary_markdown(summary)})
    publish_summary(summary)
    return summary
