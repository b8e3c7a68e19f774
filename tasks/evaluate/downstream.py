"""Zero-shot multiple-choice and cloze tasks, scored by log-likelihood.

A task is a JSONL file, one item per line: `context` (text), `choices` (continuations, each with
its leading space), `answer` (index of the right one), and optionally `id` and `language`. The
model picks the choice with the highest summed log-probability given the context (`acc`), or the
highest per byte of the choice (`acc_norm`, fairer between choices of different lengths). Each
accuracy comes with its standard error and the random-guess baseline (mean of 1/choices).
Werk ships tasks in `suite/`; any path to a file in this format works too.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from tasks.evaluate.suite import available

EOT = "<|endoftext|>"


class TaskError(ValueError):
    """A task that does not exist or a task file that is not in the documented format."""


@dataclass(frozen=True)
class Item:
    id: str
    context: str
    choices: tuple[str, ...]
    answer: int
    language: str | None = None


def _item(raw: Any, where: str) -> Item:
    if not isinstance(raw, dict):
        raise TaskError(f"{where}: an item must be a JSON object")
    missing = {"context", "choices", "answer"} - raw.keys()
    if missing:
        raise TaskError(f"{where}: missing field(s) {', '.join(sorted(missing))}")
    choices = raw["choices"]
    if not isinstance(raw["context"], str):
        raise TaskError(f"{where}: `context` must be a string")
    if not isinstance(choices, list) or len(choices) < 2 or not all(isinstance(c, str) and c for c in choices):
        raise TaskError(f"{where}: `choices` must be a list of at least 2 non-empty strings")
    answer = raw["answer"]
    if not isinstance(answer, int) or isinstance(answer, bool) or not 0 <= answer < len(choices):
        raise TaskError(f"{where}: `answer` must be an index into `choices` (0..{len(choices) - 1}), got {answer!r}")
    return Item(str(raw.get("id", where)), raw["context"], tuple(choices), answer, raw.get("language"))


def load_task(name_or_path: str) -> tuple[str, list[Item]]:
    """A shipped task by name, or a task file by path; a clear `TaskError` otherwise."""
    path = Path(name_or_path)
    if not (path.suffix == ".jsonl" and path.exists()):
        tasks = available()
        if name_or_path not in tasks:
            raise TaskError(f"unknown task {name_or_path!r}; shipped tasks: {', '.join(tasks)} (or give a .jsonl path)")
        path = tasks[name_or_path]
    items = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                raw = json.loads(line)
            except json.JSONDecodeError as exc:
                raise TaskError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from None
            items.append(_item(raw, f"{path}:{lineno}"))
    if not items:
        raise TaskError(f"{path}: no items")
    return path.stem, items


@torch.no_grad()
def loglikelihood(model, requests: list[tuple[list[int], list[int]]], pad_id: int,
                  batch_size: int = 16) -> list[tuple[float, bool]]:
    """For each (context ids, continuation ids): log P(continuation | context) and whether the
    continuation is the greedy one. Context is cut from the left to fit the model's window."""
    block = model.config.block_size
    out: list[tuple[float, bool]] = []
    for start in range(0, len(requests), batch_size):
        chunk = requests[start : start + batch_size]
        seqs = [(ctx + cont)[-(block + 1):] for ctx, cont in chunk]
        width = max(len(s) for s in seqs) - 1
        inputs = torch.full((len(seqs), width), pad_id, dtype=torch.long)
        for i, s in enumerate(seqs):
            inputs[i, : len(s) - 1] = torch.tensor(s[:-1])
        logprobs = F.log_softmax(model(inputs).float(), dim=-1)
        for i, ((_, cont), s) in enumerate(zip(chunk, seqs)):
            n = min(len(cont), len(s) - 1)
            positions = torch.arange(len(s) - 1 - n, len(s) - 1)
            targets = torch.tensor(s[-n:])
            rows = logprobs[i, positions]
            out.append((float(rows.gather(1, targets[:, None]).sum()), bool((rows.argmax(-1) == targets).all())))
    return out


def _mean_stderr(values: np.ndarray) -> tuple[float, float]:
    n = len(values)
    return float(values.mean()), float(values.std(ddof=1) / math.sqrt(n)) if n > 1 else float("nan")


@dataclass
class TaskResult:
    task: str
    n: int
    acc: float
    acc_stderr: float
    acc_norm: float
    acc_norm_stderr: float
    random_baseline: float
    by_language: dict[str, dict[str, float]] = field(default_factory=dict)


def evaluate_task(model, tok, name: str, items: list[Item], batch_size: int = 16) -> TaskResult:
    eot = tok.token_to_id(EOT)
    requests, owners = [], []
    for k, item in enumerate(items):
        ctx = tok.encode(item.context).ids if item.context else []
        for choice in item.choices:
            requests.append(([eot, *ctx], tok.encode(choice).ids))
            owners.append(k)
    scores = [lp for lp, _ in loglikelihood(model, requests, pad_id=eot, batch_size=batch_size)]
    correct, correct_norm, chance = [], [], []
    at = 0
    for item in items:
        s = np.array(scores[at : at + len(item.choices)])
        per_byte = s / np.array([len(c.encode("utf-8")) for c in item.choices])
        at += len(item.choices)
        correct.append(float(s.argmax() == item.answer))
        correct_norm.append(float(per_byte.argmax() == item.answer))
        chance.append(1.0 / len(item.choices))
    correct_a, norm_a = np.array(correct), np.array(correct_norm)
    acc, acc_se = _mean_stderr(correct_a)
    acc_n, acc_n_se = _mean_stderr(norm_a)
    by_language: dict[str, dict[str, float]] = {}
    for language in sorted({i.language for i in items if i.language}):
        mask = np.array([i.language == language for i in items])
        by_language[language] = {"n": int(mask.sum()), "acc": float(correct_a[mask].mean()),
                                  "acc_norm": float(norm_a[mask].mean())}
    return TaskResult(name, len(items), acc, acc_se, acc_n, acc_n_se, float(np.mean(chance)), by_language)
