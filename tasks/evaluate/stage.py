"""The evaluate stage: score the trained model on held-out data against a unigram baseline."""

from __future__ import annotations

from typing import Any

import numpy as np

from infra import storage
from tasks.artifacts import StageOutput
from tasks.encode.shard_format import open_shard
from tasks.evaluate import metrics
from tasks.evaluate.config import EvalConfig
from tasks.evaluate.report import markdown
from tasks.evaluate.samples import generate
from tasks.training.launch import load_model
from tasks.tokenizer.train import load_tokenizer

STAGE = "evaluate"
VERSION = 1


def plan(cfg: EvalConfig, root: str, pretrain_key: str) -> StageOutput:
    return StageOutput.at(root, STAGE, VERSION, cfg, {"pretrain": pretrain_key})


def _concat(shards: list[str]) -> np.ndarray:
    return np.concatenate([np.asarray(open_shard(storage.local_copy(u))[1]) for u in shards])


def run_evaluate(
    cfg: EvalConfig,
    out: StageOutput,
    recipe_name: str,
    weights_uri: str,
    model_config_uri: str,
    tokenizer_uri: str,
    encode_summary: dict[str, Any],
) -> dict[str, Any]:
    import torch

    torch.manual_seed(cfg.seed)
    model = load_model(weights_uri, model_config_uri)
    tok = load_tokenizer(tokenizer_uri)
    byte_lengths = metrics.token_byte_lengths(tok)
    splits = encode_summary["splits"]
    windows = metrics.eval_windows(_concat(splits["val"]["shards"]), model.config.block_size, cfg.max_tokens)
    counts = np.zeros(tok.get_vocab_size(), dtype=np.int64)
    for uri in splits["train"]["shards"]:
        counts += np.bincount(open_shard(storage.local_copy(uri))[1], minlength=len(counts))
    model_s = metrics.model_score(model, windows, byte_lengths, cfg.batch_size)
    unigram_s = metrics.unigram_score(counts, windows, byte_lengths)
    samples = [
        {"prompt": p, "text": generate(model, tok, p, cfg.sample_tokens, cfg.temperature, cfg.top_k, cfg.seed)}
        for p in cfg.prompts
    ]
    report = {
        "recipe": recipe_name,
        "model": model_s.__dict__,
        "unigram_baseline": unigram_s.__dict__,
        "bpb_ratio_to_unigram": model_s.bits_per_byte / unigram_s.bits_per_byte,
        "samples": samples,
    }
    storage.write_json(out.path("report.json"), report)
    with storage.open_write(out.path("report.md"), "w") as fh:
        fh.write(markdown(report))
    out.publish({"summary": report, "outputs": {"report_json": out.path("report.json"), "report_md": out.path("report.md")}})
    return report
