"""Which Hugging Face architecture a Werk model is: the modern block is Llama, the GPT-2 style
block is GPT-2. A mix of the two (say RMSNorm with learned positions) has no equivalent there,
and an export of it is refused rather than approximated."""

from __future__ import annotations

from typing import Literal

from models.gpt import GPTConfig

Family = Literal["llama", "gpt2"]


class ExportError(ValueError):
    """A model, checkpoint or folder that cannot be exported or imported exactly."""


def family(cfg: GPTConfig) -> Family:
    modern = (cfg.norm, cfg.mlp, cfg.position) == ("rmsnorm", "swiglu", "rope")
    classic = (cfg.norm, cfg.mlp, cfg.position) == ("layernorm", "gelu", "learned")
    if modern:
        return "llama"
    if classic:
        if cfg.kv_heads != cfg.n_head:
            raise ExportError("GPT-2 has no grouped-query attention: a GPT-2 style model with n_kv_head "
                              f"{cfg.n_kv_head} < n_head {cfg.n_head} cannot be exported")
        return "gpt2"
    raise ExportError(f"norm={cfg.norm}, mlp={cfg.mlp}, position={cfg.position} is neither the modern block "
                      "(rmsnorm, swiglu, rope: Llama) nor the GPT-2 block (layernorm, gelu, learned): no Hugging "
                      "Face architecture computes it")
