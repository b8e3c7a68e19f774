"""Rotary layouts. Werk rotates adjacent channel pairs (2i, 2i+1) of each head (`apply_rope`);
Hugging Face's Llama rotates channel i with i + head_dim/2 (`rotate_half`). Permuting the rows of
the query and key projections (and their biases) per head turns one layout into the other: the
attention scores, and so the logits, are unchanged. Without it the model still runs, gives
fluent-looking greedy text and wrong probabilities."""

from __future__ import annotations

import torch


def to_half_split(w: torch.Tensor, heads: int) -> torch.Tensor:
    """Rows of a q or k projection (heads * head_dim, ...) from interleaved pairs to halves."""
    rest = w.shape[1:]
    return w.reshape(heads, -1, 2, *rest).transpose(1, 2).reshape(w.shape).contiguous()


def to_interleaved(w: torch.Tensor, heads: int) -> torch.Tensor:
    """The inverse of `to_half_split`."""
    rest = w.shape[1:]
    return w.reshape(heads, 2, -1, *rest).transpose(1, 2).reshape(w.shape).contiguous()
