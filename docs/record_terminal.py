"""Record what `werk run` shows on a terminal, as text: docs/terminal.md.

Runs the command under a pseudo-terminal (120 columns), replays its output through a terminal
emulator (pyte, in the `bench` extra) and writes the screen as it was at a few moments: while
ingest runs, while pretraining runs, and at the end. Nothing is edited by hand.

    .venv/bin/python docs/record_terminal.py [--recipe debug] [--home DIR]   # a fresh WERK_HOME by default
"""

from __future__ import annotations

import argparse
import fcntl
import os
import pty
import select
import struct
import subprocess
import sys
import tempfile
import termios
import time
from pathlib import Path

import pyte

REPO = Path(__file__).resolve().parents[1]
COLUMNS, LINES = 120, 40


def _screen_text(screen: pyte.HistoryScreen, scrolled: bool = False) -> str:
    """The screen's lines; with `scrolled`, the lines that scrolled off its top first."""
    rows = [line.rstrip() for line in screen.display]
    if scrolled:
        rows = ["".join(line[x].data for x in range(screen.columns)).rstrip() for line in screen.history.top] + rows
    while rows and not rows[-1]:
        rows.pop()
    return "\n".join(rows)


def record(argv: list[str], env: dict[str, str]) -> list[tuple[str, str]]:
    """[(moment, screen text)] for the first frame that shows ingest running, the first with a
    pretraining step count, and the whole session at the end."""
    screen = pyte.HistoryScreen(COLUMNS, LINES, history=5000)
    stream = pyte.ByteStream(screen)
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", LINES, COLUMNS, 0, 0))
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True)
    os.close(slave)
    moments: dict[str, str] = {}
    quiet_since = None
    while True:
        ready, _, _ = select.select([master], [], [], 0.5)
        if ready:
            try:
                data = os.read(master, 65536)
            except OSError:
                break
            if not data:
                break
            stream.feed(data)
            shown = _screen_text(screen)
            if "ingest" not in moments and "parts scanned" in shown:
                moments["ingest"] = shown
            if "pretrain" not in moments and " steps, loss " in shown and "/" in shown.split(" steps, loss ")[0][-8:]:
                moments["pretrain"] = shown
            quiet_since = None
        elif proc.poll() is not None:
            quiet_since = quiet_since or time.monotonic()
            if time.monotonic() - quiet_since > 3:
                break
    proc.wait()
    moments["end"] = _screen_text(screen, scrolled=True)
    return list(moments.items())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--recipe", default="debug")
    ap.add_argument("--home")
    ap.add_argument("--out", default=str(REPO / "docs" / "terminal.md"))
    args = ap.parse_args()
    home = Path(args.home) if args.home else Path(tempfile.mkdtemp(prefix="werk-record-"))
    env = {**os.environ, "WERK_HOME": str(home), "TERM": "xterm-256color"}
    for name in ("PREFECT_API_URL", "MLFLOW_TRACKING_URI", "RAY_ADDRESS"):
        env.pop(name, None)
    werk = str(Path(sys.executable).parent / "werk")
    command = ["werk", "run", "--recipe", args.recipe]
    moments = record([werk, *command[1:]], env)
    titles = {"ingest": "While ingest runs", "pretrain": "While pretraining runs", "end": "The whole session, at the end"}
    parts = [f"# What `{' '.join(command)}` shows on a terminal",
             "",
             f"Recorded by `docs/record_terminal.py` on {time.strftime('%Y-%m-%d')} ({COLUMNS} columns, a fresh "
             "WERK_HOME): the screen as a terminal showed it at two moments, then the whole session as it stays "
             "on the terminal. The live lines at the bottom are redrawn in place; the lines above them stay.", ""]
    for moment, text in moments:
        parts += [f"## {titles[moment]}", "", "```", text.replace(str(home), "$WERK_HOME"), "```", ""]
    Path(args.out).write_text("\n".join(parts))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
