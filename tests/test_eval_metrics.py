"""Bits per byte is the summed cross-entropy in bits over the UTF-8 bytes of the scored tokens."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from models.gpt import GPT, GPTConfig
from tasks.evaluate import metrics


def test_unigram_bits_per_byte_on_a_hand_computed_example():
    counts = np.array([3, 1])  # add-one smoothing: p = [4/6, 2/6]
    windows = np.array([[0, 0, 1]])  # targets: 0 then 1
    byte_lengths = np.array([1, 2])  # 3 bytes in all
    score = metrics.unigram_score(counts, windows, byte_lengths)
    nats = -math.log(4 / 6) - math.log(2 / 6)
    assert score.tokens == 2 and score.bytes == 3
    assert score.loss == pytest.approx(nats / 2)
    assert score.bits_per_byte == pytest.approx(nats / math.log(2) / 3)
    assert score.perplexity == pytest.approx(math.exp(nats / 2))


def test_model_bits_per_byte_equals_the_loss_derived_value():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=11, block_size=8, n_layer=1, n_head=1, n_embd=8)).eval()
    windows = np.random.default_rng(0).integers(0, 11, (3, 9))
    byte_lengths = np.arange(1, 12)
    score = metrics.model_score(model, windows, byte_lengths, batch_size=2)
    x, y = torch.from_numpy(windows[:, :-1]), torch.from_numpy(windows[:, 1:])
    with torch.no_grad():
        mean_nats = float(F.cross_entropy(model(x).reshape(-1, 11), y.reshape(-1)))
    n_bytes = int(byte_lengths[windows[:, 1:]].sum())
    assert score.loss == pytest.approx(mean_nats, rel=1e-5)
    assert score.bits_per_byte == pytest.approx(mean_nats * 24 / math.log(2) / n_bytes, rel=1e-5)
