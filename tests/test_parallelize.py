"""Activation checkpointing and torch.compile change how the model runs, not what it computes, nor
the names its checkpoints use; the weight-decay groups are the same whatever the wrapping."""

from __future__ import annotations

import pytest
import torch

from models.gpt import GPT, GPTConfig
from tasks.training import parallelize
from tasks.training.config import ComputeConfig, TrainConfig

CFG = GPTConfig(vocab_size=97, block_size=16, n_layer=2, n_head=2, n_embd=32, norm="rmsnorm", mlp="swiglu",
                position="rope")


def _loss_and_grads(model: GPT, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    model.zero_grad(set_to_none=True)
    loss = model.loss(x[:, :-1], x[:, 1:])
    loss.backward()
    return loss.detach(), {parallelize.plain_name(n): p.grad.clone() for n, p in model.named_parameters()}


def _pair(**train) -> tuple[GPT, GPT]:
    torch.manual_seed(0)
    plain = GPT(CFG)
    wrapped = GPT(CFG)
    wrapped.load_state_dict(plain.state_dict())
    parallelize.prepare(wrapped, TrainConfig(**train), ComputeConfig(num_workers=1))
    return plain, wrapped


def test_activation_checkpointing_gives_the_same_loss_gradients_and_names():
    plain, wrapped = _pair(activation_checkpointing=True)
    assert any("_checkpoint_wrapped_module" in n for n, _ in wrapped.named_parameters())
    assert wrapped.state_dict().keys() == plain.state_dict().keys()  # checkpoints stay interchangeable
    x = torch.randint(0, CFG.vocab_size, (3, CFG.block_size + 1))
    loss_a, grads_a = _loss_and_grads(plain, x)
    loss_b, grads_b = _loss_and_grads(wrapped, x)
    assert torch.equal(loss_a, loss_b)
    assert grads_a.keys() == grads_b.keys()
    for name in grads_a:
        torch.testing.assert_close(grads_a[name], grads_b[name], rtol=0, atol=1e-7)


@pytest.mark.slow  # inductor compiles C++ on the CPU: tens of seconds
def test_compiled_blocks_compute_the_same_loss_and_keep_the_names():
    plain, compiled = _pair(compile=True)
    assert compiled.state_dict().keys() == plain.state_dict().keys()
    x = torch.randint(0, CFG.vocab_size, (2, CFG.block_size + 1))
    loss_a, grads_a = _loss_and_grads(plain, x)
    loss_b, grads_b = _loss_and_grads(compiled, x)
    torch.testing.assert_close(loss_a, loss_b, rtol=1e-5, atol=1e-5)
    for name in grads_a:
        torch.testing.assert_close(grads_a[name], grads_b[name], rtol=1e-4, atol=1e-5)


def test_wrapper_prefixes_are_removed_from_parameter_names():
    assert parallelize.plain_name("model.blocks.0._fsdp_wrapped_module._checkpoint_wrapped_module.attn.qkv.weight") \
        == "model.blocks.0.attn.qkv.weight"
    assert parallelize.plain_name("blocks.1._orig_mod.mlp.fc.weight") == "blocks.1.mlp.fc.weight"


def test_fsdp_is_refused_on_cpu_with_a_clear_message():
    with pytest.raises(ValueError, match="strategy=fsdp needs compute.use_gpu"):
        ComputeConfig(strategy="fsdp")
