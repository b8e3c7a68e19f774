"""Checkpoint and exit on SIGTERM or SIGUSR1 (Slurm's warning before the time limit or preemption).

The signal reaches the driver; Ray Train's workers are other processes, possibly on other nodes.
The driver's handler only sets an event (a signal handler must not call into Ray); a thread
forwards the request to a small named Ray actor. Rank 0 polls that actor without blocking after
each batch and all ranks agree through one boolean all-reduce, so every worker stops after the
same optimizer step; they write a checkpoint there and Lightning stops.
"""

from __future__ import annotations

import signal
import threading
import warnings
from contextlib import contextmanager
from typing import Callable, Iterator

import lightning as L
import ray

SIGNALS = (signal.SIGTERM, signal.SIGUSR1)


@ray.remote(num_cpus=0)
class StopFlag:
    def __init__(self) -> None:
        self.reason: str | None = None

    def request(self, reason: str) -> None:
        self.reason = self.reason or reason

    def get(self) -> str | None:
        return self.reason


class StopHandle:
    def __init__(self, actor_name: str, namespace: str) -> None:
        self.actor_name, self.namespace = actor_name, namespace
        self.reason: str | None = None


@contextmanager
def stop_on_signals(actor_name: str) -> Iterator[StopHandle]:
    """While the body runs, SIGTERM/SIGUSR1 ask the training workers to checkpoint and stop."""
    flag = StopFlag.options(name=actor_name).remote()
    handle = StopHandle(actor_name, ray.get_runtime_context().namespace)
    received = threading.Event()
    done = threading.Event()

    def on_signal(signum, frame) -> None:
        handle.reason = handle.reason or signal.Signals(signum).name
        received.set()

    def forward() -> None:
        while not done.is_set():
            if received.wait(0.2) and handle.reason:
                ray.get(flag.request.remote(handle.reason))
                return

    previous = {}
    if threading.current_thread() is threading.main_thread():  # only the main thread may set handlers
        previous = {sig: signal.signal(sig, on_signal) for sig in SIGNALS}
    else:
        warnings.warn("pretraining runs outside the main thread: SIGTERM/SIGUSR1 will not checkpoint before "
                      "exiting (periodic checkpoints still bound the loss)", stacklevel=3)
    forwarder = threading.Thread(target=forward, name="werk-stop-forwarder", daemon=True)
    forwarder.start()
    try:
        yield handle
    finally:
        done.set()
        for sig, old in previous.items():
            signal.signal(sig, old)
        forwarder.join(5)
        ray.kill(flag)


class StopOnRequest(L.Callback):
    def __init__(self, actor_name: str, namespace: str, checkpoint: Callable[[L.Trainer], None]) -> None:
        self.actor_name, self.namespace = actor_name, namespace
        self.checkpoint = checkpoint
        self._flag = None
        self._pending = None
        self.reason: str | None = None

    def _poll(self) -> bool:
        if self._flag is None:
            self._flag = ray.get_actor(self.actor_name, namespace=self.namespace)
        if self._pending is None:
            self._pending = self._flag.get.remote()
        ready, _ = ray.wait([self._pending], timeout=0)
        if not ready:
            return False
        reason, self._pending = ray.get(self._pending), None
        self.reason = reason
        return reason is not None

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if (batch_idx + 1) % trainer.accumulate_grad_batches:
            return  # only between optimizer steps: a checkpoint holds no half-accumulated gradients
        asked = self._poll() if trainer.is_global_zero else False
        if trainer.strategy.reduce_boolean_decision(asked, all=False):
            self.checkpoint(trainer)
            trainer.should_stop = True
