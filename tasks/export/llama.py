"""Werk's modern block as Hugging Face `LlamaForCausalLM`, and back.

Werk fuses q, k and v into one projection (`attn.qkv`: rows q for every head, then k and v for
the kv heads); Llama keeps three. Werk's SwiGLU is proj(silu(fc(x)) * gate(x)): `fc` is Llama's
`gate_proj` (the one under the activation) and Werk's `gate` is Llama's `up_proj`. The rotary
layout is converted by permuting q and k rows (`rope.py`). Every figure Llama would otherwise
default (ids, eps, theta, head counts, tying) is written explicitly.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch

from models.gpt import GPTConfig
from tasks.export.families import ExportError
from tasks.export.rope import to_half_split, to_interleaved

ARCHITECTURE = "LlamaForCausalLM"


def config(cfg: GPTConfig, bos: int, eos: int, pad: int | None) -> dict[str, Any]:
    return {
        "architectures": [ARCHITECTURE], "model_type": "llama",
        "vocab_size": cfg.vocab_size, "hidden_size": cfg.n_embd, "intermediate_size": cfg.hidden,
        "num_hidden_layers": cfg.n_layer, "num_attention_heads": cfg.n_head, "num_key_value_heads": cfg.kv_heads,
        "head_dim": cfg.n_embd // cfg.n_head, "hidden_act": "silu", "max_position_embeddings": cfg.block_size,
        "rms_norm_eps": cfg.eps, "rope_theta": cfg.rope_theta, "rope_scaling": None,
        # transformers 5 reads the rotary settings from here; 4.x from the two keys above.
        "rope_parameters": {"rope_type": "default", "rope_theta": cfg.rope_theta},
        "attention_bias": cfg.bias, "mlp_bias": cfg.bias, "attention_dropout": 0.0,
        "tie_word_embeddings": cfg.tie_embeddings, "initializer_range": 0.02, "pretraining_tp": 1,
        "bos_token_id": bos, "eos_token_id": eos, "pad_token_id": pad, "use_cache": True, "torch_dtype": "float32",
    }


def to_hf(weights: dict[str, torch.Tensor], cfg: GPTConfig, permute: bool = True) -> dict[str, torch.Tensor]:
    """Llama's tensors. `permute=False` leaves the rotary rows in Werk's layout: a wrong export,
    kept for the test that shows the permutation matters."""
    rows = to_half_split if permute else (lambda w, heads: w)
    q_rows, kv_rows = cfg.n_embd, cfg.kv_heads * (cfg.n_embd // cfg.n_head)
    out = {"model.embed_tokens.weight": weights["wte.weight"], "model.norm.weight": weights["ln_f.weight"]}
    if not cfg.tie_embeddings:
        out["lm_head.weight"] = weights["lm_head.weight"]
    for i in range(cfg.n_layer):
        w, h = f"blocks.{i}.", f"model.layers.{i}."
        out[h + "input_layernorm.weight"] = weights[w + "ln_1.weight"]
        out[h + "post_attention_layernorm.weight"] = weights[w + "ln_2.weight"]
        for kind in ("weight", "bias") if cfg.bias else ("weight",):
            q, k, v = weights[w + f"attn.qkv.{kind}"].split([q_rows, kv_rows, kv_rows])
            out[h + f"self_attn.q_proj.{kind}"] = rows(q, cfg.n_head)
            out[h + f"self_attn.k_proj.{kind}"] = rows(k, cfg.kv_heads)
            out[h + f"self_attn.v_proj.{kind}"] = v
            out[h + f"self_attn.o_proj.{kind}"] = weights[w + f"attn.proj.{kind}"]
            out[h + f"mlp.gate_proj.{kind}"] = weights[w + f"mlp.fc.{kind}"]
            out[h + f"mlp.up_proj.{kind}"] = weights[w + f"mlp.gate.{kind}"]
            out[h + f"mlp.down_proj.{kind}"] = weights[w + f"mlp.proj.{kind}"]
    return {k: v.contiguous() for k, v in out.items()}


def config_from_hf(conf: dict[str, Any], tensors: Mapping[str, torch.Tensor]) -> GPTConfig:
    """Werk's config of the folder's model (reads no tensor: only which ones exist)."""
    _check(conf)
    heads = conf["num_attention_heads"]
    kv = conf.get("num_key_value_heads") or heads
    bias = bool(conf.get("attention_bias", False))
    if bias != bool(conf.get("mlp_bias", False)):
        raise ExportError("attention_bias and mlp_bias differ: Werk's `bias` sets both")
    tied = "lm_head.weight" not in tensors or bool(conf.get("tie_word_embeddings", False))
    return GPTConfig(vocab_size=conf["vocab_size"], block_size=conf["max_position_embeddings"],
                     n_layer=conf["num_hidden_layers"], n_head=heads, n_embd=conf["hidden_size"],
                     bias=bias, norm="rmsnorm", mlp="swiglu", position="rope", n_kv_head=kv if kv != heads else None,
                     tie_embeddings=tied, rope_theta=float(_theta(conf)), mlp_hidden=conf["intermediate_size"],
                     norm_eps=float(conf.get("rms_norm_eps", 1e-6)))


def from_hf(conf: dict[str, Any], tensors: Mapping[str, torch.Tensor]) -> tuple[GPTConfig, dict[str, torch.Tensor]]:
    cfg = config_from_hf(conf, tensors)
    heads, kv, bias, tied = cfg.n_head, cfg.kv_heads, cfg.bias, cfg.tie_embeddings
    out = {"wte.weight": tensors["model.embed_tokens.weight"], "ln_f.weight": tensors["model.norm.weight"]}
    out["lm_head.weight"] = out["wte.weight"] if tied else tensors["lm_head.weight"]
    for i in range(cfg.n_layer):
        w, h = f"blocks.{i}.", f"model.layers.{i}."
        out[w + "ln_1.weight"] = tensors[h + "input_layernorm.weight"]
        out[w + "ln_2.weight"] = tensors[h + "post_attention_layernorm.weight"]
        for kind in ("weight", "bias") if bias else ("weight",):
            q = to_interleaved(tensors[h + f"self_attn.q_proj.{kind}"], heads)
            k = to_interleaved(tensors[h + f"self_attn.k_proj.{kind}"], kv)
            out[w + f"attn.qkv.{kind}"] = torch.cat([q, k, tensors[h + f"self_attn.v_proj.{kind}"]])
            out[w + f"attn.proj.{kind}"] = tensors[h + f"self_attn.o_proj.{kind}"]
            out[w + f"mlp.fc.{kind}"] = tensors[h + f"mlp.gate_proj.{kind}"]
            out[w + f"mlp.gate.{kind}"] = tensors[h + f"mlp.up_proj.{kind}"]
            out[w + f"mlp.proj.{kind}"] = tensors[h + f"mlp.down_proj.{kind}"]
    return cfg, out


def _theta(conf: dict[str, Any]) -> float:
    params = conf.get("rope_parameters") or {}
    return params.get("rope_theta", conf.get("rope_theta", 10000.0))


def _check(conf: dict[str, Any]) -> None:
    """Refuse what Werk's block does not compute, rather than load a model that differs."""
    if conf.get("hidden_act", "silu") != "silu":
        raise ExportError(f"hidden_act {conf['hidden_act']!r}: Werk's SwiGLU uses silu")
    scaling = conf.get("rope_scaling") or {}
    kind = (conf.get("rope_parameters") or {}).get("rope_type") or scaling.get("rope_type") or scaling.get("type")
    if kind not in (None, "default"):
        raise ExportError(f"rope scaling {kind!r} (long-context Llama variants) is not in Werk's rotary embedding")
    head_dim = conf.get("head_dim")
    if head_dim and head_dim * conf["num_attention_heads"] != conf["hidden_size"]:
        raise ExportError("head_dim x num_attention_heads != hidden_size: Werk derives the head size from the width")
