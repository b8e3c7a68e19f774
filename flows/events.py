"""What a running flow tells whoever watches it in this process: stage states, work, notices.

The pipeline and its stage tasks emit typed events; a listener (the terminal view of `werk`, a
test) subscribes for the length of a run. A flow run by a Prefect worker has no listener and its
events go nowhere: everything they say also reaches Prefect's run logs and artifacts. Listeners
are called on the emitting thread (the flow's, or the training watcher's), must be quick, and
their errors are swallowed: a display problem never fails a run.
"""

from __future__ import annotations

import logging
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator, Literal, Union

State = Literal["waiting", "running", "reused", "done", "failed"]


@dataclass(frozen=True)
class RunStarted:
    flow_run_name: str
    stages: tuple[str, ...]


@dataclass(frozen=True)
class StageState:
    stage: str
    state: State
    detail: str = ""  # one line: what the stage did, or why it failed


@dataclass(frozen=True)
class Work:
    """Progress inside a running stage: `done` of `total` (None: unknown) `unit`, and a few
    figures already formatted for people, e.g. (("loss", "4.12"), ("tokens/s", "5,310"))."""

    stage: str
    done: float
    total: float | None
    unit: str
    figures: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Notice:
    stage: str
    level: Literal["info", "warning", "error"]
    message: str


Event = Union[RunStarted, StageState, Work, Notice]
Listener = Callable[[Event], None]

_listeners: list[Listener] = []
_lock = threading.Lock()


def emit(event: Event) -> None:
    with _lock:
        listeners = list(_listeners)
    for listener in listeners:
        try:
            listener(event)
        except Exception:  # noqa: BLE001 - see the module docstring
            logging.getLogger(__name__).debug("event listener failed", exc_info=True)


@contextmanager
def listening(listener: Listener) -> Iterator[None]:
    with _lock:
        _listeners.append(listener)
    try:
        yield
    finally:
        with _lock:
            _listeners.remove(listener)
