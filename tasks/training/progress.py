"""Training progress for whoever launched the job: the optimizer step, as rank 0 sees it.

The driver is blocked in `TorchTrainer.fit()` and the workers are other processes, possibly on
other nodes. Rank 0 sends its step to a small named Ray actor at most once a second, fire and
forget (never waiting on the driver); a driver thread reads it every few seconds and hands it to a
callback (the Prefect wrapper turns it into a progress artifact). Nothing here knows Prefect.
"""

from __future__ import annotations

import contextvars
import threading
import time
from contextlib import contextmanager
from typing import Callable, Iterator

import lightning as L
import ray

OnStep = Callable[[int], None]


@ray.remote(num_cpus=0)
class StepBoard:
    def __init__(self) -> None:
        self.step = 0

    def report(self, step: int) -> None:
        self.step = max(self.step, step)

    def get(self) -> int:
        return self.step


@contextmanager
def watch_steps(actor_name: str, on_step: OnStep, every_s: float = 2.0) -> Iterator[str]:
    """While the body runs, call `on_step(step)` each time rank 0's reported step changes (and once
    more at the end). Yields the actor's name for the job. `on_step` runs in a thread that carries
    the caller's context variables (Prefect's run context lives there); its errors are not fatal."""
    board = StepBoard.options(name=actor_name).remote()
    done = threading.Event()
    seen = -1

    def poll() -> None:
        nonlocal seen
        try:
            step = ray.get(board.get.remote(), timeout=30)
            if step != seen:
                seen = step
                on_step(step)
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


class ReportSteps(L.Callback):
    """Rank 0 tells the board its optimizer step, at most every `every_s` seconds."""

    def __init__(self, actor_name: str, namespace: str | None, every_s: float = 1.0) -> None:
        self.actor_name, self.namespace, self.every_s = actor_name, namespace, every_s
        self._board = None
        self._last = 0.0

    def _send(self, step: int) -> None:
        if self._board is None:
            self._board = ray.get_actor(self.actor_name, namespace=self.namespace)
        self._board.report.remote(step)
        self._last = time.monotonic()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.is_global_zero and time.monotonic() - self._last >= self.every_s:
            self._send(trainer.global_step)

    def on_train_end(self, trainer, pl_module) -> None:
        if trainer.is_global_zero:
            self._send(trainer.global_step)
