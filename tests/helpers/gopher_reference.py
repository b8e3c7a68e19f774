"""The Gopher repetition and alphabetic-word measures written plainly, word by word, as Rae et al.
(2021) define them: the reference that Werk's vectorised rules (tasks/ingest/filters/quality.py)
must agree with."""

from __future__ import annotations

from collections import Counter


def top_ngram_char_fraction(words: list[str], n: int) -> float:
    total_chars = sum(len(w) for w in words)
    grams = Counter(tuple(words[i : i + n]) for i in range(len(words) - n + 1))
    if not grams:
        return 0.0
    gram, count = grams.most_common(1)[0]
    if count < 2:
        return 0.0
    return count * sum(len(w) for w in gram) / total_chars


def duplicate_ngram_char_fraction(words: list[str], n: int) -> float:
    total_chars = sum(len(w) for w in words)
    if len(words) < n:
        return 0.0
    grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    counts = Counter(grams)
    covered = [False] * len(words)
    for i, g in enumerate(grams):
        if counts[g] > 1:
            for j in range(i, i + n):
                covered[j] = True
    return sum(len(w) for w, c in zip(words, covered) if c) / total_chars


def letter_tokens(text: str) -> int:
    return sum(any(c.isalpha() for c in t) for t in text.split())
