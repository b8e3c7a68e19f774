"""The local Ray that Werk starts listens on loopback only, and its task map keeps input order and
reports progress."""

from __future__ import annotations

import ipaddress

import psutil
import pytest

from infra.ray_cluster import ray_map, ray_session
from tasks.ingest.clean import normalize

pytestmark = pytest.mark.slow


def _loopback(ip: str) -> bool:
    addr = ipaddress.ip_address(ip)
    mapped = getattr(addr, "ipv4_mapped", None)  # ::ffff:127.0.0.1
    return (mapped or addr).is_loopback


def test_local_ray_binds_loopback_and_maps_in_order(werk_home):
    with ray_session(min_cpus=2):
        # A function importable on the workers (Werk's own) with a distinct result per input, so
        # any reordering of results would show.
        texts = [f"  doc {i}  " for i in range(16)]
        heard: list[tuple[str, int, int, str]] = []
        assert ray_map(normalize, [(t,) for t in texts], max_in_flight=2,
                       on_progress=lambda *a: heard.append(a)) == [f"doc {i}" for i in range(16)]
        # Progress: one report per finished task, counting up to the total, with its result.
        assert [h[:3] for h in heard] == [("normalize", i, 16) for i in range(1, 17)]
        assert sorted(h[3] for h in heard) == sorted(f"doc {i}" for i in range(16))
        ours = {p.pid for p in psutil.Process().children(recursive=True)}
        listening = [c for c in psutil.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN and c.pid in ours]
        assert listening, "expected Ray's servers among this process's children"
        exposed = [(c.laddr.ip, c.laddr.port, psutil.Process(c.pid).name()) for c in listening
                   if not _loopback(c.laddr.ip)]
        assert not exposed, f"listening beyond loopback: {exposed}"


def test_a_second_local_ray_for_another_home_starts(tmp_path, monkeypatch):
    """Ray keeps the token it first read for the life of the process; a notebook or a test session
    that runs the pipeline for a second WERK_HOME starts a Ray whose token is another file."""
    for name in ("first", "second"):
        monkeypatch.setenv("WERK_HOME", str(tmp_path / name))
        monkeypatch.delenv("RAY_AUTH_TOKEN_PATH", raising=False)
        with ray_session():
            assert ray_map(normalize, [(" x ",)]) == ["x"]
        assert (tmp_path / name / "ray" / "auth_token").is_file()


def test_a_run_starts_its_own_ray_beside_another_ray_on_the_machine(werk_home, tmp_path):
    """Another Ray on the machine leaves its address in Ray's temporary folder, where a plain
    `ray.init()` would find and join it (and refuse the CPU count Werk asks for)."""
    import ray
    from ray.cluster_utils import Cluster

    other = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "node_ip_address": "127.0.0.1",
                                                           "include_dashboard": False})
    try:
        with ray_session(min_cpus=2):
            assert ray.get_runtime_context().gcs_address != other.address
            assert ray_map(normalize, [(" y ",)]) == ["y"]
    finally:
        other.shutdown()


def test_stages_of_one_flow_share_one_ray(werk_home):
    """The first stage that needs Ray starts it with the CPUs the flow's largest stage needs; the
    next stages reuse it; the flow's end stops it. A flow whose stages need no Ray starts none."""
    import ray

    from infra.ray_cluster import shared_ray

    with shared_ray(min_cpus=3):
        assert not ray.is_initialized()
    assert not ray.is_initialized()
    with shared_ray(min_cpus=3):
        with ray_session():
            first = ray.get_runtime_context().gcs_address
            assert ray.cluster_resources()["CPU"] >= 3
        assert ray.is_initialized()
        with ray_session(min_cpus=2):
            assert ray.get_runtime_context().gcs_address == first
            assert ray_map(normalize, [(" z ",)]) == ["z"]
    assert not ray.is_initialized()
