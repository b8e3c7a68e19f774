"""Per-step training metrics from rank 0: step time, tokens/s over all workers, MFU, GPU memory.

Measured over each logging interval, with validation time left out, so the figures describe
training alone. MFU is logged only when the device's peak is known (a GPU in the table of
`mfu.py`, or `compute.peak_tflops`).
"""

from __future__ import annotations

import time

import lightning as L
import torch


class StepMetrics(L.Callback):
    def __init__(self, every_n_steps: int, tokens_per_step: int, flops_per_token: float,
                 peak_flops_total: float | None) -> None:
        self.every = every_n_steps
        self.tokens_per_step = tokens_per_step
        self.flops_per_token = flops_per_token
        self.peak = peak_flops_total
        self._t0: float | None = None
        self._step0 = 0
        self._paused = 0.0
        self._val_start: float | None = None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if self._t0 is None:
            self._t0, self._step0, self._paused = time.perf_counter(), trainer.global_step, 0.0

    def on_validation_start(self, trainer, pl_module) -> None:
        self._val_start = time.perf_counter()

    def on_validation_end(self, trainer, pl_module) -> None:
        if self._val_start is not None:
            self._paused += time.perf_counter() - self._val_start
            self._val_start = None

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        steps = trainer.global_step - self._step0
        if self._t0 is None or steps < self.every:
            return
        elapsed = time.perf_counter() - self._t0 - self._paused
        tokens_per_sec = self.tokens_per_step * steps / elapsed
        metrics = {
            "perf/step_time_s": elapsed / steps,
            "perf/tokens_per_sec": tokens_per_sec,
            "perf/tokens_seen": float(trainer.global_step * self.tokens_per_step),
        }
        if self.peak:
            metrics["perf/mfu"] = self.flops_per_token * tokens_per_sec / self.peak
        if torch.cuda.is_available() and pl_module.device.type == "cuda":
            metrics["perf/gpu_mem_peak_gib"] = torch.cuda.max_memory_allocated(pl_module.device) / 2**30
            metrics["perf/gpu_mem_reserved_gib"] = torch.cuda.memory_reserved(pl_module.device) / 2**30
            torch.cuda.reset_peak_memory_stats(pl_module.device)
        pl_module.log_dict(metrics, rank_zero_only=True)
        self._t0, self._step0, self._paused = time.perf_counter(), trainer.global_step, 0.0
