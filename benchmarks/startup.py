"""Cold start of `werk run --recipe debug`: how long until the first stage starts, and the whole run.

Each run is the real CLI in a fresh WERK_HOME (embedded Prefect API, local Ray, MLflow on SQLite),
as a new user's first run is. "First stage" is the start time Prefect recorded for the ingest task
run (read from the run's own Prefect database afterwards, so the figure does not depend on what the
terminal shows); "whole" is the command's wall time.

Before/after: with `--baseline-ref REF`, the same runs are made alternately with the code of git
commit REF (a temporary worktree, run with this environment's Python), so the two are measured
under the same machine load. Without it, Werk's runs are reported alone (baseline = value).
Last line: JSON with value = median seconds to the first stage (this tree), baseline = the same
for REF, ratio = baseline / value (higher is better), and the whole-run medians beside.

    .venv/bin/python benchmarks/startup.py [--quick] [--baseline-ref REF]   # quick: 2 rounds, full: 4
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _first_task_start(home: Path, task: str = "ingest") -> float:
    """Epoch seconds at which Prefect started the run's `task` task run."""
    with sqlite3.connect(home / "prefect" / "prefect.db") as db:
        row = db.execute("SELECT min(start_time) FROM task_run WHERE task_key LIKE ? OR name LIKE ?",
                         (f"{task}%", f"{task}-%")).fetchone()
    if not row or row[0] is None:
        raise SystemExit(f"no {task} task run recorded in {home}/prefect/prefect.db")
    return datetime.fromisoformat(str(row[0]).replace("Z", "+00:00")).timestamp()


def measure(tree: Path, home: Path) -> dict[str, float]:
    env = {**os.environ, "WERK_HOME": str(home), "PYTHONPATH": str(tree), "WERK_REPO": str(tree)}
    for name in ("MLFLOW_TRACKING_URI", "PREFECT_API_URL", "RAY_ADDRESS"):
        env.pop(name, None)
    start = time.time()
    done = subprocess.run([sys.executable, "-c", "from flows.cli import app; app()", "run", "--recipe", "debug", "--json"],
                          cwd=tree, env=env, capture_output=True, text=True, timeout=1800)
    wall = time.time() - start
    if done.returncode != 0:
        raise SystemExit(f"werk run failed in {tree} ({done.returncode}):\n{done.stderr[-3000:]}")
    json.loads(done.stdout)  # the summary, and nothing else, on stdout
    return {"first_stage_s": round(_first_task_start(home) - start, 2), "whole_s": round(wall, 1)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--baseline-ref", help="git commit to compare with (before/after)")
    args = ap.parse_args()
    rounds = 2 if args.quick else 4
    rows: dict[str, list[dict[str, float]]] = {"werk": [], "baseline": []}
    with tempfile.TemporaryDirectory(prefix="werk-startup-") as tmp_dir:
        tmp = Path(tmp_dir)
        trees = {"werk": REPO}
        if args.baseline_ref:
            trees["baseline"] = tmp / "baseline"
            subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(trees["baseline"]), args.baseline_ref],
                           check=True, capture_output=True)
        try:
            for r in range(rounds):
                for side in (list(trees) if r % 2 == 0 else list(trees)[::-1]):
                    row = measure(trees[side], tmp / f"home-{side}-{r}")
                    rows[side].append(row)
                    print(f"{side:>8} round {r}: {json.dumps(row)}", flush=True)
        finally:
            if args.baseline_ref:
                subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(trees["baseline"])],
                               capture_output=True)
    med = {side: {k: statistics.median(r[k] for r in runs) for k in ("first_stage_s", "whole_s")}
           for side, runs in rows.items() if runs}
    base = med.get("baseline", med["werk"])
    print(json.dumps({"name": "startup", "value": med["werk"]["first_stage_s"], "baseline": base["first_stage_s"],
                      "unit": "s to the first stage (cold werk run --recipe debug)",
                      "ratio": round(base["first_stage_s"] / med["werk"]["first_stage_s"], 3),
                      "whole_s": med["werk"]["whole_s"], "baseline_whole_s": base["whole_s"],
                      "whole_ratio": round(base["whole_s"] / med["werk"]["whole_s"], 3),
                      "baseline_ref": args.baseline_ref, "runs": rows}))


if __name__ == "__main__":
    main()
