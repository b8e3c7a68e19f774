"""The training GPUs' energy, read from NVML's counter on every rank and summed over the ranks.

NVML's total-energy counter (millijoules since the driver loaded; Volta and newer) is exact for
the device, whatever else runs on the host, and sees every node of a multi-node job, which a
counter on the driver's node cannot. Each rank reads the GPU it trains on at the start of
fitting and whenever a checkpoint is written; the sum over ranks travels in the checkpoint (this
callback's state), so a resumed run goes on counting where the last one stopped, like the budget
guard's device-seconds. Where a rank has no counter (CPU training, an older GPU, no NVML) the sum
is None, and the stage's GPU energy is estimated instead, with the method saying so.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

import lightning as L
import torch

STATE_KEY = "DeviceEnergy"
Reader = Callable[[], float]  # joules on this rank's device counter, from any fixed origin


def nvml_reader() -> Reader | None:
    """This process's current CUDA device's NVML energy counter, or None where there is none.

    The device is found by its PCI address: Ray Train shares CUDA_VISIBLE_DEVICES between the
    workers of a node, so CUDA's device index and NVML's (which ignores that variable) differ."""
    if not torch.cuda.is_available():
        return None
    try:
        import pynvml

        pynvml.nvmlInit()
        props = torch.cuda.get_device_properties(torch.cuda.current_device())
        bus = f"{props.pci_domain_id:08X}:{props.pci_bus_id:02X}:{props.pci_device_id:02X}.0"
        handle = pynvml.nvmlDeviceGetHandleByPciBusId(bus)
        pynvml.nvmlDeviceGetTotalEnergyConsumption(handle)  # NotSupported before Volta
    except Exception as exc:  # noqa: BLE001 - no library, no driver, no counter: estimated instead
        logging.getLogger(__name__).info("no NVML energy counter for this GPU (%s): its energy will be estimated", exc)
        return None
    return lambda: pynvml.nvmlDeviceGetTotalEnergyConsumption(handle) / 1000.0


class DeviceEnergy(L.Callback):
    """Joules used by the training devices of all ranks, over every attempt of the run."""

    def __init__(self, counter: Callable[[], Reader | None] = nvml_reader, share: float = 1.0) -> None:
        self.counter = counter  # called once fitting starts, when the strategy has chosen this rank's device
        # A rank's part of its device: Ray packs fractional GPUs (gpus_per_worker < 1) onto one
        # device, whose counter every rank on it reads; each then counts its share.
        self.share = min(1.0, share)
        self.reader: Reader | None = None
        self.before_j: float | None = 0.0  # all ranks' joules in earlier attempts (from the checkpoint resumed)
        self._start: float | None = None
        self._trainer: L.Trainer | None = None

    @property
    def state_key(self) -> str:
        return STATE_KEY

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._trainer = trainer
        self.reader = self.counter()
        self._start = self._read()

    def _read(self) -> float | None:
        """This rank's counter, or None if it fails: a rank must never miss the collective below."""
        if self.reader is None:
            return None
        try:
            return self.reader()
        except Exception:  # noqa: BLE001 - an NVML error: this attempt's energy is unknown, training goes on
            self.reader = None
            return None

    def total_j(self) -> float | None:
        """The sum over ranks so far. Collective: every rank calls it at the same point (a
        checkpoint is written by all ranks together), so that all take part in the reduction."""
        now = self._read() if self._start is not None else None
        mine = (now - self._start) * self.share if now is not None else None
        trainer = self._trainer
        if trainer is None:  # saved before fitting started: nothing measured in this attempt
            return self.before_j
        found = torch.tensor([0.0 if mine is None else mine, 1.0 if mine is None else 0.0], dtype=torch.float64)
        # On the strategy's device: NCCL reduces GPU tensors only, gloo CPU ones.
        summed = trainer.strategy.reduce(found.to(trainer.strategy.root_device), reduce_op="sum").cpu()
        if summed[1] > 0 or self.before_j is None:
            return None  # some rank has no counter: a partial sum would understate the energy
        return self.before_j + float(summed[0])

    def state_dict(self) -> dict[str, Any]:
        return {"joules": self.total_j()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        joules = state.get("joules")
        self.before_j = None if joules is None else float(joules)

    def on_load_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        if STATE_KEY not in (checkpoint.get("callbacks") or {}) and checkpoint.get("global_step", 0) > 0:
            self.before_j = None  # resumed from a checkpoint that did not count: the total is unknown
