"""What a stage cost: measured where a counter exists, estimated with its method named elsewhere."""

from __future__ import annotations

import pytest

from tasks.stage_record import ComputeUse
from tasks.tracking.compute import energy, metered, metrics, total


def _rapl(root, uj: int, max_uj: int = 1_000_000_000) -> None:
    for pkg in ("intel-rapl:0", "intel-rapl:1"):
        d = root / pkg
        d.mkdir(parents=True, exist_ok=True)
        (d / "energy_uj").write_text(str(uj))
        (d / "max_energy_range_uj").write_text(str(max_uj))
    sub = root / "intel-rapl:0" / "intel-rapl:0:0"  # a sub-domain (core): inside its package's count
    sub.mkdir(exist_ok=True)
    (sub / "energy_uj").write_text("123")
    psys = root / "intel-rapl:2"  # the platform zone: it contains the packages, so it is not added
    psys.mkdir(exist_ok=True)
    (psys / "name").write_text("psys\n")
    (psys / "energy_uj").write_text(str(uj * 7))
    (psys / "max_energy_range_uj").write_text(str(max_uj * 7))


def test_rapl_energy_is_measured_over_the_block_and_survives_a_counter_wrap(tmp_path):
    _rapl(tmp_path, 900_000_000)
    with metered(tmp_path) as used:
        _rapl(tmp_path, 950_000_000)  # +50 J per package
        first = used()
        _rapl(tmp_path, 10_000_000)  # each package's counter wrapped: +110 J since the start
        second = used()
    assert first.energy_source == "rapl" and first.energy_j == pytest.approx(100.0)
    assert second.energy_j == pytest.approx(220.0)
    assert second.wall_s >= first.wall_s >= 0 and second.cpu_s >= 0
    spent = energy(second, 10.0, None, 1.0, 250.0)
    assert spent.kwh == pytest.approx(220.0 / 3.6e6) and spent.method.startswith("measured: RAPL")
    assert spent.co2_kg == pytest.approx(spent.kwh * 0.25)
    on_gpus = second.model_copy(update={"device": "gpu", "device_s": 3600.0})
    assert energy(on_gpus, 10.0, 700.0, 1.0, None).kwh == pytest.approx((220.0 + 3600 * 700) / 3.6e6)
    assert energy(on_gpus, 10.0, None, 1.0, None).kwh is None  # the GPUs' share is not RAPL's to measure


def test_without_a_counter_energy_is_estimated_and_says_how(tmp_path):
    with metered(tmp_path / "none") as used:
        sum(i * i for i in range(200_000))
        use = used()
    assert use.energy_j is None and use.cpu_s > 0
    spent = energy(use, 10.0, None, 1.0, None)
    assert spent.kwh == pytest.approx(use.cpu_s * 10.0 / 3.6e6) and "estimated" in spent.method
    assert spent.co2_kg is None  # no grid intensity given: no CO2 figure
    training = ComputeUse(wall_s=100, cpu_s=10, device_s=200, device="cpu-worker", flops=1e12)
    spent = energy(training, 10.0, None, 2.0, 100.0)
    assert spent.kwh == pytest.approx((10 * 10 + 200 * 2 * 10) / 3.6e6)
    assert "200 worker-s x 2 cores x 10 W" in spent.method
    gpu = ComputeUse(wall_s=100, cpu_s=10, device_s=3600, device="gpu")
    assert energy(gpu, 10.0, None, 1.0, 100.0).kwh is None  # no GPU power given: no guess
    assert energy(gpu, 10.0, 700.0, 1.0, 100.0).kwh == pytest.approx((100 + 3600 * 700) / 3.6e6)


def test_a_model_s_cost_sums_its_stages_and_leaves_out_what_is_unknown():
    a = ComputeUse(wall_s=10, cpu_s=20)
    b = ComputeUse(wall_s=30, cpu_s=5, device_s=7200, device="cpu-worker", flops=3e15)
    spent = [(a, energy(a, 10, None, 1, 200)), (b, energy(b, 10, None, 1, 200))]
    cost = total(spent)
    assert cost["wall_s"] == 40 and cost["device_hours"] == 2 and cost["flops"] == 3e15
    assert cost["energy_kwh"] == pytest.approx(sum(e.kwh for _, e in spent))
    assert cost["co2_kg"] == pytest.approx(cost["energy_kwh"] * 0.2)
    unknown = total(spent + [(None, energy(None, 10, None, 1, 200))])
    assert "energy_kwh" not in unknown and "not recorded" in unknown["energy_method"]
    assert metrics(b, spent[1][1])["compute/device_hours"] == 2 and metrics(None, spent[0][1]) == {}


def test_codecarbon_offline_measures_the_host_and_gives_the_country_s_grid(tmp_path):
    from codecarbon.input import DataSource

    from tasks.tracking.compute import EnergyMeter, use_meter

    with use_meter(EnergyMeter(country_iso_code="FRA")), metered(tmp_path / "no-rapl") as used:
        sum(i * i for i in range(300_000))
        use = used()
    assert use.energy_source == "codecarbon" and use.energy_j > 0
    assert "CodeCarbon" in use.energy_method and "(FRA)" in use.energy_method
    france = DataSource().get_global_energy_mix_data()["FRA"]["carbon_intensity"]
    assert use.grid_gco2_per_kwh == pytest.approx(france, rel=1e-6)
    spent = energy(use, 10.0, None, 1.0, None)
    assert spent.kwh == pytest.approx(use.energy_j / 3.6e6)
    assert spent.co2_kg == pytest.approx(spent.kwh * france / 1000) and "CodeCarbon's" in spent.method
    assert energy(use, 10.0, None, 1.0, 20.0).co2_kg == pytest.approx(spent.kwh * 0.02)  # the recipe's figure wins
    # Outside the block the default meter is back: no CodeCarbon.
    with metered(tmp_path / "no-rapl") as used:
        assert used().energy_source is None


def test_gpu_energy_from_nvml_is_added_to_the_host_s_and_named():
    host = ComputeUse(wall_s=100, cpu_s=10, device_s=7200, device="gpu", energy_j=1000.0, energy_source="rapl",
                      device_energy_j=2.5e6, device_energy_source="nvml")
    spent = energy(host, 10.0, 700.0, 1.0, None)
    assert spent.kwh == pytest.approx((1000.0 + 2.5e6) / 3.6e6)  # the counter, not 7200 GPU-s x 700 W
    assert "NVML" in spent.method and "estimated" not in spent.method
    unmeasured = host.model_copy(update={"device_energy_j": None, "device_energy_source": None})
    assert energy(unmeasured, 10.0, 700.0, 1.0, None).kwh == pytest.approx((1000.0 + 7200 * 700) / 3.6e6)
    assert "set compute.gpu_watts" in energy(unmeasured, 10.0, None, 1.0, None).method


def test_the_recipe_names_a_country_codecarbon_knows():
    from pydantic import ValidationError

    from tasks.training.config import ComputeConfig

    assert ComputeConfig(country_iso_code="DEU").energy().country_iso_code == "DEU"
    with pytest.raises(ValidationError, match="not in CodeCarbon's energy-mix data"):
        ComputeConfig(country_iso_code="XYZ")
    with pytest.raises(ValidationError, match="needs compute.country_iso_code"):
        ComputeConfig(energy_meter="codecarbon")
