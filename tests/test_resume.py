"""A preempted run loses at most the work since its last checkpoint: kill `werk run` (and every
process it started) in the middle of pretraining, run it again, and it resumes from the latest
Ray Train checkpoint instead of starting over."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers.checkpoints import checkpoint_steps

pytestmark = pytest.mark.slow

STEPS, EVERY = 60, 10
OVERRIDES = [f"train.max_steps={STEPS}", f"train.steps_per_checkpoint={EVERY}", "train.log_every_n_steps=5"]


def test_killed_pretraining_resumes_from_its_last_checkpoint(werk_home):
    werk = str(Path(sys.executable).parent / "werk")
    env = {**os.environ, "WERK_HOME": str(werk_home)}
    args = [werk, "run", "--recipe", "debug", *sum((["--set", o] for o in OVERRIDES), []), "--json"]
    log = open(werk_home / "first.log", "w")
    # Its own session, so killing the group takes down the local Ray it started, as a lost node would.
    first = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and first.poll() is None:
        done = checkpoint_steps(werk_home)
        if done and max(done) >= 2 * EVERY:
            break
        time.sleep(0.5)
    assert first.poll() is None, (werk_home / "first.log").read_text()[-3000:]
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(30)
    reached = max(checkpoint_steps(werk_home))
    assert EVERY * 2 <= reached < STEPS
    assert not list(werk_home.glob("store/pretrain/*/_SUCCESS.json"))  # nothing published by the killed run

    second = subprocess.run(args, env=env, capture_output=True, text=True, timeout=900)
    assert second.returncode == 0, second.stderr[-5000:]
    summary = json.loads(second.stdout)
    assert summary["stages"]["ingest"]["cached"] and summary["stages"]["encode"]["cached"]
    assert not summary["stages"]["pretrain"]["cached"]

    from mlflow import MlflowClient

    from tasks.tracking.setup import configure

    configure()
    history = MlflowClient().get_metric_history(summary["mlflow"]["stage_run_ids"]["pretrain"], "train/loss")
    logged = sorted(m.step for m in history)
    # The resumed run started from a checkpoint, not from step 0: at most one interval is redone
    # (Ray may not yet have registered the newest checkpoint file when the kill came).
    assert logged and logged[0] >= max(EVERY, reached - EVERY) and logged[-1] == STEPS - 1
    assert max(checkpoint_steps(werk_home)) == STEPS


def test_sigterm_checkpoints_exits_75_and_the_same_command_resumes(werk_home):
    """Slurm's warning (SIGTERM, or SIGUSR1 with --signal) reaches `werk run`: training writes a
    checkpoint at the current step, the command exits with 75 (EX_TEMPFAIL) and says how to
    resume; running it again continues from that step."""
    werk = str(Path(sys.executable).parent / "werk")
    env = {**os.environ, "WERK_HOME": str(werk_home)}
    overrides = ["train.max_steps=400", "train.steps_per_checkpoint=50", "train.log_every_n_steps=5"]
    args = [werk, "run", "--recipe", "debug", *sum((["--set", o] for o in overrides), []), "--json"]
    log = open(werk_home / "first.log", "w")
    first = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 600
    while not checkpoint_steps(werk_home):
        assert first.poll() is None and time.monotonic() < deadline, (werk_home / "first.log").read_text()[-3000:]
        time.sleep(0.2)
    first.send_signal(signal.SIGUSR1)
    assert first.wait(300) == 75, (werk_home / "first.log").read_text()[-3000:]
    assert "stopped by SIGUSR1" in (werk_home / "first.log").read_text()
    stopped = max(checkpoint_steps(werk_home))
    assert 50 <= stopped < 400

    second = subprocess.run(args, env=env, capture_output=True, text=True, timeout=900)
    assert second.returncode == 0, second.stderr[-5000:]
    summary = json.loads(second.stdout)
    from mlflow import MlflowClient

    from tasks.tracking.setup import configure

    configure()
    history = MlflowClient().get_metric_history(summary["mlflow"]["stage_run_ids"]["pretrain"], "train/loss")
    assert min(m.step for m in history) >= stopped and max(m.step for m in history) == 399
