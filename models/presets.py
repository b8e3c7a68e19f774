"""Model size presets. The larger ones use the modern block (RoPE, RMSNorm, SwiGLU)."""

from __future__ import annotations

from typing import Any

MODERN = {"norm": "rmsnorm", "mlp": "swiglu", "position": "rope", "bias": False}

PRESETS: dict[str, dict[str, Any]] = {
    "debug": {"block_size": 64, "n_layer": 2, "n_head": 2, "n_embd": 64, **MODERN},
    "gpt2-124m": {"block_size": 1024, "n_layer": 12, "n_head": 12, "n_embd": 768,
                  "norm": "layernorm", "mlp": "gelu", "position": "learned", "bias": False},
    "124m": {"block_size": 1024, "n_layer": 12, "n_head": 12, "n_embd": 768, **MODERN},
    "350m": {"block_size": 1024, "n_layer": 24, "n_head": 16, "n_embd": 1024, **MODERN},
    "1b": {"block_size": 2048, "n_layer": 20, "n_head": 16, "n_kv_head": 8, "n_embd": 2048, **MODERN},
}
