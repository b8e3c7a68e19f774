"""Werk's shipped downstream tasks: one JSONL file per task in this folder (see `build.py`)."""

from pathlib import Path

SUITE = Path(__file__).parent


def available() -> dict[str, Path]:
    """Shipped task name -> its file. Light on purpose: recipes validate against it at start-up."""
    return {p.stem: p for p in sorted(SUITE.glob("*.jsonl"))}
