"""What each stage did, in one line a person reads: for Prefect's run logs and the terminal.

Pure functions of a stage task's result (the dict it returns), so the line is the same whether
the stage ran now or its output was reused, and whichever process shows it.
"""

from __future__ import annotations

from typing import Any, Callable

# Above this share of rejected documents, an ingest deserves a second look (a wrong language
# keep-list, a misread format): the terminal shows it as a warning.
QUARANTINE_WARNING_SHARE = 0.5


def _n(x: float) -> str:
    return f"{x:,.0f}"


def _mb(n_bytes: float) -> str:
    return f"{n_bytes / 1e6:,.1f} MB"


def ingest(result: dict[str, Any]) -> str:
    s = result["stats"]
    rejected = sum(s["rejected"].values())
    top = ", ".join(f"{reason} {_n(n)}" for reason, n in sorted(s["rejected"].items(), key=lambda kv: (-kv[1], kv[0]))[:3])
    redacted = sum(s.get("redactions", {}).values())
    return (f"read {_n(s['docs_in'])} documents ({_mb(s['bytes_in'])}) from {len(s['by_source'])} source(s); "
            f"kept {_n(s['kept'])} (train {_n(s['splits']['train'])}, val {_n(s['splits']['val'])}); "
            f"rejected {_n(rejected)}" + (f" ({top})" if top else "") + f"; {_n(redacted)} PII redaction(s)")


def quarantine_warning(result: dict[str, Any]) -> str | None:
    s = result["stats"]
    rejected = sum(s["rejected"].values())
    if s["docs_in"] and rejected / s["docs_in"] > QUARANTINE_WARNING_SHARE:
        top = max(s["rejected"].items(), key=lambda kv: kv[1])[0]
        return (f"{rejected / s['docs_in']:.0%} of the documents were rejected (most: {top}); "
                f"see the quarantine at {result['outputs']['quarantine']}")
    return None


def tokenizer(result: dict[str, Any]) -> str:
    s = result["summary"]
    how = "trained" if s.get("source") == "trained" else f"loaded from {s.get('source')}"
    fertility = ", ".join(f"{lang} {row['tokens_per_word']:.2f}" for lang, row in sorted(s.get("fertility", {}).items()))
    return f"{how}: {_n(s['vocab_size'])} tokens" + (f"; tokens per word: {fertility}" if fertility else "")


def encode(result: dict[str, Any]) -> str:
    splits = result["summary"]["splits"]
    parts = [f"{split} {_n(d['tokens'])} tokens in {len(d['shards'])} shard(s) ({_n(d['docs'])} documents)"
             for split, d in splits.items()]
    return "encoded " + "; ".join(parts)


def pretrain(result: dict[str, Any]) -> str:
    s = result["summary"]
    m = s.get("metrics", {})
    losses = ", ".join(f"{label} {m[key]:.4f}" for key, label in (("train/loss", "train loss"), ("val/loss", "val loss"),
                                                                   ("val/bpb", "val bpb")) if key in m)
    best = s.get("best")
    return (f"{_n(s['global_step'])} steps, {_n(s['parameters'])} parameters" + (f"; {losses}" if losses else "")
            + (f"; best checkpoint at step {best['step']}" if best and "step" in best else ""))


def evaluate(result: dict[str, Any]) -> str:
    r = result["report"]
    model, unigram = r["model"], r["unigram_baseline"]
    tasks = ", ".join(f"{name} {t['acc']:.3f} (chance {t['random_baseline']:.3f})" for name, t in r.get("tasks", {}).items())
    return (f"held-out loss {model['loss']:.4f}, perplexity {model['perplexity']:.2f}, "
            f"{model['bits_per_byte']:.3f} bits/byte (unigram {unigram['bits_per_byte']:.3f})"
            + (f"; {tasks}" if tasks else ""))


def register(result: dict[str, Any]) -> str:
    verdict = "promoted to @champion" if result["promoted"] else "not promoted"
    again = " (registered before)" if result.get("cached") else ""
    return f"{result['model_uri']} version {result['version']}{again}: {verdict}. {result['gate']['reason']}"


LINES: dict[str, Callable[[dict[str, Any]], str]] = {
    "ingest": ingest, "tokenizer": tokenizer, "encode": encode, "pretrain": pretrain, "evaluate": evaluate,
    "register": register,
}


def line(result: dict[str, Any]) -> str:
    """The stage's line, or its output folder when it has no line of its own."""
    describe = LINES.get(result.get("stage", ""))
    return describe(result) if describe else f"output {result.get('uri', '')}"
