"""Shared helpers for Werk benchmarks: alternate Werk's path and its baseline, report ratios.

This machine is noisy (other work moves throughput by up to 2.7x), so each benchmark runs the two
paths alternately, several rounds, and reports medians and their ratio. The last line printed is
one JSON object: name, value, baseline, unit, ratio (Werk / baseline, higher is better).
"""

from __future__ import annotations

import json
import statistics
import time
from typing import Callable


def alternate(werk: Callable[[], float], baseline: Callable[[], float], rounds: int) -> tuple[list[float], list[float]]:
    """Run werk() and baseline() alternately; each returns a throughput (higher is better)."""
    w, b = [], []
    for i in range(rounds):
        first, second = (werk, baseline) if i % 2 == 0 else (baseline, werk)
        r1, r2 = first(), second()
        (w if first is werk else b).append(r1)
        (b if first is werk else w).append(r2)
    return w, b


def timed(fn: Callable[[], int]) -> float:
    """Units of work per second for one call of fn (which returns how many units it did)."""
    t0 = time.perf_counter()
    n = fn()
    return n / (time.perf_counter() - t0)


def report(name: str, unit: str, werk: list[float], baseline: list[float], **extra) -> None:
    value, base = statistics.median(werk), statistics.median(baseline)
    print(f"{name}: werk {value:,.0f} {unit} (runs {[round(x, 2) for x in werk]}), "
          f"baseline {base:,.0f} {unit} (runs {[round(x, 2) for x in baseline]})")
    print(json.dumps({"name": name, "value": round(value, 2), "baseline": round(base, 2), "unit": unit,
                      "ratio": round(value / base, 3), **extra}))
