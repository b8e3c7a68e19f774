"""Text generation from a trained GPT and its tokenizer (shared by evaluation and the registry)."""

from __future__ import annotations

import torch
from tokenizers import Tokenizer

from models.gpt import GPT

EOT = "<|endoftext|>"


def generate(
    model: GPT,
    tok: Tokenizer,
    prompt: str,
    max_new_tokens: int,
    temperature: float = 0.8,
    top_k: int | None = 50,
    seed: int = 0,
    top_p: float | None = None,
) -> str:
    eot = tok.token_to_id(EOT)
    # Byte-level BPE attaches a space to the word after it; a prompt ending in a bare space would
    # end in a token the model rarely saw, so the space is left for the model to produce.
    prompt = prompt.rstrip(" ")
    ids = tok.encode(prompt).ids or [eot]
    gen = torch.Generator().manual_seed(seed)
    out = model.generate(
        torch.tensor([ids], dtype=torch.long), max_new_tokens, temperature=temperature, top_k=top_k,
        stop_token=eot, generator=gen, top_p=top_p,
    )
    new = [t for t in out[0].tolist()[len(ids):] if t != eot]
    return prompt + tok.decode(new)
