"""What the driver does with each training status rank 0 sends (`tasks/training/progress.py`):
move the Prefect progress artifact, write the milestones to the task's run log, and tell whoever
watches the run (the terminal view) the step, loss, val bits per byte, tokens/s and time left."""

from __future__ import annotations

import logging
import time

from flows.events import Notice, Work, emit
from flows.run_report import WorkProgress
from flows.terminal import duration
from tasks.training.progress import TrainStatus


class TrainingWatch:
    """Called from the training watcher's thread with each new `TrainStatus`."""

    def __init__(self, max_steps: int, progress: WorkProgress, logger: logging.Logger | logging.LoggerAdapter) -> None:
        self.max_steps, self.progress, self.logger = max_steps, progress, logger
        self._first: tuple[float, int] | None = None  # (time, step) of the first status with steps

    def eta_s(self, step: int, now: float) -> float | None:
        """Seconds left at the pace since the first status (resumed steps do not count)."""
        if self._first is None:
            return None
        t0, step0 = self._first
        if step <= step0 or now <= t0:
            return None
        return (self.max_steps - step) * (now - t0) / (step - step0)

    def __call__(self, status: TrainStatus) -> None:
        now = time.monotonic()
        if self._first is None:
            self._first = (now, status.step)
        self.progress.set(status.step / self.max_steps)
        for note in status.notes:
            if note in status.warnings:
                self.logger.warning("pretrain: %s", note)
                emit(Notice("pretrain", "warning", note))
            else:
                self.logger.info("pretrain: %s", note)
        figures = []
        if status.loss is not None:
            figures.append(("loss", f"{status.loss:.4f}"))
        if status.val_bpb is not None:
            figures.append(("val bpb", f"{status.val_bpb:.4f} @{status.val_step}"))
        elif status.val_loss is not None:
            figures.append(("val loss", f"{status.val_loss:.4f} @{status.val_step}"))
        if status.tokens_per_s:
            figures.append(("tokens/s", f"{status.tokens_per_s:,.0f}"))
        eta = self.eta_s(status.step, now)
        if eta is not None:
            figures.append(("ETA", duration(eta)))
        emit(Work("pretrain", status.step, self.max_steps, "steps", tuple(figures)))
