"""The evaluation report, as JSON for machines and Markdown for people."""

from __future__ import annotations

from typing import Any


def markdown(report: dict[str, Any]) -> str:
    m, u = report["model"], report["unigram_baseline"]
    lines = [
        f"# Evaluation: {report['recipe']}",
        "",
        f"Held-out split: {m['tokens']:,} tokens, {m['bytes']:,} bytes.",
        "",
        "| scorer | loss (nats/token) | perplexity | bits per byte |",
        "|---|---:|---:|---:|",
        f"| model | {m['loss']:.4f} | {m['perplexity']:.2f} | {m['bits_per_byte']:.4f} |",
        f"| unigram baseline | {u['loss']:.4f} | {u['perplexity']:.2f} | {u['bits_per_byte']:.4f} |",
        "",
        f"The model's bits per byte are {report['bpb_ratio_to_unigram']:.1%} of the unigram baseline's.",
        "",
        "## Samples",
        "",
    ]
    for s in report["samples"]:
        lines += [f"**Prompt:** `{s['prompt']}`", "", "```text", s["text"], "```", ""]
    return "\n".join(lines)
