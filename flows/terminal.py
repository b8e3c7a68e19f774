"""The terminal view of a running flow: one line per stage and the running stage's progress.

It listens to the run's events (`flows/events.py`). On a terminal it is a Rich live display,
redrawn a few times a second; elsewhere (a pipe, a CI log, a batch job's output file) it prints
plain lines without control codes: each change of a stage's state and each notice at once, and
the running stage's progress at most every `plain_every_s` seconds.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from rich.console import Console
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from flows.events import Event, Notice, RunStarted, StageState, Work

_STYLE = {"waiting": "dim", "running": "bold cyan", "reused": "green", "done": "bold green", "failed": "bold red"}
_MARK = {"waiting": "·", "running": "▸", "reused": "↺", "done": "✓", "failed": "✗"}


@dataclass
class _Stage:
    state: str = "waiting"
    started: float | None = None
    ended: float | None = None
    work: Work | None = None
    told: float = 0.0  # when plain output last printed its progress


def work_text(work: Work) -> str:
    """"120/400 steps, loss 4.1234, tokens/s 5,310, ETA 1:23" (the units, then the figures)."""
    def count(x: float) -> str:
        return f"{x:,.0f}" if float(x).is_integer() else f"{x:,.1f}"

    amount = f"{count(work.done)}/{count(work.total)} {work.unit}" if work.total else f"{count(work.done)} {work.unit}"
    return ", ".join([amount, *(f"{label} {value}" for label, value in work.figures)])


def duration(seconds: float) -> str:
    """"1:05", or "2:01:05" past an hour."""
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


class RunView:
    """Listener (`flows.events.listening`) that keeps the run's state and shows it on `console`."""

    def __init__(self, console: Console, live: bool | None = None, plain_every_s: float = 15.0) -> None:
        self.console = console
        self.live = console.is_terminal if live is None else live
        self.plain_every_s = plain_every_s
        self.stages: dict[str, _Stage] = {}  # one per stage of the run
        self.t0 = time.monotonic()
        self._lock = threading.Lock()
        self._display: Live | None = None

    # --- events -------------------------------------------------------------------------------
    # State changes under the lock; printing after it is released: Rich's live display holds its
    # own lock while it draws, and drawing takes this one (`__rich__`).
    def __call__(self, event: Event) -> None:
        with self._lock:
            lines = self._update(event, time.monotonic())
        for line in lines:
            self._print(*line)

    def _update(self, event: Event, now: float) -> list[tuple[str, str, str]]:
        """The state change; returns lines to print: (markup for the live display, style, plain)."""
        if isinstance(event, RunStarted):
            for name in event.stages:
                self.stages.setdefault(name, _Stage())
            return []
        if isinstance(event, Notice):
            text = f"{event.level}: {event.stage}: {event.message}"
            return [(text, "yellow" if event.level == "warning" else "red" if event.level == "error" else "", text)]
        stage = self.stages.setdefault(event.stage, _Stage())
        if isinstance(event, StageState):
            stage.state = event.state
            if event.state == "running":
                stage.started, stage.work = now, None
                return [] if self.live else [("", "", f"{event.stage}: running")]
            stage.ended = now
            took = f" ({duration(now - stage.started)})" if stage.started is not None else ""
            text = f"{event.stage}: {event.state}{took}" + (f": {event.detail}" if event.detail else "")
            # On a terminal these lines stay above the live display: the finished stages' story.
            return [(text, _STYLE[event.state], text)]
        if isinstance(event, Work):
            stage.work = event
            if not self.live and now - stage.told >= self.plain_every_s:
                stage.told = now
                return [("", "", f"{event.stage}: {work_text(event)}")]
        return []

    def _print(self, text: str, style: str, plain: str) -> None:
        display = self._display
        if self.live and display is not None:
            display.console.print(Text(text, style=style))
        elif not self.live:
            self.console.print(f"[{duration(time.monotonic() - self.t0):>6}] {plain}", markup=False, highlight=False,
                               soft_wrap=True)

    def echo(self, line: str) -> None:
        """A line of other programs' output, shown with `--verbose`."""
        if self.live:
            self._print(line, "dim", line)
        else:
            self.console.print(line, markup=False, highlight=False, soft_wrap=True)

    # --- drawing ------------------------------------------------------------------------------
    def __rich__(self) -> Table:
        with self._lock:
            table = Table.grid(padding=(0, 1))
            for _ in range(4):
                table.add_column(no_wrap=True)
            table.add_column(no_wrap=True, overflow="ellipsis")
            now = time.monotonic()
            for name, st in self.stages.items():
                style = _STYLE.get(st.state, "")
                clock = duration((st.ended or now) - st.started) if st.started is not None else ""
                row = [Text(_MARK.get(st.state, " "), style=style), Text(f"{name:<9}", style=style), Text(f"{clock:>5}")]
                if st.state == "running" and st.work is not None:
                    w = st.work
                    row += [ProgressBar(total=w.total or None, completed=w.done, width=20, pulse=not w.total),
                            Text(work_text(w))]
                else:
                    row += [Text(st.state, style=style), Text("")]
                table.add_row(*row)
            return table

    def start(self) -> None:
        if self.live:
            self._display = Live(self, console=self.console, refresh_per_second=4, transient=True,
                                 redirect_stdout=False, redirect_stderr=False)
            self._display.start()

    def stop(self) -> None:
        if self._display is not None:
            self._display.stop()
            self._display = None
