"""MinHash signatures of word n-gram shingles, and the LSH band keys that find candidate pairs.

Signatures come from rensa's `RMinHash` (Rust): about 5x faster per document than datasketch's
(shingling included), as accurate on pairs of known similarity (benchmarks/minhash.py). Its
`ALGORITHM_VERSION` is part of the ingest stage's address, so a release that changed signatures
could not reuse old outputs.
Band and row counts are the ones datasketch's `MinHashLSH` derives for the threshold, favouring
recall (few missed pairs): every candidate pair is then confirmed by its estimated Jaccard
similarity, so precision does not suffer.
"""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache

import numpy as np
from rensa import RMinHash

from tasks.ingest.config import DedupConfig

_WORD = re.compile(r"\w+", re.UNICODE)
ALGORITHM = f"rensa-{RMinHash.ALGORITHM_VERSION}"
# Weights of false positives and false negatives when choosing bands: recall first.
LSH_WEIGHTS = (0.1, 0.9)


def signature(text: str, cfg: DedupConfig) -> np.ndarray:
    words = _WORD.findall(text.lower())
    n = cfg.shingle_words
    # Every run of n words (all of them when fewer). A repeated shingle changes nothing (each
    # permutation keeps its minimum), so no set is built.
    shingles = list(map(" ".join, zip(*(words[i:] for i in range(n))))) if len(words) >= n else [" ".join(words)]
    m = RMinHash(num_perm=cfg.num_perm, seed=cfg.seed)
    m.update(shingles)
    return np.asarray(m.digest(), dtype=np.uint32)


@lru_cache(maxsize=16)
def bands(cfg: DedupConfig) -> tuple[int, int]:
    """(bands, rows per band) for the threshold. datasketch integrates numerically (~0.8 s), so
    the driver computes it once and hands it to the workers."""
    from datasketch.lsh import _optimal_param

    return _optimal_param(cfg.threshold, cfg.num_perm, *LSH_WEIGHTS)


def band_keys(sig: np.ndarray, layout: tuple[int, int]) -> list[bytes]:
    """One 16-byte key per band of `layout` = (bands, rows): two documents share a key when that
    band of their signatures is equal (the band's number is hashed in, so equal values in
    different bands do not collide)."""
    b, r = layout
    return [hashlib.blake2b(sig[i * r:(i + 1) * r].tobytes(), digest_size=16, salt=i.to_bytes(2, "big")).digest()
            for i in range(b)]


def similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Estimated Jaccard similarity of signature rows: the share of equal values."""
    return (a == b).mean(axis=-1)
