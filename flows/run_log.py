"""Each run's log file: everything other programs print during the run, kept out of the terminal.

Prefect, Ray (its workers' output, forwarded to the driver), Lightning, MLflow and Python's
warnings all write to the process's file descriptors 1 and 2, and so do C libraries and the
processes the run starts. `captured_output` points both descriptors at `WERK_HOME/logs/<date>-
<flow run name>.log` for the length of the run and hands Werk's own view a stream on the terminal
the process had. Nothing is dropped: with `--verbose` every line also reaches the terminal as it
is written.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Callable, Iterator, TextIO

Echo = Callable[[str], None]


def log_path(home: Path, flow_run_name: str) -> Path:
    return home / "logs" / f"{time.strftime('%Y%m%d-%H%M%S')}-{flow_run_name}.log"


def _pump(read_fd: int, log: BinaryIO, echo: list[Echo | None]) -> None:
    """Copy the pipe into the log file, and each line to `echo[0]` while it is set. Runs until
    every writer has closed the pipe: processes the run started may write after it ended."""
    pending = b""
    with os.fdopen(read_fd, "rb", buffering=0) as pipe:
        while chunk := pipe.read(65536):
            log.write(chunk)
            show = echo[0]
            if show is None:
                pending = b""
                continue
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                try:
                    show(line.decode("utf-8", "replace"))
                except Exception:  # noqa: BLE001 - the terminal may be gone; the log is what counts
                    pass
    log.close()


@contextmanager
def captured_output(path: Path, echo: Echo | None = None) -> Iterator[TextIO]:
    """Within, fds 1 and 2 write to `path` (appended); yields a text stream on the terminal that
    fd 2 was. `echo` (the `--verbose` view) is handed each line as well, while the block runs."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    terminal = os.fdopen(os.dup(saved[1]), "w", buffering=1, encoding="utf-8", errors="replace")
    log = open(path, "ab", buffering=0)  # noqa: SIM115 - closed below, or by the pump thread
    shown: list[Echo | None] = [echo]
    if echo is None:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
    else:
        read_fd, write_fd = os.pipe()
        os.dup2(write_fd, 1)
        os.dup2(write_fd, 2)
        os.close(write_fd)
        threading.Thread(target=_pump, args=(read_fd, log, shown), name="werk-run-log", daemon=True).start()
    try:
        yield terminal
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        shown[0] = None
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved:
            os.close(fd)
        if echo is None:
            log.close()
        terminal.close()
