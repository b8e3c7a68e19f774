"""The promotion gate on a real MLflow registry: the first model becomes champion, a better one
takes over, a worse one (or one inside the margin) is refused; every decision is tagged."""

from __future__ import annotations

import pytest

from tasks.registry.config import RegistryConfig
from tasks.registry.gate import decide, gate


@pytest.fixture
def registry(tmp_path):
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}",
                          registry_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    client.create_registered_model("werk-test")
    (tmp_path / "model").mkdir()

    def new_version() -> str:
        return str(client.create_model_version("werk-test", str(tmp_path / "model")).version)

    return client, new_version


def _champion(client) -> str:
    return str(client.get_model_version_by_alias("werk-test", "champion").version)


def test_gate_promotes_better_models_and_refuses_worse_ones(registry):
    client, new_version = registry
    cfg = RegistryConfig(gate_metric="bits_per_byte", min_improvement=0.01)

    v1 = new_version()
    first = gate(client, "werk-test", v1, {"bits_per_byte": 2.50, "loss": 3.0}, cfg)
    assert first.promote and first.reason == "no champion yet" and _champion(client) == v1

    v2 = new_version()
    better = gate(client, "werk-test", v2, {"bits_per_byte": 2.40, "loss": 2.9}, cfg)
    assert better.promote and better.champion == 2.50 and better.champion_version == v1
    assert _champion(client) == v2

    v3 = new_version()
    worse = gate(client, "werk-test", v3, {"bits_per_byte": 2.45, "loss": 2.95}, cfg)
    assert not worse.promote and _champion(client) == v2
    v4 = new_version()
    within_margin = gate(client, "werk-test", v4, {"bits_per_byte": 2.395, "loss": 2.9}, cfg)
    assert not within_margin.promote and _champion(client) == v2

    tags = client.get_model_version("werk-test", v3).tags
    assert tags["gate.promote"] == "False" and tags["gate.champion"] == "2.4" and tags["gate.champion_version"] == v2
    assert "does not beat champion" in tags["gate.reason"] and tags["eval.bits_per_byte"] == "2.45"
    assert client.get_model_version("werk-test", v2).tags["gate.promote"] == "True"


def test_accuracy_gates_prefer_higher_values():
    cfg = RegistryConfig(gate_metric="hamlet-cloze/acc")
    assert decide(cfg, 0.6, 0.5, "1").promote
    assert not decide(cfg, 0.4, 0.5, "1").promote
    assert not decide(cfg, 0.5, 0.5, "1").promote  # a tie does not move the champion


def test_gate_refuses_non_finite_or_incomparable_candidates(registry):
    cfg = RegistryConfig()
    assert not decide(cfg, float("nan"), None, None).promote
    assert not decide(cfg, 2.0, None, "3").promote  # champion without the metric: no silent promotion
    client, new_version = registry
    with pytest.raises(ValueError, match="gate_metric='bits_per_byte' was not evaluated"):
        gate(client, "werk-test", new_version(), {"loss": 1.0}, cfg)


def test_an_unknown_gate_metric_is_refused_in_the_recipe():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="gate_metric"):
        RegistryConfig(gate_metric="accuracy!")
