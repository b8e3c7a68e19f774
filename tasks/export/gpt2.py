"""Werk's GPT-2 style block as Hugging Face `GPT2LMHeadModel`, and back.

GPT-2's `Conv1D` stores weights as (in, out), the transpose of `nn.Linear`. GPT-2 always has
biases: a Werk model without them exports zeros, which compute the same, and an imported model
whose biases are all zero comes back without them (so Werk -> HF -> Werk is exact). Werk's GELU
is the exact (erf) one: `activation_function` is "gelu", not GPT-2's default tanh "gelu_new".
"""

from __future__ import annotations

from typing import Any, Mapping

import torch

from models.gpt import GPTConfig
from tasks.export.families import ExportError

ARCHITECTURE = "GPT2LMHeadModel"


def config(cfg: GPTConfig, bos: int, eos: int, pad: int | None) -> dict[str, Any]:
    return {
        "architectures": [ARCHITECTURE], "model_type": "gpt2",
        "vocab_size": cfg.vocab_size, "n_positions": cfg.block_size, "n_ctx": cfg.block_size, "n_embd": cfg.n_embd,
        "n_layer": cfg.n_layer, "n_head": cfg.n_head, "n_inner": cfg.hidden, "activation_function": "gelu",
        "layer_norm_epsilon": cfg.eps, "resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0,
        "scale_attn_weights": True, "scale_attn_by_inverse_layer_idx": False, "reorder_and_upcast_attn": False,
        "tie_word_embeddings": cfg.tie_embeddings, "initializer_range": 0.02,
        "bos_token_id": bos, "eos_token_id": eos, "pad_token_id": pad, "use_cache": True, "torch_dtype": "float32",
    }


def _bias(weights: dict[str, torch.Tensor], key: str, size: int, like: torch.Tensor) -> torch.Tensor:
    return weights[key] if key in weights else torch.zeros(size, dtype=like.dtype)


def to_hf(weights: dict[str, torch.Tensor], cfg: GPTConfig) -> dict[str, torch.Tensor]:
    e, wte = cfg.n_embd, weights["wte.weight"]
    out = {"transformer.wte.weight": wte, "transformer.wpe.weight": weights["wpe.weight"],
           "transformer.ln_f.weight": weights["ln_f.weight"], "transformer.ln_f.bias": _bias(weights, "ln_f.bias", e, wte)}
    if not cfg.tie_embeddings:
        out["lm_head.weight"] = weights["lm_head.weight"]
    for i in range(cfg.n_layer):
        w, h = f"blocks.{i}.", f"transformer.h.{i}."
        for ln in ("ln_1", "ln_2"):
            out[h + f"{ln}.weight"] = weights[w + f"{ln}.weight"]
            out[h + f"{ln}.bias"] = _bias(weights, w + f"{ln}.bias", e, wte)
        for ours, theirs in (("attn.qkv", "attn.c_attn"), ("attn.proj", "attn.c_proj"), ("mlp.fc", "mlp.c_fc"),
                             ("mlp.proj", "mlp.c_proj")):
            weight = weights[w + f"{ours}.weight"]
            out[h + f"{theirs}.weight"] = weight.t()  # Conv1D: (in, out)
            out[h + f"{theirs}.bias"] = _bias(weights, w + f"{ours}.bias", weight.shape[0], wte)
    return {k: v.contiguous() for k, v in out.items()}


def config_from_hf(conf: dict[str, Any], tensors: Mapping[str, torch.Tensor]) -> GPTConfig:
    """Werk's config of the folder's model (reads the bias tensors only: all zero means none)."""
    _check(conf)
    # `h.N.attn.bias` is the causal-mask buffer older transformers saved, not a weight (c_attn.bias is).
    bias = any(bool(tensors[k].any()) for k in tensors if k.endswith(".bias") and k.split(".")[-2:] != ["attn", "bias"])
    tied = "lm_head.weight" not in tensors or bool(conf.get("tie_word_embeddings", True))
    n_embd = conf["n_embd"]
    return GPTConfig(vocab_size=conf["vocab_size"], block_size=conf["n_positions"], n_layer=conf["n_layer"],
                     n_head=conf["n_head"], n_embd=n_embd, bias=bias, norm="layernorm", mlp="gelu", position="learned",
                     tie_embeddings=tied, mlp_hidden=conf.get("n_inner") or 4 * n_embd,
                     norm_eps=float(conf.get("layer_norm_epsilon", 1e-5)))


def from_hf(conf: dict[str, Any], tensors: Mapping[str, torch.Tensor]) -> tuple[GPTConfig, dict[str, torch.Tensor]]:
    cfg = config_from_hf(conf, tensors)
    tensors = {k.removeprefix("transformer."): tensors[k] for k in tensors}
    bias, tied = cfg.bias, cfg.tie_embeddings
    out = {"wte.weight": tensors["wte.weight"], "wpe.weight": tensors["wpe.weight"], "ln_f.weight": tensors["ln_f.weight"]}
    out["lm_head.weight"] = out["wte.weight"] if tied else tensors["lm_head.weight"]
    if bias:
        out["ln_f.bias"] = tensors["ln_f.bias"]
    for i in range(cfg.n_layer):
        w, h = f"blocks.{i}.", f"h.{i}."
        for ln in ("ln_1", "ln_2"):
            out[w + f"{ln}.weight"] = tensors[h + f"{ln}.weight"]
            if bias:
                out[w + f"{ln}.bias"] = tensors[h + f"{ln}.bias"]
        for ours, theirs in (("attn.qkv", "attn.c_attn"), ("attn.proj", "attn.c_proj"), ("mlp.fc", "mlp.c_fc"),
                             ("mlp.proj", "mlp.c_proj")):
            out[w + f"{ours}.weight"] = tensors[h + f"{theirs}.weight"].t().contiguous()
            if bias:
                out[w + f"{ours}.bias"] = tensors[h + f"{theirs}.bias"]
    return cfg, out


def _check(conf: dict[str, Any]) -> None:
    act = conf.get("activation_function", "gelu_new")
    if act != "gelu":
        raise ExportError(f"activation_function {act!r}: Werk's GPT-2 block uses the exact GELU ('gelu'); "
                          "GPT-2's own 'gelu_new' (tanh) gives other logits")
    for flag in ("scale_attn_by_inverse_layer_idx", "reorder_and_upcast_attn"):
        if conf.get(flag):
            raise ExportError(f"{flag}: not computed by Werk's attention")
    if conf.get("scale_attn_weights") is False:
        raise ExportError("scale_attn_weights=false: Werk's attention always scales by 1/sqrt(head_dim)")
