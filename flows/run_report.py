"""What the Prefect UI shows for a pipeline run: a progress bar over the stages, one inside each
long stage (ingest, encode, pretrain), and a summary with the stage table, the key metrics and
links to the MLflow runs."""

from __future__ import annotations

import time
from typing import Any
from uuid import UUID

from prefect.artifacts import create_markdown_artifact, create_progress_artifact, update_progress_artifact

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


class WorkProgress:
    """A Prefect progress artifact inside one long stage, fed with fractions of its work.

    A stage's work may come in phases (ingest scans, then writes): each phase is an equal share
    of the bar. Updates are sent at most once a second: each one is an API call."""

    def __init__(self, stage: str, recipe: str, phases: tuple[str, ...] = ("",), every_s: float = 1.0) -> None:
        self.phases, self.every_s = phases, every_s
        self.value, self._sent_at = 0.0, 0.0
        self.id: UUID = create_progress_artifact(0.0, key=f"{stage}-progress",
                                                 description=f"{stage} of {recipe}: share of the work done")

    def set(self, fraction: float, force: bool = False) -> None:
        value = round(100.0 * min(max(fraction, 0.0), 1.0), 1)
        now = time.monotonic()
        if value != self.value and (force or value == 100.0 or now - self._sent_at >= self.every_s):
            update_progress_artifact(self.id, value)
            self.value, self._sent_at = value, now

    def on_map(self, phase: str, done: int, total: int) -> None:
        """For `infra.ray_cluster.ray_map`: `done` of `total` tasks of `phase` finished."""
        index = self.phases.index(phase) if phase in self.phases else 0
        self.set((index + done / max(total, 1)) / len(self.phases))

    def finish(self) -> None:
        self.set(1.0, force=True)


def _mlflow_link(tracking_uri: str, experiment_id: str, run_id: str) -> str:
    if tracking_uri.startswith("http"):
        return f"[{run_id[:8]}]({tracking_uri.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id})"
    return f"`{run_id}` (`werk ui` opens the MLflow UI)"


def summary_markdown(summary: dict[str, Any]) -> str:
    ml = summary["mlflow"]
    link = lambda run_id: _mlflow_link(ml["tracking_uri"], ml["experiment_id"], run_id)  # noqa: E731
    lines = [f"# Werk run: {summary['recipe']}", "",
             f"Parent MLflow run: {link(ml['parent_run_id'])}; git commit `{summary['git_commit'] or 'unknown'}`.", "",
             "| stage | reused | key | MLflow run |", "|---|---|---|---|"]
    for name, st in summary["stages"].items():
        run_id = ml["stage_run_ids"].get(name, "")
        lines.append(f"| {name} | {'yes' if st['cached'] else 'no'} | `{st['key']}` | {link(run_id) if run_id else ''} |")
    if summary.get("metrics"):
        lines += ["", "| metric | value |", "|---|---:|"]
        lines += [f"| {k} | {v:.4f} |" for k, v in summary["metrics"].items() if isinstance(v, (int, float))]
    if summary.get("model_uri"):
        verdict = "promoted to `@champion`" if summary["promoted"] else "not promoted"
        lines += ["", f"Model `{summary['model_uri']}` (version {summary['model_version']}): {verdict}. "
                  f"{summary['gate']['reason']}"]
    return "\n".join(lines) + "\n"


def publish_summary(summary: dict[str, Any]) -> None:
    create_markdown_artifact(key="werk-run-summary", markdown=summary_markdown(summary),
                             description=f"Werk pipeline run of {summary['recipe']}")
