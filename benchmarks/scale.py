"""Ingest at growing corpus sizes: does the driver's memory stay flat, does throughput hold?

Runs `werk ingest --recipe demo --source DIR --json` (the demo recipe's filters: language ID,
Gopher quality, PII, exact and near dedup) on synthetic corpora of 1x, 4x and 16x a base corpus
(`scale_corpus.py`: real sentences remixed into unique documents), each in a fresh WERK_HOME, and
samples every 0.25 s the resident memory of the `werk` process (the driver: Prefect flow, stage
planning, Ray driver) and of its whole process tree (Ray's workers and servers included). The full
run measures the 1x corpus again at the end, so drift of the machine's speed shows. Units are the corpus's files
(a quarter of the base each), so every size keeps both cores busy.

Then the ingest stage alone (no command start-up: Prefect's server, Ray and MLflow take a fixed
~30 s that dominates the command's wall time at these sizes) runs in this process on a local Ray
with two workers, at 1x and the largest size alternately: `stage_mb_s`, the throughput figure.

Goals (issue 14): driver peak at the largest size <= 1.25x its peak at 1x; MB/s at the largest
size >= 0.9x MB/s at 1x; stage MB/s per core at 1x >= 1. Last line: JSON with value = driver peak
at the largest size (MiB), baseline = driver peak at 1x, ratio = baseline / value (higher is
better).

    .venv/bin/python benchmarks/scale.py [--quick]      # quick: 1x and 4x of a 2 MB base
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from scale_corpus import build  # noqa: E402

WERK = str(Path(sys.executable).parent / "werk")


def _tree_rss(proc: psutil.Process) -> tuple[int, int]:
    """(the process's RSS, the RSS of it and all its descendants), in bytes."""
    own = proc.memory_info().rss
    total = own
    for child in proc.children(recursive=True):
        try:
            total += child.memory_info().rss
        except psutil.Error:
            pass
    return own, total


def measure(corpus: Path, home: Path, unit_bytes: int) -> dict[str, float]:
    env = {**os.environ, "WERK_HOME": str(home)}
    t0 = time.perf_counter()
    proc = subprocess.Popen([WERK, "ingest", "--recipe", "demo", "--source", str(corpus), "--json",
                             "--set", f"ingest.unit_bytes={unit_bytes}"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peaks = [0, 0]
    done = threading.Event()

    def sample() -> None:
        ps = psutil.Process(proc.pid)
        while not done.is_set():
            try:
                own, total = _tree_rss(ps)
            except psutil.Error:
                break
            peaks[0], peaks[1] = max(peaks[0], own), max(peaks[1], total)
            done.wait(0.25)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = proc.communicate()
    wall = time.perf_counter() - t0
    done.set()
    sampler.join()
    if proc.returncode:
        raise SystemExit(f"werk ingest failed ({proc.returncode}):\n{err[-3000:]}")
    stats = json.loads(out)
    return {"wall_s": round(wall, 1), "mb_in": round(stats["bytes_in"] / 1e6, 1), "docs_in": stats["docs_in"],
            "kept": stats["kept"], "mb_s": round(stats["bytes_in"] / 1e6 / wall, 3),
            "driver_peak_mib": round(peaks[0] / 2**20), "tree_peak_mib": round(peaks[1] / 2**20)}


def stage_rate(corpus: Path, root: Path, unit_bytes: int) -> float:
    """MB/s of the ingest stage alone (plan, all steps, publish) on the running local Ray with two
    workers: what the per-core goal is about, without the command's fixed start-up (Prefect's
    server, Ray, MLflow), which dominates `wall_s` at these sizes."""
    from flows.recipe import load_recipe
    from infra.ray_cluster import mapper
    from tasks.ingest import stage

    cfg = load_recipe("demo", [f"ingest.sources=[{{name: bench, uri: '{corpus}', license: x}}]",
                               f"ingest.unit_bytes={unit_bytes}"]).ingest
    t0 = time.perf_counter()
    out, files = stage.plan(cfg, str(root))
    stats = stage.run_ingest(cfg, out, files, mapper(2)).stats.model_dump()
    return stats["bytes_in"] / 1e6 / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    base_mb, sizes = (2, (1, 4)) if args.quick else (8, (1, 4, 16))
    file_bytes = int(base_mb * 1_000_000 / 4)
    rows: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        # The full run measures 1x again at the end, so drift of the machine's speed shows.
        for run, k in enumerate([*sizes] if args.quick else [*sizes, sizes[0]]):
            corpus = tmp / f"corpus-{k}x"
            if not corpus.exists():
                build(corpus, base_mb * k, seed=k, file_bytes=file_bytes)
            row = measure(corpus, tmp / f"home-{run}", file_bytes)
            name = f"{k}x" if f"{k}x" not in rows else f"{k}x-again"
            rows[name] = row
            print(f"{name:>9}: {json.dumps(row)}", flush=True)
        # The stage alone, 1x and the largest size alternately, on one local Ray.
        from infra.ray_cluster import ray_session

        rates: dict[str, list[float]] = {f"{sizes[0]}x": [], f"{sizes[-1]}x": []}
        with ray_session(min_cpus=2):
            for run in range(2 if args.quick else 3):
                for k in (sizes[0], sizes[-1])[:: 1 if run % 2 == 0 else -1]:
                    rates[f"{k}x"].append(stage_rate(tmp / f"corpus-{k}x", tmp / f"stage-{k}-{run}", file_bytes))
        for name, values in rates.items():
            rows[name]["stage_mb_s"] = round(statistics.median(values), 3)
            print(f"{name:>9}: stage alone {values} MB/s", flush=True)
    first = f"{sizes[0]}x"
    firsts = [rows[name] for name in (first, f"{first}-again") if name in rows]
    base_peak = statistics.mean([r["driver_peak_mib"] for r in firsts])
    base_rate = statistics.mean([r["mb_s"] for r in firsts])
    top = rows[f"{sizes[-1]}x"]
    print(json.dumps({"name": "ingest_scale", "value": top["driver_peak_mib"], "baseline": round(base_peak),
                      "unit": "MiB driver peak RSS", "ratio": round(base_peak / top["driver_peak_mib"], 3),
                      "mb_s_ratio": round(top["mb_s"] / base_rate, 3),
                      "stage_mb_s_ratio": round(top["stage_mb_s"] / rows[first]["stage_mb_s"], 3),
                      "stage_mb_s_per_core_1x": round(rows[first]["stage_mb_s"] / 2, 3),
                      "sizes": rows}))


if __name__ == "__main__":
    main()
