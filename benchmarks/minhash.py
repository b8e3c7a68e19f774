"""MinHash signatures: rensa's RMinHash (what Werk uses) against datasketch's MinHash.

Both hash the same word 5-gram shingles of the same documents (real sentences remixed, see
`scale_corpus.py`) into 128 permutations. Measured: documents per second (alternated rounds), and
the similarity each estimates for pairs of known Jaccard similarity (a document and a copy with
words changed), so equal recall at the dedup threshold can be checked: the mean absolute error
of the estimate and the share of pairs above/below 0.8 classified the same way as the exact value.

    .venv/bin/python benchmarks/minhash.py [--quick]
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import alternate, report  # noqa: E402
from scale_corpus import sentence_pools  # noqa: E402

_WORD = re.compile(r"\w+", re.UNICODE)
PERM, SHINGLE, THRESHOLD = 128, 5, 0.8


def shingles(text: str) -> set[str]:
    words = _WORD.findall(text.lower())
    return {" ".join(words[i : i + SHINGLE]) for i in range(max(1, len(words) - SHINGLE + 1))}


def rensa_sig(text: str) -> np.ndarray:
    from rensa import RMinHash

    m = RMinHash(num_perm=PERM, seed=1)
    m.update(list(shingles(text)))
    return np.asarray(m.digest(), dtype=np.uint32)


def datasketch_sig(text: str) -> np.ndarray:
    from datasketch import MinHash

    m = MinHash(num_perm=PERM, seed=1, scheme="affine32")
    m.update_batch(sorted(s.encode() for s in shingles(text)))
    return m.hashvalues


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    rng = random.Random(0)
    pools = sentence_pools()
    langs = list(pools)
    docs = [" ".join(rng.choice(pools[lang]) for _ in range(rng.randint(8, 40)))
            for lang in (rng.choice(langs) for _ in range(300 if args.quick else 1500))]
    n_bytes = sum(len(d.encode()) for d in docs)

    def rate(fn):
        def run() -> float:
            t0 = time.perf_counter()
            for d in docs:
                fn(d)
            return len(docs) / (time.perf_counter() - t0)
        return run

    w, b = alternate(rate(rensa_sig), rate(datasketch_sig), rounds=3 if args.quick else 5)
    # Pairs of known similarity: a document and a copy with some words changed.
    errors = {"rensa": [], "datasketch": []}
    agree = {"rensa": 0, "datasketch": 0}
    pairs = 0
    for d in docs[:200]:
        words = d.split()
        changed = [w + "x" if rng.random() < rng.choice([0.01, 0.02, 0.04, 0.08]) else w for w in words]
        other = " ".join(changed)
        a, c = shingles(d), shingles(other)
        exact = len(a & c) / len(a | c)
        pairs += 1
        for name, fn in (("rensa", rensa_sig), ("datasketch", datasketch_sig)):
            est = float((fn(d) == fn(other)).mean())
            errors[name].append(abs(est - exact))
            agree[name] += (est >= THRESHOLD) == (exact >= THRESHOLD)
    for name in errors:
        print(f"{name}: mean |estimate - Jaccard| {np.mean(errors[name]):.4f}, "
              f"same side of {THRESHOLD} as the exact value: {agree[name]}/{pairs}")
    report("minhash", "docs/s", w, b, documents=len(docs), megabytes=round(n_bytes / 1e6, 2),
           mae_rensa=round(float(np.mean(errors["rensa"])), 4), mae_datasketch=round(float(np.mean(errors["datasketch"])), 4),
           agree_rensa=agree["rensa"], agree_datasketch=agree["datasketch"], pairs=pairs)


if __name__ == "__main__":
    main()
