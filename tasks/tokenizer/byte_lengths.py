"""How many UTF-8 bytes each token of a byte-level BPE stands for (bits per byte needs it).

Each byte-level token is a fixed byte string written in GPT-2's printable byte alphabet;
special tokens such as `<|endoftext|>` count as one byte (the document boundary).
"""

from __future__ import annotations

import numpy as np
from tokenizers import Tokenizer


def _byte_decoder() -> dict[str, int]:
    """Inverse of GPT-2's bytes-to-unicode map used by the ByteLevel pre-tokenizer."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs)}


def token_byte_lengths(tok: Tokenizer) -> np.ndarray:
    decoder = _byte_decoder()
    lengths = np.ones(tok.get_vocab_size(), dtype=np.int64)
    specials = {t.content for t in tok.get_added_tokens_decoder().values()}
    for piece, idx in tok.get_vocab().items():
        if piece not in specials:
            lengths[idx] = sum(1 for ch in piece if ch in decoder)
    return lengths
