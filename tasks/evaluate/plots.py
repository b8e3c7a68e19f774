"""PNG plots for the evaluation report: the training curves and bits per byte per group."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402


def loss_curves(curves: dict[str, list[tuple[int, float]]], path: Path) -> Path:
    """`curves`: metric name -> (step, value) points, e.g. train/loss and val/loss."""
    fig, ax = plt.subplots(figsize=(7, 4))
    for name, points in curves.items():
        if points:
            steps, values = zip(*sorted(points))
            ax.plot(steps, values, label=name, marker="o" if len(points) < 30 else None)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss (nats/token)")
    ax.set_title("Training and validation loss")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def bits_per_byte(groups: dict[str, dict[str, float]], path: Path) -> Path:
    """`groups`: group name -> {"model": bpb, "unigram": bpb}."""
    names = list(groups)
    fig, ax = plt.subplots(figsize=(max(5, 1.2 * len(names)), 4))
    xs = range(len(names))
    ax.bar([x - 0.2 for x in xs], [groups[n]["model"] for n in names], width=0.4, label="model")
    ax.bar([x + 0.2 for x in xs], [groups[n]["unigram"] for n in names], width=0.4, label="unigram baseline")
    ax.set_xticks(list(xs), names, rotation=20, ha="right")
    ax.set_ylabel("bits per byte (lower is better)")
    ax.set_title("Held-out bits per byte by source and language")
    ax.grid(axis="y", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
