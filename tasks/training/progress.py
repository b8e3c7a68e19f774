"""Training progress for whoever launched the job: rank 0's numbers and milestones.

The driver is blocked in `TorchTrainer.fit()` and the workers are other processes, possibly on
other nodes. Rank 0 sends its latest numbers (step, loss, val loss and bits per byte, tokens/s)
to a small named Ray actor at most once a second, and each milestone (a validation, a
checkpoint, a resume, a skipped step, a rollback) as it happens; fire and forget, never waiting on
the driver. A driver thread reads the actor every few seconds and hands a `TrainStatus` to a
callback (the Prefect wrapper turns it into a progress artifact, run-log lines and the terminal
view). Nothing here knows Prefect.
"""

from __future__ import annotations

import contextvars
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import lightning as L
import ray

NUMBERS = ("step", "loss", "val_loss", "val_bpb", "val_step", "tokens_per_s")


@dataclass(frozen=True)
class TrainStatus:
    """Rank 0's latest numbers, and the milestones reported since the previous status."""

    step: int = 0
    loss: float | None = None
    val_loss: float | None = None
    val_bpb: float | None = None
    val_step: int | None = None  # the step of the last validation
    tokens_per_s: float | None = None
    notes: tuple[str, ...] = field(default=())
    warnings: tuple[str, ...] = field(default=())  # milestones a user should see: skips, rollbacks


OnStatus = Callable[[TrainStatus], None]


@ray.remote(num_cpus=0)
class TrainBoard:
    """Size: one dict of numbers and the run's milestones (a few per validation interval)."""

    def __init__(self) -> None:
        self.numbers: dict[str, Any] = {"step": 0}
        self.notes: list[tuple[str, bool]] = []  # (text, is a warning)

    def report(self, numbers: dict[str, Any], notes: list[tuple[str, bool]]) -> None:
        if numbers.get("step", 0) >= self.numbers["step"]:  # a late message never moves it back
            self.numbers.update({k: v for k, v in numbers.items() if v is not None})
        self.notes.extend(notes)

    def read(self, since: int) -> tuple[dict[str, Any], list[tuple[str, bool]], int]:
        return dict(self.numbers), self.notes[since:], len(self.notes)


@contextmanager
def watch_training(actor_name: str, on_status: OnStatus, every_s: float = 2.0) -> Iterator[str]:
    """While the body runs, call `on_status` each time rank 0's numbers change or milestones
    arrive (and once more at the end). Yields the actor's name for the job. `on_status` runs in a
    thread that carries the caller's context variables (Prefect's run context lives there); its
    errors are not fatal."""
    board = TrainBoard.options(name=actor_name).remote()
    done = threading.Event()
    seen: dict[str, Any] = {}
    read = 0

    def poll() -> None:
        nonlocal seen, read
        try:
            numbers, notes, read_now = ray.get(board.read.remote(read), timeout=30)
            if numbers != seen or notes:
                seen, read = numbers, read_now
                on_status(TrainStatus(**{k: numbers.get(k) for k in NUMBERS if k in numbers},
                                      notes=tuple(n for n, _ in notes), warnings=tuple(n for n, w in notes if w)))
        except Exception:  # progress is a convenience: never let it break training
            pass

    def loop() -> None:
        while not done.wait(every_s):
            poll()

    context = contextvars.copy_context()
    thread = threading.Thread(target=context.run, args=(loop,), name="werk-train-progress", daemon=True)
    thread.start()
    try:
        yield actor_name
    finally:
        done.set()
        thread.join(every_s + 35)
        if not thread.is_alive():  # a context runs in one thread at a time
            context.run(poll)
        ray.kill(board)


def _number(metrics: dict[str, Any], name: str) -> float | None:
    value = metrics.get(name)
    return None if value is None else float(value)


class ReportProgress(L.Callback):
    """Rank 0 tells the board its numbers at most every `every_s` seconds, and each milestone at
    once."""

    def __init__(self, actor_name: str, namespace: str | None, every_s: float = 1.0) -> None:
        self.actor_name, self.namespace, self.every_s = actor_name, namespace, every_s
        self._board = None
        self._guard = None  # the trainer's GradientGuard, found at train start
        self._last = 0.0
        self._skipped = self._rollbacks = 0
        self._val: tuple[float | None, float | None, int | None] = (None, None, None)

    def _numbers(self, trainer: L.Trainer) -> dict[str, Any]:
        m = trainer.callback_metrics
        val_loss, val_bpb, val_step = self._val
        return {"step": trainer.global_step, "loss": _number(m, "train/loss"), "val_loss": val_loss,
                "val_bpb": val_bpb, "val_step": val_step, "tokens_per_s": _number(m, "perf/tokens_per_sec")}

    def _send(self, trainer: L.Trainer, notes: list[tuple[str, bool]] = ()) -> None:
        if self._board is None:
            self._board = ray.get_actor(self.actor_name, namespace=self.namespace)
        self._board.report.remote(self._numbers(trainer), list(notes))
        self._last = time.monotonic()

    def _guard_counts(self) -> tuple[int, int]:
        """(skipped updates, rollbacks) so far, as the gradient guard counts them (0, 0 without one)."""
        return (self._guard.skipped, self._guard.rollbacks) if self._guard else (0, 0)

    def on_train_start(self, trainer, pl_module) -> None:
        if trainer.is_global_zero:
            from tasks.training.guard import GradientGuard

            # Looked up once: the per-batch hook only reads its counters.
            self._guard = next((c for c in trainer.callbacks if isinstance(c, GradientGuard)), None)
            # The guard's counters come back with the checkpoint: only new skips are news.
            self._skipped, self._rollbacks = self._guard_counts()
            notes = [(f"resumed from the checkpoint at step {trainer.global_step}", False)] if trainer.global_step else []
            self._send(trainer, notes)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if not trainer.is_global_zero:
            return
        notes = []
        skipped, rollbacks = self._guard_counts()
        if skipped > self._skipped:
            notes.append((f"skipped {skipped - self._skipped} update(s) with a non-finite gradient norm "
                          f"(step {trainer.global_step}; {skipped} in all)", True))
        if rollbacks > self._rollbacks:
            notes.append((f"rolled back to the last checkpoint after repeated non-finite updates "
                          f"(rollback {rollbacks}, now at step {trainer.global_step})", True))
        self._skipped, self._rollbacks = max(skipped, self._skipped), max(rollbacks, self._rollbacks)
        if notes or time.monotonic() - self._last >= self.every_s:
            self._send(trainer, notes)

    def on_validation_end(self, trainer, pl_module) -> None:
        if not trainer.is_global_zero or trainer.sanity_checking:
            return
        m = trainer.callback_metrics
        loss, bpb = _number(m, "val/loss"), _number(m, "val/bpb")
        self._val = (loss, bpb, trainer.global_step)
        if loss is not None:
            text = f"validation at step {trainer.global_step}: val loss {loss:.4f}"
            self._send(trainer, [(text + (f", val bpb {bpb:.4f}" if bpb is not None else ""), False)])

    def on_save_checkpoint(self, trainer, pl_module, checkpoint) -> None:
        if trainer.is_global_zero:
            self._send(trainer, [(f"checkpoint written at step {trainer.global_step}", False)])

    def on_train_end(self, trainer, pl_module) -> None:
        if trainer.is_global_zero:
            self._send(trainer)
