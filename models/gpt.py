"""A decoder-only transformer, in plain torch.

Two families in one small file, chosen by the config: the modern LLaMA-style block (rotary
position embeddings, RMSNorm, SwiGLU MLP, optional grouped-query attention), the default, and
GPT-2 style (learned positions, LayerNorm, GELU MLP). Attention always goes through
`F.scaled_dot_product_attention`, which picks flash kernels on GPU.

This file imports torch only: no training framework, no tracking, no distributed code. Training,
parallelism and logging live in `tasks/training`, so this file can be read top to bottom and
reused anywhere torch runs.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F


@dataclass(frozen=True)
class GPTConfig:
    vocab_size: int
    block_size: int = 256
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 256
    dropout: float = 0.0
    bias: bool = False
    norm: Literal["layernorm", "rmsnorm"] = "rmsnorm"
    mlp: Literal["gelu", "swiglu"] = "swiglu"
    position: Literal["learned", "rope"] = "rope"
    n_kv_head: int | None = None  # fewer key/value heads than query heads: grouped-query attention
    tie_embeddings: bool = True
    rope_theta: float = 10000.0
    mlp_hidden: int | None = None  # default: 4 * n_embd (GELU), about 8/3 * n_embd (SwiGLU)
    norm_eps: float | None = None  # default: 1e-5 (LayerNorm), 1e-6 (RMSNorm); imported models bring theirs

    def __post_init__(self) -> None:
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head})")
        if min(self.vocab_size, self.block_size, self.n_layer, self.n_head, self.n_embd) < 1:
            raise ValueError("GPTConfig sizes must be positive")
        if self.n_head % self.kv_heads:
            raise ValueError(f"n_head ({self.n_head}) must be a multiple of n_kv_head ({self.kv_heads})")
        if self.position == "rope" and (self.n_embd // self.n_head) % 2:
            raise ValueError("rotary embeddings need an even head dimension")

    @property
    def kv_heads(self) -> int:
        return self.n_kv_head or self.n_head

    @property
    def eps(self) -> float:
        return self.norm_eps if self.norm_eps is not None else 1e-6 if self.norm == "rmsnorm" else 1e-5

    @property
    def hidden(self) -> int:
        if self.mlp_hidden:
            return self.mlp_hidden
        if self.mlp == "swiglu":  # same parameter count as a 4x GELU MLP, rounded up to 64
            return -(-int(8 * self.n_embd / 3) // 64) * 64
        return 4 * self.n_embd

    def to_dict(self) -> dict:
        return asdict(self)


def rope_tables(cfg: GPTConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of the rotary angles, (block_size, head_dim / 2)."""
    head_dim = cfg.n_embd // cfg.n_head
    inv_freq = 1.0 / (cfg.rope_theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
    angles = torch.outer(torch.arange(cfg.block_size, dtype=torch.float32), inv_freq)
    return angles.cos(), angles.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, start: int = 0) -> torch.Tensor:
    """Rotate pairs of adjacent channels (2i, 2i+1) of x (batch, heads, time, head_dim) by the
    angles of positions start, start + 1, ... (an interleaved layout: HF Llama pairs i with i + d/2,
    so an export permutes the q and k rows)."""
    t = x.size(-2)
    x1, x2 = x.float().unflatten(-1, (-1, 2)).unbind(-1)
    c, s = cos[start:start + t], sin[start:start + t]
    out = torch.stack((x1 * c - x2 * s, x1 * s + x2 * c), dim=-1).flatten(-2)
    return out.type_as(x)


