"""What the Prefect UI shows for a pipeline run: a progress bar over the stages, one inside each
long stage (ingest, encode, pretrain), and a summary with the stage table, the key metrics and
links to the MLflow runs."""

from __future__ import annotations

import time
from typing import Any, Callable
from uuid import UUID

from prefect.artifacts import create_markdown_artifact, create_progress_artifact, update_progress_artifact

from flows import links
from flows.events import Work, emit
from flows.params import STAGES


class StageProgress:
    """A Prefect progress artifact advanced as each stage finishes."""

    def __init__(self, recipe: str, last: str) -> None:
        self.total = STAGES.index(last) + 1
        self.done = 0
        self.id: UUID = create_progress_artifact(0.0, key="werk-pipeline-progress",
                                                 description=f"Stages of {recipe} done (of {self.total})")

    def advance(self) -> None:
        self.done += 1
        update_progress_artifact(self.id, 100.0 * self.done / self.total)


Tally = Callable[[str, Any], dict[str, float]]  # (phase, a task's result) -> amounts to add up

# How a phase's tasks are counted on the terminal.
UNITS = {"scan_unit": "parts scanned", "write_unit": "parts written", "encode_part": "parts encoded"}


def figures(totals: dict[str, float], elapsed_s: float) -> tuple[tuple[str, str], ...]:
    """Totals as people read them, with a rate for bytes and tokens."""
    out: list[tuple[str, str]] = []
    per_s = 1.0 / max(elapsed_s, 1e-9)
    for key, value in totals.items():
        if key == "bytes":
            out += [("MB", f"{value / 1e6:,.1f}"), ("MB/s", f"{value / 1e6 * per_s:,.2f}")]
        elif key == "tokens":
            out += [("tokens", f"{value:,.0f}"), ("tokens/s", f"{value * per_s:,.0f}")]
        else:
            out.append((key, f"{value:,.0f}"))
    return tuple(out)


class WorkProgress:
    """A Prefect progress artifact inside one long stage, fed with fractions of its work; the
    same progress goes to whoever watches the run in this process (`flows/events.py`).

    A stage's work may come in phases (ingest scans, then writes): each phase is an equal share
    of the bar. Artifact updates are sent at most once a second: each one is an API call. `tally`
    picks amounts out of each finished task's result (documents, bytes, tokens) for the figures."""

    def __init__(self, stage: str, recipe: str, phases: tuple[str, ...] = ("",), every_s: float = 1.0,
                 tally: Tally | None = None) -> None:
        self.stage, self.phases, self.every_s, self.tally = stage, phases, every_s, tally
        self.value, self._sent_at = 0.0, 0.0
        self.totals: dict[str, float] = {}  # one entry per amount the tally names (documents, bytes, tokens)
        self._t0 = time.monotonic()
        self.id: UUID = create_progress_artifact(0.0, key=f"{stage}-progress",
                                                 description=f"{stage} of {recipe}: share of the work done")

    def set(self, fraction: float, force: bool = False) -> None:
        value = round(100.0 * min(max(fraction, 0.0), 1.0), 1)
        now = time.monotonic()
        if value != self.value and (force or value == 100.0 or now - self._sent_at >= self.every_s):
            update_progress_artifact(self.id, value)
            self.value, self._sent_at = value, now

    def on_map(self, phase: str, done: int, total: int, result: Any = None) -> None:
        """For `infra.ray_cluster.ray_map`: `done` of `total` tasks of `phase` finished."""
        index = self.phases.index(phase) if phase in self.phases else 0
        self.set((index + done / max(total, 1)) / len(self.phases))
        if self.tally is not None and result is not None:
            for key, amount in self.tally(phase, result).items():
                self.totals[key] = self.totals.get(key, 0.0) + amount
        emit(Work(self.stage, done, total, UNITS.get(phase, f"{phase.replace('_', ' ')} tasks"),
                  figures(self.totals, time.monotonic() - self._t0)))

    def finish(self) -> None:
        self.set(1.0, force=True)


def summary_markdown(summary: dict[str, Any]) -> str:
    """The run's summary: its stages with their MLflow runs, key metrics, the model and the gate's
    decision, with links to the MLflow and Prefect pages where the UIs' addresses are known."""
    ml, found = summary["mlflow"], summary.get("links", {})
    base = found.get("mlflow_ui")

    def run_link(run_id: str) -> str:
        if base:
            return f"[{run_id[:8]}]({links.mlflow_run(base, ml['experiment_id'], run_id)})"
        return f"`{run_id[:8]}`"

    lines = [f"# Werk run: {summary['recipe']}", ""]
    where = [f"[{label}]({found[key]})" for key, label in (("prefect_flow_run", "Prefect flow run"),
                                                              ("mlflow_run", "MLflow run"),
                                                              ("mlflow_experiment", "MLflow experiment"),
                                                              ("mlflow_model_version", "registered model version"))
             if found.get(key)]
    lines += [("Pages: " + " · ".join(where)) if where else
              f"MLflow run `{ml['parent_run_id']}` in {ml['tracking_uri']} (`werk ui` serves the MLflow and Prefect UIs "
              "and prints this run's pages).", "",
              f"Git commit `{summary['git_commit'] or 'unknown'}`.", "",
              "| stage | reused | key | MLflow run |", "|---|---|---|---|"]
    for name, st in summary["stages"].items():
        run_id = ml["stage_run_ids"].get(name, "")
        lines.append(f"| {name} | {'yes' if st['cached'] else 'no'} | `{st['key']}` | {run_link(run_id) if run_id else ''} |")
    if summary.get("metrics"):
        lines += ["", "| metric | value |", "|---|---:|"]
        lines += [f"| {k} | {v:.4f} |" for k, v in summary["metrics"].items() if isinstance(v, (int, float))]
    if summary.get("model_uri"):
        verdict = "promoted to `@champion`" if summary["promoted"] else "not promoted"
        model = f"[`{summary['model_uri']}`]({found['mlflow_model_version']})" if found.get("mlflow_model_version") \
            else f"`{summary['model_uri']}`"
        lines += ["", f"Model {model} (version {summary['model_version']}): {verdict}. {summary['gate']['reason']}"]
    return "\n".join(lines) + "\n"


def publish_summary(summary: dict[str, Any]) -> None:
    create_markdown_artifact(key="werk-run-summary", markdown=summary_markdown(summary),
                             description=f"Werk pipeline run of {summary['recipe']}")
