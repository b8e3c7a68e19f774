"""The promotion gate: `champion` moves to a new model version only when its numbers beat the
current champion's by the configured margin. The decision and the numbers behind it are tagged
on the candidate version, so the registry itself says why each version is or is not champion."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from tasks.registry.config import RegistryConfig

CHAMPION = "champion"


@dataclass(frozen=True)
class Decision:
    promote: bool
    metric: str
    candidate: float
    champion: float | None
    champion_version: str | None
    reason: str


def decide(cfg: RegistryConfig, candidate: float, champion: float | None, champion_version: str | None) -> Decision:
    """Pure: promote when there is no champion yet, or the candidate is better by `min_improvement`."""
    metric = cfg.gate_metric
    if not math.isfinite(candidate):
        return Decision(False, metric, candidate, champion, champion_version, f"candidate {metric} is not finite")
    if champion_version is None:
        return Decision(True, metric, candidate, None, None, "no champion yet")
    if champion is None:
        return Decision(False, metric, candidate, None, champion_version,
                        f"champion v{champion_version} has no {metric} to compare with; promote by hand if intended")
    gain = candidate - champion if cfg.higher_is_better else champion - candidate
    better = "higher" if cfg.higher_is_better else "lower"
    if gain > cfg.min_improvement:
        return Decision(True, metric, candidate, champion, champion_version,
                        f"{metric} {candidate:.6g} beats champion v{champion_version}'s {champion:.6g} ({better} is better, "
                        f"margin {cfg.min_improvement:g})")
    return Decision(False, metric, candidate, champion, champion_version,
                    f"{metric} {candidate:.6g} does not beat champion v{champion_version}'s {champion:.6g} by more than "
                    f"{cfg.min_improvement:g} ({better} is better)")


def _champion(client: MlflowClient, name: str, metric: str) -> tuple[float | None, str | None]:
    try:
        version = client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        return None, None
    value = version.tags.get(f"eval.{metric}")
    return (float(value) if value is not None else None), str(version.version)


def gate(client: MlflowClient, name: str, version: str, metrics: dict[str, float], cfg: RegistryConfig,
         erasure_pending: list[str] | tuple[str, ...] = ()) -> Decision:
    """Tag the candidate with its evaluation, compare it with the champion, move the alias if it wins.

    A model trained on data that erasure requests have since removed (`erasure_pending`: their ids)
    is never promoted, whatever its numbers: it is tagged so, and a retrain on the rebuilt data is
    the way to a new champion."""
    if cfg.gate_metric not in metrics:
        raise ValueError(f"registry.gate_metric={cfg.gate_metric!r} was not evaluated; evaluated: {', '.join(sorted(metrics))}")
    for key, value in metrics.items():
        client.set_model_version_tag(name, version, f"eval.{key}", repr(float(value)))
    champion_value, champion_version = _champion(client, name, cfg.gate_metric)
    decision = decide(cfg, float(metrics[cfg.gate_metric]), champion_value, champion_version)
    if erasure_pending:
        from tasks.governance.flags import PENDING

        client.set_model_version_tag(name, version, PENDING, ",".join(sorted(erasure_pending)))
        decision = Decision(False, decision.metric, decision.candidate, decision.champion, decision.champion_version,
                            f"trained on data erased since by {', '.join(sorted(erasure_pending))}: not promoted; "
                            "run the recipe again to train on the rebuilt data")
    for key, value in asdict(decision).items():
        client.set_model_version_tag(name, version, f"gate.{key}", "" if value is None else str(value))
    if decision.promote:
        client.set_registered_model_alias(name, CHAMPION, version)
    return decision


def recorded_decision(version) -> Decision:
    """The decision `gate` tagged on a model version when it was registered."""
    tags = version.tags

    def number(key: str) -> float | None:
        return float(tags[key]) if tags.get(key) not in (None, "") else None

    candidate = number("gate.candidate")
    return Decision(tags.get("gate.promote") == "True", tags.get("gate.metric", ""),
                    math.nan if candidate is None else candidate,
                    number("gate.champion"), tags.get("gate.champion_version") or None, tags.get("gate.reason", ""))
