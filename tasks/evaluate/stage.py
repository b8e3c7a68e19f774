"""The evaluate stage: held-out loss, perplexity and bits per byte (overall, per source, per
language) against a unigram baseline; downstream tasks; samples; a report with plots."""

from __future__ import annotations

import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

import numpy as np

from infra import storage
from tasks.artifacts import StageOutput
from tasks.tracking.compute import measured
from tasks.config_base import StageConfig
from tasks.encode.record import EncodeSummary
from tasks.encode.shard_format import open_shard
from tasks.evaluate import downstream, metrics, plots
from tasks.evaluate.address import STAGE, VERSION, plan  # noqa: F401 (the stage's address)
from tasks.evaluate.config import EvalConfig
from tasks.evaluate.record import EvaluateRecord
from tasks.evaluate.groups import held_out_groups
from tasks.evaluate.report import markdown
from tasks.evaluate.samples import generate
from tasks.tokenizer.byte_lengths import token_byte_lengths
from tasks.tokenizer.train import EOT, load_tokenizer
from tasks.training.launch import load_model

PLOTS = ("loss_curves.png", "bits_per_byte.png")
OnScored = Callable[[str, int, int], None]  # (what is counted, done, in all)


class EvalInputs(StageConfig):
    """URIs of what the stage reads; the pretrain key already names all of it."""

    weights: str
    config: str
    tokenizer: str
    encode_summary: EncodeSummary
    encode_index: str
    ingest_manifest: str
    checkpoints: list[dict[str, Any]] = []  # kept training checkpoints: {"uri", "step", "kind"}
    final_step: int | None = None  # the step of the exported weights: that checkpoint is not scored twice


def _concat(shards: list[str]) -> np.ndarray:
    return np.concatenate([np.asarray(open_shard(storage.local_copy(u))[1]) for u in shards])


def _checkpoint_rows(cfg: EvalConfig, checkpoints: list[dict[str, Any]], tasks, windows: np.ndarray,
                     group_windows: dict[str, np.ndarray], byte_lengths: np.ndarray,
                     final_step: int | None, final: dict[str, Any], on_scored: OnScored) -> list[dict[str, Any]]:
    """Held-out bits per byte (overall, per source and language) and task accuracy of every
    checkpoint training kept (newest and best); the final one has the exported weights, so it
    takes `final`, the scores already computed for them."""
    from tasks.evaluate.standalone import load_checkpoint

    rows = []
    for ckpt in sorted(checkpoints, key=lambda c: c["step"]):
        on_scored("checkpoints scored", len(rows), len(checkpoints))
        if ckpt["step"] == final_step:
            rows.append({"step": ckpt["step"], "kind": ckpt["kind"], "uri": ckpt["uri"], **final})
            continue
        model, tok = load_checkpoint(ckpt["uri"])
        score = metrics.model_score(model, windows, byte_lengths, cfg.batch_size)
        accs = {name: downstream.evaluate_task(model, tok, name, items, cfg.task_batch_size).acc for name, items in tasks}
        groups = {name: metrics.model_score(model, w, byte_lengths, cfg.batch_size).bits_per_byte
                  for name, w in group_windows.items()}
        rows.append({"step": ckpt["step"], "kind": ckpt["kind"], "uri": ckpt["uri"],
                     "bits_per_byte": score.bits_per_byte, "groups": groups, "tasks": accs})
    on_scored("checkpoints scored", len(rows), len(checkpoints))
    return rows


def _ignore(what: str, done: int, total: int) -> None:
    pass


