"""What a stage cost: wall time, CPU-seconds, device-hours, FLOPs, and energy, measured or estimated.

Measured here, on the driver: wall time, the driver's CPU time, and the CPU time of every Ray task
the stage ran (`infra/ray_cluster.py` counts it as tasks finish). Training adds its device-seconds
(counted by its budget guard, across every attempt), its FLOPs and, on GPUs, the energy NVML's
counters report for every rank's device (`tasks/training/device_energy.py`).

The host's energy (the driver node's CPUs, and its RAM with CodeCarbon) over the stage's wall
time comes from the meter the recipe chooses (`compute.energy_meter`, set once per flow run with
`use_meter`): CodeCarbon's offline tracker for a configured country (RAPL where readable, else
its CPU-load and TDP model, plus its RAM model; its country's grid intensity is kept for CO2eq),
or Intel RAPL read directly (`/sys/class/powercap`, the CPU packages: exact for a job alone on
its node, an upper bound on a shared one). Both are blind to other nodes and to GPUs, whose
share is added from NVML or estimated (`energy`). Where no counter is read, energy is estimated
from what was measured, and the method is always stated with the figure. CO2eq is the energy
times the recipe's grid intensity, else CodeCarbon's for the country; none without either.

Wall time, CPU time and host energy cover the attempt that finished the stage (an interrupted
earlier attempt's share is not counted); training's device-seconds and GPU energy cover every
attempt, since they travel in its checkpoints.
"""

from __future__ import annotations

import functools
import threading
import time
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Callable, Iterator

import logging
from typing import Literal

from pydantic import BaseModel, ConfigDict

from tasks.stage_record import ComputeUse

RAPL = Path("/sys/class/powercap")
MeterKind = Literal["auto", "codecarbon", "rapl", "estimate"]


class EnergyMeter(BaseModel):
    """How a stage's host energy is read: `auto` is CodeCarbon with a country, else RAPL where
    readable, else an estimate."""

    model_config = ConfigDict(frozen=True)

    kind: MeterKind = "auto"
    country_iso_code: str | None = None


# Process-wide, not a context variable: Prefect may run a task in another thread than its flow's.
# Set once per flow run from its recipe (`use_meter`); the default reads RAPL where it can.
_METER = [EnergyMeter()]


@contextmanager
def use_meter(meter: EnergyMeter) -> Iterator[None]:
    """Stages measured inside this block read their host energy with `meter`."""
    before, _METER[0] = _METER[0], meter
    try:
        yield
    finally:
        _METER[0] = before


class Energy(BaseModel):
    model_config = ConfigDict(frozen=True)

    kwh: float | None
    method: str
    co2_kg: float | None


def _packages(root: Path = RAPL) -> list[Path]:
    """The CPU package zones (`intel-rapl:N`, not their sub-zones, not the platform's `psys`)."""
    if not root.is_dir():
        return []
    zones = [p for p in root.glob("intel-rapl:*") if p.name.count(":") == 1]
    return [p for p in zones if not (p / "name").exists() or (p / "name").read_text().strip() != "psys"]


class _Rapl:
    """Energy of this node's CPU packages since it started, read per package so that each
    counter's wrap (every half hour or so under load) is corrected on its own; sampled every
    `every_s` seconds in the background, so a long stage sees every wrap."""

    def __init__(self, root: Path, every_s: float = 30.0) -> None:
        self.zones = _packages(root)
        self.ranges = [int((z / "max_energy_range_uj").read_text()) for z in self.zones]
        self.last = self._read()
        self.total_uj = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, args=(every_s,), name="werk-rapl", daemon=True)
        self._thread.start()

    def _read(self) -> list[int]:
        return [int((z / "energy_uj").read_text()) for z in self.zones]

    def sample(self) -> float:
        """Joules so far."""
        with self._lock:
            now = self._read()
            for i, (a, b) in enumerate(zip(self.last, now)):
                self.total_uj += b - a if b >= a else b - a + self.ranges[i]
            self.last = now
            return self.total_uj / 1e6

    def _run(self, every_s: float) -> None:
        while not self._stop.wait(every_s):
            self.sample()

    def stop(self) -> None:
        self._stop.set()


def _rapl(root: Path) -> _Rapl | None:
    try:
        return _Rapl(root) if _packages(root) else None
    except (OSError, ValueError):  # present but not readable (most containers): no measurement
        return None


