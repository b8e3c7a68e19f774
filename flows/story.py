"""What each stage did, in one line a person reads: for Prefect's run logs and the terminal.

Pure functions of a stage task's result (`flows/results.py`), so the line is the same whether
the stage ran now or its output was reused, and whichever process shows it.
"""

from __future__ import annotations

from typing import Any, Callable

from flows.results import EncodeRun, EvaluateRun, IngestRun, PretrainRun, RegisterRun, StageRun, TokenizerRun

# Above this share of rejected documents, an ingest deserves a second look (a wrong language
# keep-list, a misread format): the terminal shows it as a warning.
QUARANTINE_WARNING_SHARE = 0.5


def _n(x: float) -> str:
    return f"{x:,.0f}"


def _mb(n_bytes: float) -> str:
    return f"{n_bytes / 1e6:,.1f} MB"


def ingest(result: IngestRun) -> str:
    s = result.record.stats
    rejected = sum(s.rejected.values())
    top = ", ".join(f"{reason} {_n(n)}" for reason, n in sorted(s.rejected.items(), key=lambda kv: (-kv[1], kv[0]))[:3])
    redacted = sum(s.redactions.values())
    return (f"read {_n(s.docs_in)} documents ({_mb(s.bytes_in)}) from {len(s.by_source)} source(s); "
            f"kept {_n(s.kept)} (train {_n(s.splits.train)}, val {_n(s.splits.val)}); "
            f"rejected {_n(rejected)}" + (f" ({top})" if top else "") + f"; {_n(redacted)} PII redaction(s)")


def quarantine_warning(result: IngestRun) -> str | None:
    s = result.record.stats
    rejected = sum(s.rejected.values())
    if s.docs_in and rejected / s.docs_in > QUARANTINE_WARNING_SHARE:
        top = max(s.rejected.items(), key=lambda kv: kv[1])[0]
        return (f"{rejected / s.docs_in:.0%} of the documents were rejected (most: {top}); "
                f"see the quarantine at {result.record.outputs.quarantine}")
    return None


def tokenizer(result: TokenizerRun) -> str:
    s = result.record.summary
    how = "trained" if s.source == "trained" else f"loaded from {s.source}"
    fertility = ", ".join(f"{lang} {row.tokens_per_word:.2f}" for lang, row in sorted(s.fertility.items()))
    return f"{how}: {_n(s.vocab_size)} tokens" + (f"; tokens per word: {fertility}" if fertility else "")


def encode(result: EncodeRun) -> str:
    parts = [f"{split} {_n(d.tokens)} tokens in {len(d.shards)} shard(s) ({_n(d.docs)} documents)"
             for split, d in result.record.summary.splits.items()]
    return "encoded " + "; ".join(parts)


def pretrain(result: PretrainRun) -> str:
    s = result.record.summary
    m = s.metrics
    losses = ", ".join(f"{label} {m[key]:.4f}" for key, label in (("train/loss", "train loss"), ("val/loss", "val loss"),
                                                                   ("val/bpb", "val bpb")) if key in m)
    return (f"{_n(s.global_step)} steps, {_n(s.parameters)} parameters" + (f"; {losses}" if losses else "")
            + (f"; best checkpoint at step {s.best.step}" if s.best else ""))


def evaluate(result: EvaluateRun) -> str:
    r = result.record.summary
    model, unigram = r.model, r.unigram_baseline
    tasks = ", ".join(f"{name} {t.acc:.3f} (chance {t.random_baseline:.3f})" for name, t in r.tasks.items())
    return (f"held-out loss {model.loss:.4f}, perplexity {model.perplexity:.2f}, "
            f"{model.bits_per_byte:.3f} bits/byte (unigram {unigram.bits_per_byte:.3f})"
            + (f"; {tasks}" if tasks else ""))


def register(result: RegisterRun) -> str:
    verdict = "promoted to @champion" if result.promoted else "not promoted"
    again = " (registered before)" if result.cached else ""
    return f"{result.model_uri} version {result.version}{again}: {verdict}. {result.gate.reason}"


LINES: dict[str, Callable[[Any], str]] = {
    "ingest": ingest, "tokenizer": tokenizer, "encode": encode, "pretrain": pretrain, "evaluate": evaluate,
    "register": register,
}


def line(result: StageRun) -> str:
    """The stage's line, or its output folder when it has no line of its own."""
    describe = LINES.get(result.stage)
    return describe(result) if describe else f"output {result.uri}"
