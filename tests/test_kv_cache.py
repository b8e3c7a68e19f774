"""Generation with a KV cache: the same logits and the same greedy text as recomputing the context."""

from __future__ import annotations

import pytest
import torch

from models.gpt import GPT, GPTConfig, KVCache

FAMILIES = {
    "gpt2": dict(norm="layernorm", mlp="gelu", position="learned", bias=True),
    "modern-gqa": dict(norm="rmsnorm", mlp="swiglu", position="rope", n_kv_head=2, tie_embeddings=False),
}


def _model(family: str, block_size: int = 24) -> GPT:
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=97, block_size=block_size, n_layer=2, n_head=4, n_embd=32, **FAMILIES[family]))
    return model.eval()


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_cached_steps_give_the_logits_of_the_whole_sequence(family):
    model = _model(family)
    ids = torch.randint(0, 97, (2, 20))
    with torch.no_grad():
        full = model(ids)
        cache = KVCache(model.config.n_layer)
        # A prompt of 7, then 5 at once (queries after cached keys: the offset causal mask), then one at a time.
        parts = [model(ids[:, :7], cache), model(ids[:, 7:12], cache)] + [model(ids[:, i:i + 1], cache) for i in range(12, 20)]
    assert cache.length == 20
    torch.testing.assert_close(torch.cat(parts, dim=1), full, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="exceeds block_size"):
        model(ids[:, :5], cache)  # 25 positions in a model of 24


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_greedy_generation_is_unchanged_by_the_cache_also_past_the_block_size(family):
    model = _model(family, block_size=16)
    prompt = torch.randint(0, 97, (2, 5))
    cached = model.generate(prompt, 30, temperature=0)  # 35 tokens: past 16, the window slides
    plain = model.generate(prompt, 30, temperature=0, use_cache=False)
    assert torch.equal(cached, plain) and cached.shape == (2, 35)
    stop = int(plain[0, 8])
    early = model.generate(prompt, 30, temperature=0, stop_token=stop)
    assert torch.equal(early, model.generate(prompt, 30, temperature=0, stop_token=stop, use_cache=False))
