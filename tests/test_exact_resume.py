"""Exact resumption on CPU with 2 DDP workers and deterministic algorithms.

One uninterrupted run is the reference. A run killed with SIGKILL after a checkpoint and started
again, a run that loses one Ray worker (max_failures=1), and a run stopped by SIGTERM and started
again all log per-step losses equal (`==`) to the reference from their resume step on, and end
with identical weights (`torch.equal`). The model uses dropout, so this holds only if every RNG
is restored too. A half-written checkpoint left by the crash is never taken as the latest.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers.encoded import encoded_corpus

pytestmark = pytest.mark.slow

HELPER = Path(__file__).parent / "helpers" / "pretrain_job.py"
STEPS, EVERY = 120, 10


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return encoded_corpus(tmp_path_factory.mktemp("corpus"), Path(__file__).parent / "assets" / "corpus")


@pytest.fixture(scope="module")
def tracking(tmp_path_factory):
    from mlflow import MlflowClient

    folder = tmp_path_factory.mktemp("mlflow")
    client = MlflowClient(uri := f"sqlite:///{folder / 'mlflow.db'}")
    return uri, client, client.create_experiment("exact-resume", artifact_location=(folder / "artifacts").as_uri())


def _job(corpus, tracking, max_failures: int = 0):
    from tasks.training.config import ComputeConfig, ModelConfig, TrainConfig
    from tasks.training.job import PretrainJob

    uri, client, experiment = tracking
    return PretrainJob(
        model=ModelConfig(block_size=32, n_layer=2, n_head=2, n_embd=32, dropout=0.1),
        train=TrainConfig(max_steps=STEPS, batch_size=4, lr=3e-3, warmup_steps=5, steps_per_checkpoint=EVERY,
                          val_batches=2, log_every_n_steps=1, deterministic=True),
        compute=ComputeConfig(num_workers=2, max_failures=max_failures, system_metrics_interval_s=0),
        vocab_size=corpus["vocab_size"], train_shards=corpus["splits"]["train"]["shards"],
        val_shards=corpus["splits"]["val"]["shards"], mlflow_tracking_uri=uri,
        mlflow_run_id=client.create_run(experiment).info.run_id,
    )


def _start(job, root: Path) -> subprocess.Popen:
    root.mkdir(parents=True, exist_ok=True)
    spec = root / f"job-{job.mlflow_run_id}.json"
    spec.write_text(job.model_dump_json())
    log = open(root / f"{job.mlflow_run_id}.log", "w")
    return subprocess.Popen([sys.executable, str(HELPER), str(spec), str(root)], stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})


def _finish(proc: subprocess.Popen, root: Path, job, expect: int = 0) -> None:
    rc = proc.wait(600)
    assert rc == expect, (root / f"{job.mlflow_run_id}.log").read_text()[-4000:]


def _registered(root: Path) -> list[int]:
    """Steps of the checkpoints Ray Train has registered (listed in its snapshot)."""
    steps: set[int] = set()
    for snap in root.glob("ray/pretrain-*/checkpoint_manager_snapshot.json"):
        steps.update(int(s) for s in re.findall(r"step-(\d{8})", snap.read_text()))
    return sorted(steps)


def _wait_for(condition, proc: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert proc.poll() is None, "the run ended before the condition was met"
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _kill_tree(proc: subprocess.Popen) -> None:
    """SIGKILL the run and every process it started (Ray's included, whatever their session), as a
    lost node would, and wait until all are gone."""
    import psutil

    procs = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
    for p in procs:
        p.kill()
    gone, alive = psutil.wait_procs(procs, timeout=30)
    assert not alive
    proc.wait(5)


def _losses(tracking, run_id: str) -> dict[int, float]:
    """Per-step training loss; where a step was logged twice (a restart), the later value."""
    history = tracking[1].get_metric_history(run_id, "train/loss")
    return {m.step: m.value for m in sorted(history, key=lambda m: m.timestamp)}


def _weights(root: Path) -> dict[str, torch.Tensor]:
    (path,) = root.glob("pretrain/*/model.pt")
    return torch.load(path, weights_only=True)


@pytest.fixture(scope="module")
def reference(corpus, tracking, tmp_path_factory):
    root = tmp_path_factory.mktemp("reference")
    job = _job(corpus, tracking)
    _finish(_start(job, root), root, job)
    losses = _losses(tracking, job.mlflow_run_id)
    assert sorted(losses) == list(range(STEPS))
    return losses, _weights(root)


def _assert_same_as_reference(reference, losses: dict[int, float], weights, first_step: int) -> None:
    ref_losses, ref_weights = reference
    assert min(losses) == first_step and max(losses) == STEPS - 1
    assert {s: losses[s] for s in range(first_step, STEPS)} == {s: ref_losses[s] for s in range(first_step, STEPS)}
    assert weights.keys() == ref_weights.keys()
    assert all(torch.equal(weights[k], ref_weights[k]) for k in weights)


def test_sigkill_then_restart_repeats_the_uninterrupted_run_bit_for_bit(corpus, tracking, reference, tmp_path):
    root = tmp_path / "killed"
    first = _job(corpus, tracking)
    proc = _start(first, root)
    _wait_for(lambda: _registered(root) and max(_registered(root)) >= 2 * EVERY, proc)
    _kill_tree(proc)
    latest = max(_registered(root))
    assert latest < STEPS

    # What a crash in the middle of writing the next checkpoint leaves behind: its folder, half a file.
    run_dir = next(root.glob("ray/pretrain-*"))
    good = (run_dir / f"step-{latest:08d}" / "checkpoint.ckpt").read_bytes()
    partial = run_dir / f"step-{latest + EVERY:08d}"
    partial.mkdir(exist_ok=True)
    (partial / "checkpoint.ckpt").write_bytes(good[: len(good) // 2])

    second = first.model_copy(update={"mlflow_run_id": tracking[1].create_run(tracking[2]).info.run_id})
    _finish(_start(second, root), root, second)
    _assert_same_as_reference(reference, _losses(tracking, second.mlflow_run_id), _weights(root), first_step=latest)


def test_losing_a_ray_worker_restarts_from_the_latest_checkpoint_bit_for_bit(corpus, tracking, reference, tmp_path):
    import psutil

    root = tmp_path / "worker"
    job = _job(corpus, tracking, max_failures=1)
    proc = _start(job, root)
    _wait_for(lambda: _registered(root) and max(_registered(root)) >= 2 * EVERY, proc)
    workers = [p for p in psutil.Process(proc.pid).children(recursive=True)
               if "RayTrainWorker" in " ".join(p.cmdline())]
    assert len(workers) == 2
    workers[-1].kill()
    _finish(proc, root, job)

    history = tracking[1].get_metric_history(job.mlflow_run_id, "train/loss")
    assert len(history) > STEPS  # the steps after the checkpoint were trained twice
    _assert_same_as_reference(reference, _losses(tracking, job.mlflow_run_id), _weights(root), first_step=0)


def test_sigterm_writes_a_checkpoint_and_exits_then_resumes_bit_for_bit(corpus, tracking, reference, tmp_path):
    from models.gpt import GPT, GPTConfig

    root = tmp_path / "term"
    first = _job(corpus, tracking)
    proc = _start(first, root)
    _wait_for(lambda: _registered(root) and max(_registered(root)) >= EVERY, proc)
    reached = max(_losses(tracking, first.mlflow_run_id))
    os.kill(proc.pid, signal.SIGTERM)  # the driver only, as Slurm's --signal=B:TERM would
    _finish(proc, root, first, expect=3)
    stopped = max(_registered(root))
    assert reached <= stopped < STEPS

    state = torch.load(next(root.glob(f"ray/pretrain-*/step-{stopped:08d}/checkpoint.ckpt")), weights_only=True)
    assert state["global_step"] == stopped
    model = GPT(GPTConfig(vocab_size=first.vocab_size, **first.model.gpt_kwargs()))
    model.load_state_dict({k.removeprefix("model."): v for k, v in state["state_dict"].items()})

    second = first.model_copy(update={"mlflow_run_id": tracking[1].create_run(tracking[2]).info.run_id})
    _finish(_start(second, root), root, second)
    _assert_same_as_reference(reference, _losses(tracking, second.mlflow_run_id), _weights(root), first_step=stopped)
