"""Deduplication across the whole corpus: exact (content hash) and near (MinHash LSH).

Workers compute MinHash signatures of word n-gram shingles; the driver then walks documents in
the corpus's canonical order (source, file, record) and keeps the first of every group of
duplicates, so which copy survives never depends on the number of workers or their timing.
"""

from __future__ import annotations

import re

import numpy as np
from datasketch import MinHash, MinHashLSH

from tasks.ingest.config import DedupConfig

_WORD = re.compile(r"\w+", re.UNICODE)
# 32-bit affine permutations: collision-free, and half the memory of 64-bit signatures.
SCHEME = "affine32"


def signature(text: str, cfg: DedupConfig) -> np.ndarray:
    words = _WORD.findall(text.lower())
    n = cfg.shingle_words
    shingles = {" ".join(words[i : i + n]).encode() for i in range(max(1, len(words) - n + 1))}
    m = MinHash(num_perm=cfg.num_perm, seed=cfg.seed, scheme=SCHEME)
    m.update_batch(sorted(shingles))
    return m.hashvalues.copy()


class NearDuplicates:
    """Feed signatures in canonical order; `check` returns the index of the earlier near-duplicate
    a document repeats, or None (and then remembers the document)."""

    def __init__(self, cfg: DedupConfig) -> None:
        self.cfg = cfg
        # Band sizes chosen to favour recall (few missed pairs); every candidate the index returns
        # is then confirmed by its estimated Jaccard similarity, so precision does not suffer.
        self.lsh = MinHashLSH(threshold=cfg.threshold, num_perm=cfg.num_perm, weights=(0.1, 0.9))
        self.kept: dict[int, MinHash] = {}

    def check(self, index: int, sig: np.ndarray) -> int | None:
        m = MinHash(num_perm=self.cfg.num_perm, seed=self.cfg.seed, hashvalues=sig, scheme=SCHEME)
        matches = [int(k) for k in self.lsh.query(m) if self.kept[int(k)].jaccard(m) >= self.cfg.threshold]
        if matches:
            return min(matches)
        self.lsh.insert(str(index), m)
        self.kept[index] = m
        return None
