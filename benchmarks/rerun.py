"""A second identical `werk run` against the first: every stage is taken from Prefect's cache
(records beside the content-addressed outputs), so the rerun pays only start-up and bookkeeping.
Goal: the rerun takes at most 10 % of the first run, i.e. ratio (first ÷ rerun, higher is better)
>= 10.

Reruns are timed twice: with Prefect's embedded API (the default `werk run`, which starts a
temporary Prefect server each time) and against a running Prefect server (a team stack or
production), which removes that fixed start-up.

    python benchmarks/rerun.py [--quick]     # quick: the debug recipe; full: debug with 400 steps

Both runs are the real CLI in a fresh WERK_HOME (embedded Prefect, local Ray, MLflow on SQLite).
Runs are reported as runs per hour so that higher is better, as in the other benchmarks.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WERK = str(Path(sys.executable).parent / "werk")


def _run(home: str, overrides: list[str], prefect_api: str | None = None) -> float:
    env = {**os.environ, "WERK_HOME": home}
    env.pop("MLFLOW_TRACKING_URI", None)
    env.pop("PREFECT_API_URL", None)
    if prefect_api:
        env["PREFECT_API_URL"] = prefect_api
    t0 = time.perf_counter()
    done = subprocess.run([WERK, "run", "--recipe", "debug", *sum((["--set", o] for o in overrides), []), "--json"],
                          env=env, capture_output=True, text=True, timeout=1800)
    elapsed = time.perf_counter() - t0
    if done.returncode != 0:
        sys.exit(done.stderr[-3000:])
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    overrides = [] if args.quick else ["train.max_steps=400", "train.steps_per_checkpoint=100"]
    repeats = 1 if args.quick else 3
    with tempfile.TemporaryDirectory() as home:
        first = _run(home, overrides)
        reruns = [_run(home, overrides) for _ in range(repeats)]
        from infra.services import free_port, prefect_server

        port = free_port()
        with prefect_server(port, Path(home) / "prefect-server", Path(home) / "logs").start(timeout=180):
            api = f"http://127.0.0.1:{port}/api"
            _run(home, overrides, api)  # the server's first flow run warms its new database
            served = [_run(home, overrides, api) for _ in range(repeats)]
    rerun = sorted(reruns)[len(reruns) // 2]
    with_server = sorted(served)[len(served) // 2]
    print(f"first run {first:.1f} s; identical reruns, embedded Prefect API {[round(r, 1) for r in reruns]} s "
          f"({100 * rerun / first:.1f} % of the first), with a running Prefect server {[round(r, 1) for r in served]} s "
          f"({100 * with_server / first:.1f} %)")
    print(json.dumps({"name": "cached_rerun", "value": round(3600 / rerun, 2), "baseline": round(3600 / first, 2),
                      "unit": "runs/hour", "ratio": round(first / rerun, 3), "first_s": round(first, 1),
                      "rerun_s": round(rerun, 1), "rerun_with_server_s": round(with_server, 1),
                      "ratio_with_server": round(first / with_server, 3), "recipe": "debug", "overrides": overrides}))

if __name__ == "__main__":
    main()