@measured
def run_evaluate(cfg: EvalConfig, out: StageOutput, recipe_name: str, inputs: EvalInputs,
                 curves: dict[str, list[tuple[int, float]]], on_scored: OnScored = _ignore) -> EvaluateRecord:
    """`curves`: the training run's logged loss points, for the report's plot. `on_scored(what,
    done, total)` hears the tasks, then the checkpoints, as each is scored."""
    import torch

    tasks = [downstream.load_task(t) for t in cfg.tasks]  # a bad task name fails before any scoring
    torch.manual_seed(cfg.seed)
    model = load_model(inputs.weights, inputs.config)
    tok = load_tokenizer(inputs.tokenizer)
    byte_lengths = token_byte_lengths(tok)
    splits = inputs.encode_summary.splits
    block = model.config.block_size
    windows = metrics.eval_windows(_concat(splits["val"].shards), block, cfg.max_tokens)
    counts = np.zeros(tok.get_vocab_size(), dtype=np.int64)
    for uri in splits["train"].shards:
        counts += np.bincount(open_shard(storage.local_copy(uri))[1], minlength=len(counts))
    model_s = metrics.model_score(model, windows, byte_lengths, cfg.batch_size)
    unigram_s = metrics.unigram_score(counts, windows, byte_lengths)

    groups, group_windows = {}, {}
    for name, tokens in held_out_groups(inputs.ingest_manifest, inputs.encode_index, splits["val"].shards,
                                        tok.token_to_id(EOT)).items():
        if len(tokens) <= block:
            continue  # too little held-out text in this group for one window
        w = group_windows[name] = metrics.eval_windows(tokens, block, cfg.group_max_tokens)
        groups[name] = {"model": asdict(metrics.model_score(model, w, byte_lengths, cfg.batch_size)),
                        "unigram": asdict(metrics.unigram_score(counts, w, byte_lengths))}

    task_results = {}
    for name, items in tasks:
        on_scored("tasks scored", len(task_results), len(tasks))
        task_results[name] = asdict(downstream.evaluate_task(model, tok, name, items, cfg.task_batch_size))
    on_scored("tasks scored", len(task_results), len(tasks))
    final = {"bits_per_byte": model_s.bits_per_byte, "tasks": {n: r["acc"] for n, r in task_results.items()},
             "groups": {n: g["model"]["bits_per_byte"] for n, g in groups.items()}}
    checkpoints = _checkpoint_rows(cfg, inputs.checkpoints, tasks, windows, group_windows, byte_lengths,
                                   inputs.final_step, final, on_scored)
    samples = [
        {"prompt": p, "text": generate(model, tok, p, cfg.sample_tokens, cfg.temperature, cfg.top_k, cfg.seed,
                                       top_p=cfg.top_p)}
        for p in cfg.prompts
    ]
    report = {
        "recipe": recipe_name,
        "model": asdict(model_s),
        "unigram_baseline": asdict(unigram_s),
        "bpb_ratio_to_unigram": model_s.bits_per_byte / unigram_s.bits_per_byte,
        "groups": groups,
        "tasks": task_results,
        "checkpoints": checkpoints,
        "sampling": {"temperature": cfg.temperature, "top_k": cfg.top_k, "top_p": cfg.top_p, "seed": cfg.seed,
                     "max_new_tokens": cfg.sample_tokens},
        "samples": samples,
        "plots": list(PLOTS),
    }
    with tempfile.TemporaryDirectory() as tmp:
        plots.loss_curves(curves, Path(tmp) / PLOTS[0])
        plots.bits_per_byte({"all": {"model": model_s.bits_per_byte, "unigram": unigram_s.bits_per_byte},
                             **{k: {"model": v["model"]["bits_per_byte"], "unigram": v["unigram"]["bits_per_byte"]}
                                for k, v in groups.items()}}, Path(tmp) / PLOTS[1])
        for name in PLOTS:
            storage.upload_file(Path(tmp) / name, out.path(name))
    storage.write_json(out.path("eval_report.json"), report)
    with storage.open_write(out.path("eval_report.md"), "w") as fh:
        fh.write(markdown(report))
    return out.publish(EvaluateRecord, summary=report, outputs={
        "report_json": out.path("eval_report.json"), "report_md": out.path("eval_report.md"),
        **{name: out.path(name) for name in PLOTS}})
