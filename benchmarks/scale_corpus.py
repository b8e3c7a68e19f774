"""Synthetic corpora of unique documents from real text, for the ingest scale benchmark.

Sentences of the repository's corpus (Shakespeare in English; parliamentary speeches in German,
English, Spanish and Dutch) are remixed into new documents: each document takes 8 to 40 sentences
of one language in a seeded random order, so documents are unique and read as real prose to the
language and quality filters. One document in 50 is an exact copy of an earlier one and one in 50
a near copy (a sentence changed), so both dedup paths have work. `build(dir, mb, seed)` writes
`.jsonl` files (4 MB by default); the same arguments always give the same bytes.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

CORPUS = Path(__file__).resolve().parents[1] / "tests" / "assets" / "corpus"
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-ZÁÉÍÓÚÄÖÜÑ¿¡])")
FILE_BYTES = 4 << 20


def sentence_pools() -> dict[str, list[str]]:
    """Sentences of at least five words per language."""
    pools: dict[str, list[str]] = {}

    def add(lang: str, text: str) -> None:
        for s in _SENTENCE.split(" ".join(text.split())):
            if len(s.split()) >= 5:
                pools.setdefault(lang, []).append(s)

    for path in sorted((CORPUS / "shakespeare").glob("*.txt")):
        add("en", path.read_text())
    for path in sorted((CORPUS / "parlspeech").rglob("*.jsonl")):
        for line in path.read_text().splitlines():
            doc = json.loads(line)
            add(path.stem.rsplit("-", 1)[-1], doc["text"])
    return {k: sorted(set(v)) for k, v in sorted(pools.items())}


def build(out: Path, mb: float, seed: int = 0, file_bytes: int = FILE_BYTES) -> dict[str, int]:
    """Write about `mb` MB of documents under `out`, in files of about `file_bytes`; returns counts."""
    rng = random.Random(seed)
    pools = sentence_pools()
    langs = list(pools)
    out.mkdir(parents=True, exist_ok=True)
    target = int(mb * 1_000_000)
    written = docs = exact = near = 0
    earlier: list[list[str]] = []  # a bounded sample of earlier documents to copy from
    fh, part, in_part = None, 0, 0
    while written < target:
        roll = rng.random()
        if earlier and roll < 0.02:
            sentences, exact = list(rng.choice(earlier)), exact + 1
        elif earlier and roll < 0.04:
            sentences = list(rng.choice(earlier))
            sentences[rng.randrange(len(sentences))] = rng.choice(pools[rng.choice(langs)])
            near += 1
        else:
            pool = pools[rng.choice(langs)]
            sentences = [rng.choice(pool) for _ in range(rng.randint(8, 40))]
        if len(earlier) < 1000:
            earlier.append(sentences)
        elif rng.random() < 0.01:
            earlier[rng.randrange(1000)] = sentences
        line = json.dumps({"id": f"d{docs}", "text": " ".join(sentences)}, ensure_ascii=False) + "\n"
        if fh is None or in_part >= file_bytes:
            if fh:
                fh.close()
            fh, part, in_part = open(out / f"part-{part:05d}.jsonl", "w", encoding="utf-8"), part + 1, 0
        fh.write(line)
        size = len(line.encode("utf-8"))
        written, in_part, docs = written + size, in_part + size, docs + 1
    if fh:
        fh.close()
    return {"bytes": written, "documents": docs, "exact_copies": exact, "near_copies": near}


if __name__ == "__main__":
    import sys

    print(build(Path(sys.argv[1]), float(sys.argv[2])))
