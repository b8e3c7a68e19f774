import pytest
import torch

from models.gpt import GPT, GPTConfig
from models.presets import PRESETS
from tasks.training.config import ModelConfig

MODERN = dict(norm="rmsnorm", mlp="swiglu", position="rope")  # the default
GPT2 = dict(norm="layernorm", mlp="gelu", position="learned")


def _cfg(**kw):
    return GPTConfig(**{"vocab_size": 50, "block_size": 16, "n_layer": 2, "n_head": 4, "n_embd": 32, **kw})


@pytest.mark.parametrize("kw", [
    GPT2, {}, {**MODERN, "n_kv_head": 2}, {**MODERN, "n_kv_head": 1, "tie_embeddings": False},
    {**GPT2, "norm": "rmsnorm"}, {**GPT2, "mlp": "swiglu"}, {**GPT2, "position": "rope"},
])
def test_variants_are_causal_and_learn(kw):
    torch.manual_seed(0)
    model = GPT(_cfg(**kw))
    x = torch.randint(0, 50, (2, 16))
    y = x.clone()
    y[:, 9:] = (y[:, 9:] + 1) % 50
    model.eval()
    assert torch.allclose(model(x)[:, :9], model(y)[:, :9], atol=1e-5)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    seq = torch.arange(17).remainder(5).unsqueeze(0).repeat(4, 1)
    first = model.loss(seq[:, :-1], seq[:, 1:]).item()
    for _ in range(60):
        opt.zero_grad()
        loss = model.loss(seq[:, :-1], seq[:, 1:])
        loss.backward()
        opt.step()
    assert loss.item() < first / 4


def test_rope_model_has_no_position_table_and_sees_order():
    model = GPT(_cfg(**MODERN)).eval()
    assert model.wpe is None and "rope_cos" not in model.state_dict()
    x = torch.tensor([[1, 2, 3, 4]])
    assert not torch.allclose(model(x)[0, -1], model(x.flip(1))[0, -1])


def test_grouped_query_attention_shrinks_kv_projection():
    full = GPT(_cfg(**MODERN)).blocks[0].attn.qkv.weight.shape[0]
    gqa = GPT(_cfg(**MODERN, n_kv_head=1)).blocks[0].attn.qkv.weight.shape[0]
    assert (full, gqa) == (3 * 32, 32 + 2 * 8)
    with pytest.raises(ValueError, match="multiple of n_kv_head"):
        _cfg(n_kv_head=3)


def test_untied_embeddings_are_separate():
    model = GPT(_cfg(tie_embeddings=False))
    assert model.lm_head.weight.data_ptr() != model.wte.weight.data_ptr()


@pytest.mark.parametrize("preset, nominal", [("gpt2-124m", 124e6), ("124m", 124e6), ("350m", 350e6), ("1b", 1.1e9)])
def test_presets_have_their_nominal_size(preset, nominal):
    cfg = ModelConfig(preset=preset)
    with torch.device("meta"):  # count parameters without allocating them
        model = GPT(GPTConfig(vocab_size=50257, **cfg.gpt_kwargs()))
    n = sum(p.numel() for p in model.parameters())
    assert 0.85 * nominal < n < 1.15 * nominal, n


def test_recipe_fields_override_a_preset():
    cfg = ModelConfig(preset="124m", n_layer=6)
    assert cfg.n_layer == 6 and cfg.n_embd == PRESETS["124m"]["n_embd"] == 768 and cfg.block_size == 1024
    gpt2 = ModelConfig(preset="gpt2-124m", position="rope")
    assert (gpt2.position, gpt2.norm, gpt2.mlp) == ("rope", "layernorm", "gelu")  # the preset's, where not set


def test_the_modern_block_is_the_default_and_gpt2_stays_selectable():
    assert (ModelConfig().norm, ModelConfig().mlp, ModelConfig().position) == ("rmsnorm", "swiglu", "rope")
    assert not any("wpe" in k for k in GPT(_cfg()).state_dict())  # rotary: no learned positions
    gpt2 = GPT(_cfg(**ModelConfig(preset="gpt2-124m").model_dump(include=set(GPT2))))
    assert "wpe.weight" in gpt2.state_dict() and isinstance(gpt2.blocks[0].ln_1, torch.nn.LayerNorm)