class KVCache:
    """Keys and values of the tokens seen so far, per layer, for generation: each new token
    attends to them instead of recomputing the whole context. Kept per kv head (before grouped-
    query attention repeats them), so its size grows with batch x kv heads x context x layers."""

    def __init__(self, n_layer: int) -> None:
        self.keys: list[torch.Tensor | None] = [None] * n_layer
        self.values: list[torch.Tensor | None] = [None] * n_layer
        self.length = 0  # positions held

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Append this step's keys and values (batch, kv_heads, time, head_dim); all of them so far."""
        if self.keys[layer] is not None:
            k, v = torch.cat([self.keys[layer], k], dim=2), torch.cat([self.values[layer], v], dim=2)
        self.keys[layer], self.values[layer] = k, v
        return k, v


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.n_head, self.n_kv = cfg.n_head, cfg.kv_heads
        self.head_dim = cfg.n_embd // cfg.n_head
        # One fused projection: queries for every head, keys and values for the kv heads.
        self.qkv = nn.Linear(cfg.n_embd, (cfg.n_head + 2 * self.n_kv) * self.head_dim, bias=cfg.bias)
        self.proj = nn.Linear(cfg.n_embd, cfg.n_embd, bias=cfg.bias)
        self.dropout = cfg.dropout
        self.resid_dropout = nn.Dropout(cfg.dropout)
        self.rope = cfg.position == "rope"

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor] | None = None,
                cache: KVCache | None = None, layer: int = 0) -> torch.Tensor:
        b, t, c = x.shape
        start = cache.length if cache is not None else 0  # position of x's first token
        kv = self.n_kv * self.head_dim
        q, k, v = self.qkv(x).split([c, kv, kv], dim=2)
        q = q.view(b, t, self.n_head, self.head_dim).transpose(1, 2)
        k = k.view(b, t, self.n_kv, self.head_dim).transpose(1, 2)
        v = v.view(b, t, self.n_kv, self.head_dim).transpose(1, 2)
        if self.rope and rope is not None:
            q, k = apply_rope(q, *rope, start), apply_rope(k, *rope, start)
        if cache is not None:
            k, v = cache.update(layer, k, v)
        if self.n_kv != self.n_head:  # grouped-query attention: each kv head serves a group
            k = k.repeat_interleave(self.n_head // self.n_kv, dim=1)
            v = v.repeat_interleave(self.n_head // self.n_kv, dim=1)
        # SDPA's built-in causal mask is aligned to the top left: right for a whole sequence, wrong
        # for new queries after cached keys. One new token sees everything; several need the mask.
        mask = None
        if start and t > 1:
            mask = torch.ones(t, start + t, dtype=torch.bool, device=x.device).tril(diagonal=start)
        # Fused kernel (flash / memory-efficient where available).
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, is_causal=not start and t > 1, dropout_p=self.dropout if self.training else 0.0
        )
        y = y.transpose(1, 2).contiguous().view(b, t, c)
        return self.resid_dropout(self.proj(y))


class MLP(nn.Module):
    """GELU MLP, or SwiGLU: proj(silu(fc(x)) * gate(x))."""

    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.swiglu = cfg.mlp == "swiglu"
        self.fc = nn.Linear(cfg.n_embd, cfg.hidden, bias=cfg.bias)
        self.gate = nn.Linear(cfg.n_embd, cfg.hidden, bias=cfg.bias) if self.swiglu else None
        self.proj = nn.Linear(cfg.hidden, cfg.n_embd, bias=cfg.bias)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.silu(self.fc(x)) * self.gate(x) if self.swiglu else F.gelu(self.fc(x))
        return self.dropout(self.proj(h))


def _norm(cfg: GPTConfig) -> nn.Module:
    if cfg.norm == "rmsnorm":
        return nn.RMSNorm(cfg.n_embd, eps=cfg.eps)
    return nn.LayerNorm(cfg.n_embd, eps=cfg.eps, bias=cfg.bias)


class Block(nn.Module):
    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.ln_1 = _norm(cfg)
        self.attn = CausalSelfAttention(cfg)
        self.ln_2 = _norm(cfg)
        self.mlp = MLP(cfg)

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor] | None = None,
                cache: KVCache | None = None, layer: int = 0) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), rope, cache, layer)
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.config = cfg
        self.wte = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        self.wpe = nn.Embedding(cfg.block_size, cfg.n_embd) if cfg.position == "learned" else None
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.ln_f = _norm(cfg)
        self.lm_head = nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)
        if cfg.tie_embeddings:  # input embedding and output projection share one matrix
            self.lm_head.weight = self.wte.weight
        if cfg.position == "rope":
            cos, sin = rope_tables(cfg)
            # Not persistent: derived from the config, so not part of checkpoints.
            self.register_buffer("rope_cos", cos, persistent=False)
            self.register_buffer("rope_sin", sin, persistent=False)
        self.apply(self._init_weights)
        # GPT-2 scales residual projections by 1/sqrt(2 * n_layer) to keep activations stable.
        for name, p in self.named_parameters():
            if name.endswith("proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * cfg.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def num_parameters(self, non_embedding: bool = True) -> int:
        n = sum(p.numel() for p in self.parameters())
        return n - self.wpe.weight.numel() if non_embedding and self.wpe is not None else n

    def forward(self, idx: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        """Return next-token logits of shape (batch, time, vocab). With a `cache`, `idx` continues
        the tokens it holds (their keys and values are not recomputed) and is added to it."""
        _, t = idx.shape
        start = cache.length if cache is not None else 0
        if start + t > self.config.block_size:
            raise ValueError(f"sequence length {start + t} exceeds block_size {self.config.block_size}")
        x = self.wte(idx)
        rope = None
        if self.wpe is not None:
            x = x + self.wpe(torch.arange(start, start + t, device=idx.device))
        else:
            rope = (self.rope_cos, self.rope_sin)
        x = self.drop(x)
        for i, block in enumerate(self.blocks):
            x = block(x, rope, cache, i)
        if cache is not None:
            cache.length += t
        return self.lm_head(self.ln_f(x))

    def loss(self, idx: torch.Tensor, targets: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
        """Cross-entropy of next-token prediction, in nats."""
        logits = self(idx)
        return F.cross_entropy(
            logits.reshape(-1, logits.size(-1)).float(), targets.reshape(-1), reduction=reduction
        )

    @torch.no_grad()
    def generate(
        self,
        idx: torch.Tensor,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        stop_token: int | None = None,
        generator: torch.Generator | None = None,
        top_p: float | None = None,
        use_cache: bool = True,
    ) -> torch.Tensor:
        """Sample continuations of `idx` (batch, time); stops early when every row hit stop_token.

        `temperature <= 0` is greedy; `top_k` keeps the k likeliest tokens, `top_p` the smallest set
        whose probability reaches p (nucleus sampling); both may be combined.

        With `use_cache`, each new token runs through the model alone, attending to the cached keys
        and values of the context. Once the text outgrows `block_size`, the model sees the last
        `block_size` tokens from position 0 again (as without the cache), so each further token
        recomputes that window: the output is the same either way."""
        finished = torch.zeros(idx.size(0), dtype=torch.bool, device=idx.device)
        cache = KVCache(self.config.n_layer) if use_cache else None
        for _ in range(max_new_tokens):
            if cache is not None and idx.size(1) <= self.config.block_size:
                fresh = idx[:, cache.length:]  # the whole prompt first, then one token a step
                logits = self(fresh, cache)[:, -1, :].float()
            else:
                context = idx[:, -self.config.block_size :]
                logits = self(context)[:, -1, :].float()
            if temperature <= 0:
                nxt = logits.argmax(dim=-1, keepdim=True)
            else:
                logits = logits / temperature
                if top_k is not None:
                    kth = torch.topk(logits, min(top_k, logits.size(-1))).values[:, [-1]]
                    logits = logits.masked_fill(logits < kth, float("-inf"))
                if top_p is not None and top_p < 1.0:
                    sorted_logits, order = torch.sort(logits, descending=True)
                    cumulative = F.softmax(sorted_logits, dim=-1).cumsum(dim=-1)
                    # Drop a token when the tokens before it already reach top_p (the first always stays).
                    drop = cumulative - F.softmax(sorted_logits, dim=-1) >= top_p
                    logits = logits.masked_fill(drop.scatter(1, order, drop), float("-inf"))
                probs = F.softmax(logits, dim=-1)
                nxt = torch.multinomial(probs, num_samples=1, generator=generator)
            idx = torch.cat([idx, nxt], dim=1)
            if stop_token is not None:
                finished |= nxt.squeeze(1) == stop_token
                if bool(finished.all()):
                    break
        return idx
