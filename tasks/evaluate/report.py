"""The evaluation report, as JSON for machines and Markdown for people, and the flat metrics the
registry gate and MLflow use."""

from __future__ import annotations

from typing import Any, Callable


def flat_metrics(report: dict[str, Any]) -> dict[str, float]:
    """`bits_per_byte`, `loss`, `perplexity`, `<group>/bits_per_byte`, `<task>/acc`, `<task>/acc_norm`."""
    out = {k: float(report["model"][k]) for k in ("bits_per_byte", "loss", "perplexity")}
    out["unigram_bits_per_byte"] = float(report["unigram_baseline"]["bits_per_byte"])
    for group, scores in report.get("groups", {}).items():
        out[f"{group.replace(':', '.')}/bits_per_byte"] = float(scores["model"]["bits_per_byte"])
    for task, r in report.get("tasks", {}).items():
        out[f"{task}/acc"] = float(r["acc"])
        out[f"{task}/acc_norm"] = float(r["acc_norm"])
    return out


def _pm(value: float, stderr: float) -> str:
    return f"{value:.3f} ± {stderr:.3f}"


def markdown(report: dict[str, Any], comparison: list[str] | None = None,
             plot_url: Callable[[str], str] | None = None) -> str:
    """The report as Markdown. `plot_url(file)` says where a plot is served (the MLflow UI's
    artifact address, for the Prefect UI); by default plots are named beside the report."""
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
    ]
    if report.get("groups"):
        lines += ["## By source and language", "", "| group | tokens | model bits/byte | unigram bits/byte |",
                  "|---|---:|---:|---:|"]
        for name, g in report["groups"].items():
            lines.append(f"| {name} | {g['model']['tokens']:,} | {g['model']['bits_per_byte']:.4f} | "
                         f"{g['unigram']['bits_per_byte']:.4f} |")
        lines.append("")
    if report.get("tasks"):
        lines += ["## Downstream tasks (zero-shot, log-likelihood)", "",
                  "| task | items | acc | acc_norm | random guess |", "|---|---:|---:|---:|---:|"]
        for name, t in report["tasks"].items():
            lines.append(f"| {name} | {t['n']} | {_pm(t['acc'], t['acc_stderr'])} | "
                         f"{_pm(t['acc_norm'], t['acc_norm_stderr'])} | {t['random_baseline']:.3f} |")
        lines += ["", "acc ± standard error; acc_norm divides each choice's log-likelihood by its bytes.", ""]
        per_language = [(n, lang, v) for n, t in report["tasks"].items() for lang, v in t["by_language"].items()]
        if per_language:
            lines += ["| task | language | items | acc |", "|---|---|---:|---:|"]
            lines += [f"| {n} | {lang} | {v['n']} | {v['acc']:.3f} |" for n, lang, v in per_language]
            lines.append("")
    if report.get("checkpoints"):
        names = list(report["tasks"])
        lines += ["## Kept checkpoints", "", "| step | kept as | bits/byte | " + " | ".join(f"{n} acc" for n in names) + " |",
                  "|---:|---|---:|" + "---:|" * len(names)]
        for row in report["checkpoints"]:
            lines.append(f"| {row['step']} | {row['kind']} | {row['bits_per_byte']:.4f} | "
                         + " | ".join(f"{row['tasks'].get(n, float('nan')):.3f}" for n in names) + " |")
        lines.append("")
        groups = list(report.get("groups", {}))
        if groups:
            lines += ["| step | " + " | ".join(f"{g} bits/byte" for g in groups) + " |", "|---:|" + "---:|" * len(groups)]
            for row in report["checkpoints"]:
                lines.append(f"| {row['step']} | " + " | ".join(f"{row['groups'].get(g, float('nan')):.4f}"
                                                             for g in groups) + " |")
            lines.append("")
    if comparison:
        lines += ["## Against the champion", "", *comparison, ""]
    if report.get("plots"):
        lines += ["## Plots", "", *[f"![{p}]({plot_url(p) if plot_url else p})" for p in report["plots"]], ""]
    s = report.get("sampling", {})
    lines += ["## Samples", "",
              f"temperature {s.get('temperature')}, top-k {s.get('top_k')}, top-p {s.get('top_p')}, seed {s.get('seed')}", ""]
    for sample in report["samples"]:
        lines += [f"**Prompt:** `{sample['prompt']}`", "", "```text", sample["text"], "```", ""]
    return "\n".join(lines)
