"""Run one pretraining job in its own process, as `werk run` would: `python pretrain_job.py JOB.json ROOT`.

Exit status 0 when training reached max_steps, 3 when it stopped early on SIGTERM/SIGUSR1; the
summary is printed as JSON. Tests kill this process (or its Ray workers) to check resumption.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from infra.ray_cluster import ray_session  # noqa: E402
from tasks.artifacts import StageOutput  # noqa: E402
from tasks.training import launch  # noqa: E402
from tasks.training.job import PretrainJob  # noqa: E402


def main(job_file: str, root: str) -> int:
    job = PretrainJob.model_validate_json(Path(job_file).read_text())
    out = StageOutput.at(root, "pretrain", 1, job.model_dump(mode="json", include={"model", "train", "compute"}), {})
    with ray_session(min_cpus=job.compute.num_workers * job.compute.cpus_per_worker):
        try:
            summary = launch.run_pretrain(job, out, root).summary.model_dump(by_alias=True)
        except launch.TrainingStopped as stopped:
            print(json.dumps({"stopped": str(stopped)}), flush=True)
            return 3
    print(json.dumps({"summary": summary, "weights": out.path("model.pt"), "run": launch.run_name(out)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
