"""The terminal side of a run: the stage view (live on a terminal, plain lines elsewhere), the run's
log file that takes what other programs print, and the events that feed the view."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import time
import warnings

from rich.console import Console

from pathlib import Path

from flows.events import Notice, RunStarted, StageState, Work, emit, listening
from flows.run_log import captured_output
from flows.terminal import RunView, work_text

CONTROL = re.compile(r"\x1b\[")
REPO = Path(__file__).resolve().parents[1]


def _events() -> list:
    return [
        RunStarted("brave-otter", ("ingest", "pretrain")),
        StageState("ingest", "running"),
        Work("ingest", 3, 8, "parts scanned", (("documents", "1,200"), ("MB/s", "2.10"))),
        StageState("ingest", "done", "read 2,400 documents"),
        StageState("pretrain", "running"),
        Work("pretrain", 10, 40, "steps", (("loss", "5.1234"),)),
        Notice("pretrain", "warning", "skipped 1 update(s)"),
        Work("pretrain", 20, 40, "steps", (("loss", "4.9000"), ("ETA", "0:12"))),
    ]


def test_plain_lines_off_a_terminal_say_each_state_and_throttle_progress():
    out = io.StringIO()
    view = RunView(Console(file=out, width=200), live=False, plain_every_s=3600)
    with listening(view):
        for event in _events():
            emit(event)
    text = out.getvalue()
    assert not CONTROL.search(text), "no control codes where there is no terminal"
    lines = text.splitlines()
    assert any(line.endswith("ingest: running") for line in lines)
    assert any("ingest: done (0:00): read 2,400 documents" in line for line in lines)
    # Progress at most once per interval per stage: the first of each stage only.
    assert sum("pretrain: 10/40 steps, loss 5.1234" in line for line in lines) == 1
    assert not any("20/40" in line for line in lines)
    assert any("warning: pretrain: skipped 1 update(s)" in line for line in lines)


def test_the_live_view_shows_every_stage_and_the_running_stage_s_progress():
    view = RunView(Console(file=io.StringIO(), width=160), live=True)
    for event in _events():
        view(event)
    shown = Console(file=io.StringIO(), width=160, record=True, force_terminal=True)
    shown.print(view)
    text = shown.export_text()
    assert re.search(r"✓ ingest\s+0:00\s+done", text), text
    assert "20/40 steps, loss 4.9000, ETA 0:12" in text
    assert work_text(Work("tokenizer", 1.5, None, "MB of text sampled")) == "1.5 MB of text sampled"


def test_a_listener_that_fails_does_not_stop_the_run():
    heard = []

    def broken(event):
        raise RuntimeError("display gone")

    with listening(broken), listening(heard.append):
        emit(StageState("encode", "running"))
    assert heard == [StageState("encode", "running")]
    emit(StageState("encode", "done"))  # nobody listens any more
    assert len(heard) == 1


_PROGRAM = """
import os, subprocess, sys, warnings
from pathlib import Path
from flows.run_log import captured_output

with captured_output(Path(sys.argv[1])) as terminal:
    print("python print", flush=True)
    os.write(2, b"straight to fd 2\\n")
    warnings.warn("a library's warning")
    subprocess.run([sys.executable, "-c", "import sys; print('child out'); print('child err', file=sys.stderr)"], check=True)
    terminal.write("werk's own line\\n")
print("after", flush=True)
"""


def test_what_other_programs_print_goes_to_the_log_and_the_view_keeps_the_terminal(tmp_path):
    """In a process of its own, as `werk` runs: Python's prints and warnings, writes to the
    descriptors and child processes all land in the log; the view's stream reaches the terminal."""
    log = tmp_path / "logs" / "run.log"
    done = subprocess.run([sys.executable, "-c", _PROGRAM, str(log)], capture_output=True, text=True, timeout=60,
                          cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr
    kept = log.read_text()
    for line in ("python print", "straight to fd 2", "a library's warning", "child out", "child err"):
        assert line in kept, line
        assert line not in done.stdout + done.stderr, line
    assert done.stderr == "werk's own line\n"
    assert done.stdout == "after\n"  # afterwards the descriptors are the terminal's again


def test_verbose_shows_other_programs_lines_as_they_come_and_keeps_them(tmp_path):
    log = tmp_path / "run.log"
    shown: list[str] = []
    with captured_output(log, echo=shown.append):
        subprocess.run([sys.executable, "-c", "print('GPU available: False')"], check=True)
        os.write(1, b"second line\n")
        deadline = time.monotonic() + 10
        while len(shown) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
    assert shown[:2] == ["GPU available: False", "second line"]
    # The pump writes each chunk to the file before it shows its lines.
    assert "GPU available: False\nsecond line\n" in log.read_text()
