"""What a stage cost: wall time, CPU-seconds, device-hours, FLOPs, and energy, measured or estimated.

Measured here, on the driver: wall time, the driver's CPU time, and the CPU time of every Ray task
the stage ran (`infra/ray_cluster.py` counts it as tasks finish). Training adds its device-seconds
(counted by its budget guard, across every attempt) and its FLOPs. Energy is measured where the
machine exposes a counter: Intel RAPL (`/sys/class/powercap`, the driver node's CPU packages:
exact for a single-node job alone on its machine, an upper bound on a shared one, and blind to
other nodes and to GPUs, whose share is then estimated on top) over the stage's wall time.
Elsewhere it is estimated from what was measured (`energy`), and the method is always stated
with the figure. CO2eq is the energy times the grid intensity the recipe gives; none without it.
"""

from __future__ import annotations

import functools
import threading
import time
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Callable, Iterator

from pydantic import BaseModel, ConfigDict

from tasks.stage_record import ComputeUse

RAPL = Path("/sys/class/powercap")


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
    counter = _rapl(rapl)

    def used(device_s: float = 0.0, device: str | None = None, flops: float | None = None) -> ComputeUse:
        energy = counter.sample() if counter else None
        return ComputeUse(wall_s=time.monotonic() - start_wall,
                          cpu_s=time.process_time() - start_cpu + ray_cluster.task_cpu_seconds() - start_tasks,
                          device_s=device_s, device=device, flops=flops, energy_j=energy,
                          energy_source="rapl" if energy is not None else None)

    token = _ACTIVE.set(used)
    try:
        yield used
    finally:
        _ACTIVE.reset(token)
        if counter:
            counter.stop()


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
    if use.energy_j is not None:
        joules, method = use.energy_j, "measured: RAPL CPU package energy of the driver's node over the stage's wall time"
        if use.device == "gpu" and use.device_s:  # the GPUs are not in RAPL's count
            if gpu_watts is None:
                return Energy(kwh=None, method=method + "; GPU energy not estimated: set compute.gpu_watts", co2_kg=None)
            joules += use.device_s * gpu_watts
            method += f" + estimated {use.device_s:,.0f} GPU-s x {gpu_watts:g} W"
        kwh = joules / 3.6e6
    else:
        joules = use.cpu_s * cpu_watts_per_core
        method = f"estimated: {use.cpu_s:,.0f} CPU-s x {cpu_watts_per_core:g} W per core"
        if use.device == "cpu-worker" and use.device_s:
            joules += use.device_s * cpus_per_worker * cpu_watts_per_core
            method += f" + {use.device_s:,.0f} worker-s x {cpus_per_worker:g} cores x {cpu_watts_per_core:g} W"
        elif use.device == "gpu" and use.device_s:
            if gpu_watts is None:
                return Energy(kwh=None, method="not estimated: GPU energy needs compute.gpu_watts", co2_kg=None)
            joules += use.device_s * gpu_watts
            method += f" + {use.device_s:,.0f} GPU-s x {gpu_watts:g} W"
        kwh = joules / 3.6e6
    co2 = kwh * grid_gco2_per_kwh / 1000 if grid_gco2_per_kwh is not None else None
    return Energy(kwh=kwh, method=method, co2_kg=co2)