class HostReading(BaseModel):
    model_config = ConfigDict(frozen=True)

    joules: float
    source: str  # "rapl" or "codecarbon"
    method: str
    grid_gco2_per_kwh: float | None = None


class _CodeCarbon:
    """CodeCarbon's offline tracker over one stage: the host's CPU and RAM energy (its GPU figure
    is left out: NVML's counters on every rank, or the estimate, count the GPUs of every node).
    Read once, when the stage publishes; later readings repeat that figure."""

    def __init__(self, country: str) -> None:
        from codecarbon import OfflineEmissionsTracker

        # No output: the figures go to the stage record and MLflow. `.codecarbon.config` and
        # CODECARBON_* variables still apply (a site's measured TDP, PUE), as CodeCarbon documents.
        self.tracker = OfflineEmissionsTracker(country_iso_code=country, output_methods=[], log_level="error",
                                               allow_multiple_runs=True, measure_power_secs=15)
        self.tracker.start()
        self.country = country
        self.reading: HostReading | None = None

    def read(self) -> HostReading | None:
        if self.reading is None:
            from codecarbon import __version__

            self.tracker.stop()
            data = self.tracker.final_emissions_data
            if data is None:
                return None
            kwh = data.cpu_energy + data.ram_energy
            modes = [getattr(h, "_mode", None) for h in getattr(self.tracker, "_hardware", [])]
            cpu = "RAPL" if "intel_rapl" in modes else "its CPU-load x TDP model" if "cpu_load" in modes else \
                "its constant-TDP model"
            # CodeCarbon's own emission factor for the country (kg/kWh of all the energy it counted).
            intensity = data.emissions / data.energy_consumed * 1000 if data.energy_consumed else None
            self.reading = HostReading(
                joules=kwh * 3.6e6, source="codecarbon", grid_gco2_per_kwh=intensity,
                method=f"measured: CodeCarbon {__version__} offline ({self.country}): host CPU by {cpu}, RAM by its model")
        return self.reading

    def stop(self) -> None:
        self.read()


class _RaplMeter:
    def __init__(self, counter: _Rapl) -> None:
        self.counter = counter

    def read(self) -> HostReading:
        return HostReading(joules=self.counter.sample(), source="rapl",
                           method="measured: RAPL CPU package energy of the driver's node over the stage's wall time")

    def stop(self) -> None:
        self.counter.stop()


def _host_meter(meter: EnergyMeter, rapl: Path) -> _CodeCarbon | _RaplMeter | None:
    if meter.kind == "estimate":
        return None
    if meter.kind in ("auto", "codecarbon") and meter.country_iso_code:
        try:
            return _CodeCarbon(meter.country_iso_code)
        except Exception as exc:  # noqa: BLE001 - a broken tracker must not fail the stage: said, then RAPL
            logging.getLogger(__name__).warning("CodeCarbon did not start (%s): energy read from RAPL or estimated", exc)
    counter = _rapl(rapl)
    return _RaplMeter(counter) if counter else None


_ACTIVE: ContextVar[Callable[..., ComputeUse] | None] = ContextVar("werk_compute_meter", default=None)


def so_far(**training: Any) -> ComputeUse | None:
    """The innermost running meter's reading (what `StageOutput.publish` records), or None."""
    used = _ACTIVE.get()
    return used(**training) if used else None


def measured(fn: Callable) -> Callable:
    """Run `fn` under a meter: the stage record it publishes says what it cost."""
    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        with metered():
            return fn(*args, **kwargs)
    return run


@contextmanager
def metered(rapl: Path = RAPL) -> Iterator[Callable[..., ComputeUse]]:
    """`with metered() as used: ...; use = used(device_s=..., flops=...)` measures the block so far."""
    from infra import ray_cluster

    start_wall, start_cpu, start_tasks = time.monotonic(), time.process_time(), ray_cluster.task_cpu_seconds()
    host = _host_meter(_METER[0], rapl)

    def used(device_s: float = 0.0, device: str | None = None, flops: float | None = None,
             device_energy_j: float | None = None) -> ComputeUse:
        read = host.read() if host else None
        return ComputeUse(wall_s=time.monotonic() - start_wall,
                          cpu_s=time.process_time() - start_cpu + ray_cluster.task_cpu_seconds() - start_tasks,
                          device_s=device_s, device=device, flops=flops,
                          energy_j=read.joules if read else None, energy_source=read.source if read else None,
                          energy_method=read.method if read else None,
                          grid_gco2_per_kwh=read.grid_gco2_per_kwh if read else None,
                          device_energy_j=device_energy_j, device_energy_source="nvml" if device_energy_j is not None else None)

    token = _ACTIVE.set(used)
    try:
        yield used
    finally:
        _ACTIVE.reset(token)
        if host:
            host.stop()


