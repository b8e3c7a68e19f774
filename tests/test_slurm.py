"""`infra/slurm/werk.sbatch` on a one-node allocation, Slurm's commands replaced by shims (`srun`
runs its command here, `scontrol` names this host and records requeues, `hostname` gives the
loopback address); everything else is real. The script starts a Ray head through `srun`, runs the
pipeline on it with Ray token auth, forwards Slurm's SIGUSR1 to `werk run` (checkpoint, exit 75),
requeues the job, and leaves no process behind; the requeued job resumes and finishes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest

from helpers.checkpoints import checkpoint_steps
from infra.services import free_port

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
SHIMS = {
    # A job step: the command runs in its own process group, and ending `srun` ends the whole
    # step (TERM, then KILL after a grace period), as slurmstepd does.
    "srun": """#!/bin/bash
while [[ $# -gt 0 && "$1" == -* ]]; do
  case "$1" in -w|-N|-n|--nodelist) shift 2 ;; *) shift ;; esac
done
setsid "$@" &
step=$!
end_step() {
  kill -TERM -- "-$step" 2>/dev/null
  for _ in $(seq 100); do kill -0 -- "-$step" 2>/dev/null || exit 0; sleep 0.1; done
  kill -KILL -- "-$step" 2>/dev/null
  exit 0
}
trap end_step TERM INT
wait "$step"
""",
    "scontrol": """#!/bin/bash
case "$1 $2" in
  "show hostnames") echo localhost ;;
  "requeue "*) echo "$2" >> "$FAKE_SLURM_REQUEUED" ;;
  *) echo "scontrol shim: $*" >&2; exit 1 ;;
esac
""",
    "hostname": "#!/bin/bash\necho 127.0.0.1\n",
}


def _ray_processes(ray_tmp: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        if proc.info["status"] != psutil.STATUS_ZOMBIE and any(ray_tmp in a for a in proc.info["cmdline"] or []):
            found.append(proc)
    return found


def _is_werk_cli(proc: psutil.Process) -> bool:
    try:
        cmd = proc.cmdline()
    except psutil.Error:
        return False
    return len(cmd) > 1 and cmd[1].endswith("bin/werk")


def test_sbatch_script_runs_forwards_preemption_requeues_and_resumes(tmp_path):
    shims = tmp_path / "bin"
    shims.mkdir()
    for name, text in SHIMS.items():
        (shims / name).write_text(text)
        (shims / name).chmod(0o755)
    home = tmp_path / "werk"
    requeued = tmp_path / "requeued"
    ray_tmp = tempfile.mkdtemp(prefix="wslurm-")  # Ray's socket paths must stay short
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("MLFLOW_", "PREFECT_API", "RAY_ADDRESS", "RAY_AUTH", "SLURM_"))}
    env.update({
        "PATH": f"{shims}:{env['PATH']}", "WERK_VENV": str(Path(sys.executable).parent.parent),
        "SLURM_JOB_NODELIST": "localhost", "SLURM_CPUS_PER_TASK": "4", "SLURM_JOB_ID": "4242",
        "SLURM_SUBMIT_DIR": str(REPO), "FAKE_SLURM_REQUEUED": str(requeued), "WERK_HOME": str(home),
        "RAY_PORT": str(free_port()), "RAY_TMPDIR": ray_tmp,
        # One host: keep the Ray head on loopback (a real allocation leaves this unset).
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    })
    overrides = ["train.max_steps=400", "train.steps_per_checkpoint=50", "train.log_every_n_steps=5"]
    args = ["bash", str(REPO / "infra/slurm/werk.sbatch"), "run", "--recipe", "debug",
            *sum((["--set", o] for o in overrides), []), "--json"]

    log = open(tmp_path / "job1.log", "w")
    job = subprocess.Popen(args, env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 600
        while not checkpoint_steps(home):
            assert job.poll() is None and time.monotonic() < deadline, (tmp_path / "job1.log").read_text()[-4000:]
            time.sleep(0.2)
        # The pipeline's driver attached to the script's Ray head, with the job's token.
        assert _ray_processes(ray_tmp), "the Ray head runs from the script's srun step"
        driver = [p for p in psutil.Process(job.pid).children(recursive=True) if _is_werk_cli(p)]
        assert driver and driver[0].environ().get("RAY_ADDRESS", "").startswith("127.0.0.1:")
        assert driver[0].environ().get("RAY_AUTH_MODE") == "token"
        # Slurm's warning before the time limit: SIGUSR1 to the batch script only (`--signal=B:USR1@300`).
        os.kill(job.pid, signal.SIGUSR1)
        assert job.wait(300) == 75, (tmp_path / "job1.log").read_text()[-4000:]
    finally:
        if job.poll() is None:
            os.killpg(job.pid, signal.SIGKILL)
    text = (tmp_path / "job1.log").read_text()
    assert "stopped by SIGUSR1" in text and "requeueing job 4242" in text
    assert requeued.read_text().split() == ["4242"]
    stopped = max(checkpoint_steps(home))
    assert 50 <= stopped < 400
    # The script ended its Ray step: none of this job's Ray processes is left.
    deadline = time.monotonic() + 60
    while _ray_processes(ray_tmp) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not _ray_processes(ray_tmp)

    # The requeued job: the same script and arguments resume from the checkpoint and finish.
    again = subprocess.run(args, env=env, cwd=REPO, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    # Ray's start-up messages share the job's stdout: the summary is its one JSON line.
    summary = next(json.loads(line) for line in reversed(again.stdout.splitlines()) if line.startswith("{"))
    assert summary["stages"]["ingest"]["cached"] and not summary["stages"]["pretrain"]["cached"]
    assert max(checkpoint_steps(home)) == 400
    assert requeued.read_text().split() == ["4242"]  # a finished job is not requeued
    deadline = time.monotonic() + 60
    while _ray_processes(ray_tmp) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not _ray_processes(ray_tmp)
