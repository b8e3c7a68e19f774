"""The Kubernetes manifests in `infra/k8s/` hold what `docs/kubernetes.md` promises: every file the
kustomization names exists and parses; Services are ClusterIP only; every credential reaches a
container from the `werk-secrets` Secret, never as a literal; every Secret key used is one the
docs tell users to create; every container has resource limits; the Ray dashboard stays on the
pod's loopback; the Ray version matches the one Werk installs."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Iterator

import yaml

K8S = Path(__file__).resolve().parents[1] / "infra" / "k8s"
DOCS = Path(__file__).resolve().parents[1] / "docs" / "kubernetes.md"
SECRET_NAME = re.compile(r"(KEY|SECRET|TOKEN|PASSWORD|AUTH_STRING|DATABASE_URL|CONNECTION_URL)$")


def _documents() -> list[dict[str, Any]]:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    docs = []
    for name in kustomization["resources"]:
        docs += [d for d in yaml.safe_load_all((K8S / name).read_text()) if d]
    return docs


def _containers(doc: dict[str, Any]) -> Iterator[dict[str, Any]]:
    spec = doc.get("spec", {})
    templates = [spec.get("template")] if doc["kind"] == "Deployment" else []
    if doc["kind"] == "RayCluster":
        templates = [spec["headGroupSpec"]["template"], *(g["template"] for g in spec["workerGroupSpecs"])]
    for template in templates:
        yield from template["spec"]["containers"]


def test_every_resource_parses_and_is_named():
    docs = _documents()
    kinds = {d["kind"] for d in docs}
    assert {"RayCluster", "Deployment", "Service", "ConfigMap"} <= kinds
    assert all(d.get("apiVersion") and d.get("metadata", {}).get("name") for d in docs)


def test_services_stay_inside_the_cluster():
    services = [d for d in _documents() if d["kind"] == "Service"]
    assert services and all(s["spec"].get("type", "ClusterIP") == "ClusterIP" for s in services)


def test_credentials_come_only_from_the_documented_secret():
    documented = set(re.findall(r"--from-literal=([a-z0-9-]+)=", DOCS.read_text()))
    used = set()
    for doc in _documents():
        for container in _containers(doc):
            for var in container.get("env", []):
                if SECRET_NAME.search(var["name"]):
                    ref = var.get("valueFrom", {}).get("secretKeyRef")
                    assert ref and ref["name"] == "werk-secrets" and "value" not in var, (container["name"], var["name"])
                    used.add(ref["key"])
    assert used and used <= documented, used - documented


def test_containers_have_limits_and_ray_keeps_its_dashboard_private():
    from importlib.metadata import version

    docs = _documents()
    for doc in docs:
        for container in _containers(doc):
            assert container.get("resources", {}).get("limits"), container["name"]
    (ray,) = [d for d in docs if d["kind"] == "RayCluster"]
    assert ray["spec"]["headGroupSpec"]["rayStartParams"]["dashboard-host"] == "127.0.0.1"
    assert ray["spec"]["rayVersion"] == version("ray")


def test_mlflow_server_starts_with_an_admin_password_and_no_job_execution():
    """MLflow's basic-auth app refuses to start without an admin password; job execution stays off."""
    (mlflow,) = [c for d in _documents() for c in _containers(d) if "mlflow server" in " ".join(c.get("args", []))]
    assert "--app-name basic-auth" in " ".join(mlflow["args"])
    env = {v["name"]: v for v in mlflow["env"]}
    assert env["MLFLOW_AUTH_ADMIN_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "werk-secrets"
    assert env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"]["value"] == "false"
    config = {d["metadata"]["name"]: d for d in _documents() if d["kind"] == "ConfigMap"}["werk-config"]
    assert "default_permission = NO_PERMISSIONS" in config["data"]["mlflow-auth.ini"]
