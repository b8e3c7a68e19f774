"""Evaluate any Werk model outside the pipeline: a registered MLflow model or a training
checkpoint, on downstream tasks and (optionally) bits per byte of given text files."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from infra import storage
from tasks.evaluate import downstream, metrics
from tasks.tokenizer.byte_lengths import token_byte_lengths


def load_registered(model_uri: str):
    """(GPT, tokenizer) of a model Werk registered in MLflow, e.g. `models:/werk-demo@champion`."""
    import mlflow.pyfunc

    generator = mlflow.pyfunc.load_model(model_uri).unwrap_python_model()
    return generator.model, generator.tokenizer


def load_checkpoint(uri: str, tokenizer_uri: str | None = None):
    """(GPT, tokenizer) from a checkpoint Werk's trainer wrote (loaded with `weights_only=True`)."""
    from models.gpt import GPT, GPTConfig
    from tasks.tokenizer.train import load_tokenizer

    state = torch.load(storage.local_copy(uri), map_location="cpu", weights_only=True)
    meta = state.get("werk") or {}
    if "model_config" not in meta:
        raise ValueError(f"{uri} does not describe its model: not a checkpoint written by Werk's trainer")
    tokenizer_uri = tokenizer_uri or meta.get("tokenizer")
    if not tokenizer_uri:
        raise ValueError(f"{uri} does not name its tokenizer: pass --tokenizer")
    model = GPT(GPTConfig(**meta["model_config"]))
    model.load_state_dict({k.removeprefix("model."): v for k, v in state["state_dict"].items() if k.startswith("model.")})
    return model.eval(), load_tokenizer(tokenizer_uri)


def text_bits_per_byte(model, tok, paths: list[str], batch_size: int, max_tokens: int = 200_000) -> dict[str, Any]:
    eot = tok.token_to_id("<|endoftext|>")
    ids = [eot]
    for path in paths:
        ids += tok.encode(Path(path).read_text(encoding="utf-8")).ids + [eot]
    windows = metrics.eval_windows(np.asarray(ids), model.config.block_size, max_tokens)
    return asdict(metrics.model_score(model, windows, token_byte_lengths(tok), batch_size))


def _harness(model, tok, tasks: list[tuple[str, list[downstream.Item]]], sources: list[str],
             batch_size: int) -> dict[str, Any]:
    from tasks.evaluate.harness import WerkLM, run

    scores = run(WerkLM(model=model, tokenizer=tok, batch_size=batch_size), sources)
    return {name: {"task": name, "n": len(items), **scores[name],
                   "random_baseline": float(np.mean([1 / len(i.choices) for i in items]))}
            for name, items in tasks}


def evaluate_model(model, tok, tasks: list[tuple[str, list[downstream.Item]]], texts: list[str],
                   batch_size: int, harness_sources: list[str] | None = None) -> dict[str, Any]:
    """Werk's scorer, or lm-evaluation-harness when `harness_sources` (the task names/paths) are given."""
    if harness_sources is not None:
        result: dict[str, Any] = {"engine": "lm-eval", "tasks": _harness(model, tok, tasks, harness_sources, batch_size)}
    else:
        result = {"engine": "werk", "tasks": {name: asdict(downstream.evaluate_task(model, tok, name, items, batch_size))
                                              for name, items in tasks}}
    if texts:
        result["text"] = text_bits_per_byte(model, tok, texts, batch_size)
    return result
