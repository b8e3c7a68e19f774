"""The ingest stats as Markdown, for the Prefect UI and MLflow."""

from __future__ import annotations

from typing import Any


def markdown(stats: dict[str, Any], title: str = "Ingest") -> str:
    rejected = sum(stats["rejected"].values())
    lines = [
        f"# {title}",
        "",
        f"**{stats['docs_in']:,}** documents in = **{stats['kept']:,}** kept + **{rejected:,}** rejected "
        f"({stats['bytes_in']:,} bytes in, {stats['bytes_out']:,} bytes out; "
        f"{stats['splits']['train']:,} train / {stats['splits']['val']:,} validation).",
        "",
        "| source | docs in | kept | rejected |",
        "|---|---:|---:|---:|",
    ]
    for name, c in stats["by_source"].items():
        lines.append(f"| {name} | {c.get('docs_in', 0):,} | {c.get('kept', 0):,} | {c.get('rejected', 0):,} |")
    if stats["rejected"]:
        lines += ["", "| rejected because | documents |", "|---|---:|"]
        lines += [f"| {reason} | {n:,} |" for reason, n in sorted(stats["rejected"].items(), key=lambda kv: -kv[1])]
    if stats.get("redactions"):
        lines += ["", "| redacted | occurrences |", "|---|---:|"]
        lines += [f"| {kind} | {n:,} |" for kind, n in sorted(stats["redactions"].items())]
    ignored = stats.get("files_ignored") or {}
    if ignored:
        lines += ["", f"Files of unsupported types, not read: {sum(len(v) for v in ignored.values())} "
                      "(listed in stats.json)."]
    return "\n".join(lines) + "\n"
