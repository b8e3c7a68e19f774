"""Held-out loss, perplexity and bits per byte, for the model and for a unigram baseline.

Bits per byte divides the summed cross-entropy (in bits) by the UTF-8 bytes of the scored target
tokens, so it compares models with different tokenizers. Each byte-level BPE token stands for a
fixed byte string; `<|endoftext|>` counts as one byte (the document boundary).
The unigram baseline predicts every token by its add-one-smoothed frequency in the training split:
a model that has learned anything from context must beat it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class Score:
    loss: float  # mean nats per token
    perplexity: float
    bits_per_byte: float
    tokens: int
    bytes: int


def _score(total_nats: float, tokens: int, n_bytes: int) -> Score:
    loss = total_nats / tokens
    return Score(loss, math.exp(loss), total_nats / math.log(2) / n_bytes, tokens, n_bytes)


def eval_windows(tokens: np.ndarray, block_size: int, max_tokens: int) -> np.ndarray:
    """Non-overlapping windows of block_size+1 tokens from the start, at most max_tokens targets."""
    n = min((len(tokens) - 1) // block_size, max(1, max_tokens // block_size))
    if n < 1:
        raise ValueError(f"held-out split has {len(tokens)} tokens, fewer than block_size+1={block_size + 1}")
    idx = np.arange(n)[:, None] * block_size + np.arange(block_size + 1)
    return np.asarray(tokens[idx], dtype=np.int64)


@torch.no_grad()
def model_score(model, windows: np.ndarray, byte_lengths: np.ndarray, batch_size: int) -> Score:
    total = 0.0
    for i in range(0, len(windows), batch_size):
        batch = torch.from_numpy(windows[i : i + batch_size])
        total += float(model.loss(batch[:, :-1], batch[:, 1:], reduction="sum"))
    targets = windows[:, 1:]
    return _score(total, targets.size, int(byte_lengths[targets].sum()))


def unigram_score(train_counts: np.ndarray, windows: np.ndarray, byte_lengths: np.ndarray) -> Score:
    probs = (train_counts + 1.0) / (train_counts.sum() + len(train_counts))
    targets = windows[:, 1:]
    total = float(-np.log(probs[targets]).sum())
    return _score(total, targets.size, int(byte_lengths[targets].sum()))