def metrics(use: ComputeUse | None, spent: Energy) -> dict[str, float]:
    """MLflow metrics of one stage's cost (`compute/...`); none for what was not recorded."""
    if use is None:
        return {}
    found = {"compute/wall_s": use.wall_s, "compute/cpu_s": use.cpu_s, "compute/device_hours": use.device_s / 3600}
    if use.flops is not None:
        found["compute/flops"] = use.flops
    if spent.kwh is not None:
        found["compute/energy_kwh"] = spent.kwh
    if spent.co2_kg is not None:
        found["compute/co2_kg"] = spent.co2_kg
    return found


def total(spent: list[tuple[ComputeUse | None, Energy]]) -> dict[str, float | str]:
    """A model's cost: the sum over the stage outputs it was made from. A figure missing for any
    stage is left out of the sum, and the methods say which stages were measured or estimated."""
    uses = [u for u, _ in spent if u is not None]
    out: dict[str, float | str] = {
        "wall_s": sum(u.wall_s for u in uses), "cpu_s": sum(u.cpu_s for u in uses),
        "device_hours": sum(u.device_s for u in uses) / 3600, "flops": sum(u.flops or 0.0 for u in uses)}
    if all(e.kwh is not None for _, e in spent):
        out["energy_kwh"] = sum(e.kwh for _, e in spent)
    if all(e.co2_kg is not None for _, e in spent):
        out["co2_kg"] = sum(e.co2_kg for _, e in spent)
    methods = sorted({e.method.split(":")[0] for _, e in spent})
    out["energy_method"] = ", ".join(methods)
    return out


def energy(use: ComputeUse | None, cpu_watts_per_core: float, gpu_watts: float | None, cpus_per_worker: float,
           grid_gco2_per_kwh: float | None) -> Energy:
    """kWh and CO2eq of a stage: measured where it was, else estimated, with the method named."""
    if use is None:
        return Energy(kwh=None, method="not recorded (an output made before Werk measured compute)", co2_kg=None)
    gpus = use.device == "gpu" and use.device_s > 0
    if use.energy_j is not None:
        joules = use.energy_j
        method = use.energy_method or "measured: RAPL CPU package energy of the driver's node over the stage's wall time"
    else:
        joules = use.cpu_s * cpu_watts_per_core
        method = f"estimated: {use.cpu_s:,.0f} CPU-s x {cpu_watts_per_core:g} W per core"
        if use.device == "cpu-worker" and use.device_s:
            joules += use.device_s * cpus_per_worker * cpu_watts_per_core
            method += f" + {use.device_s:,.0f} worker-s x {cpus_per_worker:g} cores x {cpu_watts_per_core:g} W"
    if gpus and use.device_energy_j is not None:  # the GPUs are in no host counter: NVML's, summed over ranks
        joules += use.device_energy_j
        method += "; GPUs measured: NVML energy counters of every rank's device"
    elif gpus and gpu_watts is not None:
        joules += use.device_s * gpu_watts
        method += f"; GPUs estimated: {use.device_s:,.0f} GPU-s x {gpu_watts:g} W"
    elif gpus:
        return Energy(kwh=None, method=method + "; GPU energy neither measured (no NVML counter) nor estimated: set "
                      "compute.gpu_watts", co2_kg=None)
    kwh = joules / 3.6e6
    intensity = grid_gco2_per_kwh if grid_gco2_per_kwh is not None else use.grid_gco2_per_kwh
    if grid_gco2_per_kwh is None and intensity is not None:
        method += f"; CO2eq at CodeCarbon's {intensity:.0f} g/kWh for the country"
    co2 = kwh * intensity / 1000 if intensity is not None else None
    return Energy(kwh=kwh, method=method, co2_kg=co2)
