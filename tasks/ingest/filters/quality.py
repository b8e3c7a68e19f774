"""Gopher-style quality heuristics: returns the first rule a document breaks, or None.

Rules and default thresholds follow Rae et al. (2021), "Scaling Language Models", appendix A:
word count and mean word length bounds, symbol-to-word ratio, bullet and ellipsis lines,
alphabetic words, stop words, and repetition (duplicate paragraphs and lines, top n-grams,
duplicate n-grams).
"""

from __future__ import annotations

import re

import numpy as np

from tasks.ingest.config import QualityFilter
from tasks.ingest.filters.stopwords import ALL_STOP_WORDS

_WORD = re.compile(r"\w+(?:['’-]\w+)*", re.UNICODE)

_BULLETS = ("•", "●", "○", "▪", "-", "*", "·", "‣", "⁃")
_ELLIPSES = ("...", "…")


def _dup_fractions(lines: list[str]) -> tuple[float, float]:
    """Share of duplicate items, and share of characters in them (lines or paragraphs)."""
    lines = [ln for ln in lines if ln.strip()]
    if not lines:
        return 0.0, 0.0
    seen: set[str] = set()
    dup_lines = dup_chars = 0
    for ln in lines:
        if ln in seen:
            dup_lines += 1
            dup_chars += len(ln)
        seen.add(ln)
    total_chars = sum(len(ln) for ln in lines)
    return dup_lines / len(lines), dup_chars / max(1, total_chars)


# A whitespace-separated token without an ASCII letter: the only kind that can lack a letter
# (`str.isalpha`): numbers, punctuation, and words of other scripts, which are checked one by one.
# Possessive, so a long run of digits is read once.
_NO_ASCII_LETTER = re.compile(r"(?<!\S)[^\sA-Za-z]++(?!\S)")
_PARAGRAPH_BREAK = re.compile(r"\n{2,}")


def _letterless_tokens(text: str) -> int:
    """Whitespace-separated tokens without a letter (`str.isalpha`) of any script."""
    return sum(1 for t in _NO_ASCII_LETTER.findall(text) if not any(c.isalpha() for c in t))


def _letter_tokens(text: str) -> int:
    """Whitespace-separated tokens holding a letter."""
    return len(text.split()) - _letterless_tokens(text)


class _Ngrams:
    """Word n-grams of one document as 64-bit hashes, one array per n, built by extending the
    (n-1)-grams: the repetition rules then count with numpy instead of Python tuples. A collision
    of two different n-grams has probability ~2^-64 per pair."""

    def __init__(self, lowered: list[str]) -> None:
        # Python's string hash (per process, fine within one document) names each word.
        self.ids = np.fromiter(map(hash, lowered), dtype=np.int64, count=len(lowered)).view(np.uint64)
        lengths = np.fromiter(map(len, lowered), dtype=np.int64, count=len(lowered))
        self.lengths = lengths
        self.chars_before = np.concatenate([[0], np.cumsum(lengths)])  # chars of words [0, i)
        self.total_chars = int(self.chars_before[-1])
        self._hashes = {1: self.ids}

    def hashes(self, n: int) -> np.ndarray:
        """Hash of the n-gram starting at each word i, for i in [0, words - n]."""
        if n not in self._hashes:
            prev = self.hashes(n - 1)
            with np.errstate(over="ignore"):
                self._hashes[n] = (prev[:-1] * np.uint64(0x9E3779B97F4A7C15)) ^ (self.ids[n - 1:] * np.uint64(0xBF58476D1CE4E5B9))
        return self._hashes[n]

    def _sorted(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The n-grams' order when sorted (stable: equal ones in text order), and for each sorted
        position whether it equals the one before."""
        h = self.hashes(n)
        order = np.argsort(h, kind="stable")
        sorted_h = h[order]
        same = np.zeros(len(h), dtype=bool)
        np.equal(sorted_h[1:], sorted_h[:-1], out=same[1:])
        return order, same

    def top_char_fraction(self, n: int) -> float:
        """Characters of the most frequent n-gram (the first seen among equals) times its count,
        over all characters, when it occurs more than once."""
        if len(self.lengths) < n:
            return 0.0
        order, same = self._sorted(n)
        if not same.any():
            return 0.0
        starts = np.flatnonzero(~same)
        counts = np.empty(len(starts), dtype=np.int64)  # of each distinct n-gram (np.diff costs more)
        np.subtract(starts[1:], starts[:-1], out=counts[:-1])
        counts[-1] = len(same) - starts[-1]
        top = counts.max()
        first = int(order[starts[counts == top]].min())
        return top * int(self.chars_before[first + n] - self.chars_before[first]) / self.total_chars

    def duplicate_char_fraction(self, n: int) -> float:
        """Share of characters in words covered by n-grams that occur more than once."""
        if len(self.lengths) < n:
            return 0.0
        order, same = self._sorted(n)
        repeated = same.copy()
        repeated[:-1] |= same[1:]  # the first of a run of equals repeats too
        starts = order[repeated]  # start words of repeated n-grams
        if not len(starts):
            return 0.0
        cover = np.zeros(len(self.lengths) + 1, dtype=np.int64)
        # Start words are distinct (each n-gram once), so plain indexing adds (np.add.at is slower).
        cover[starts] += 1
        cover[starts + n] -= 1
        return int(self.lengths[np.cumsum(cover[:-1]) > 0].sum()) / self.total_chars


def quality_issue(text: str, cfg: QualityFilter) -> str | None:
    words = _WORD.findall(text)
    n = len(words)
    if n < cfg.min_words:
        return "quality:too_few_words"
    if n > cfg.max_words:
        return "quality:too_many_words"
    mean_len = sum(map(len, words)) / n
    if not cfg.min_mean_word_length <= mean_len <= cfg.max_mean_word_length:
        return "quality:mean_word_length"
    symbols = text.count("#") + sum(text.count(e) for e in _ELLIPSES)
    if symbols / n > cfg.max_symbol_word_ratio:
        return "quality:symbol_ratio"
    lines = text.split("\n")
    stripped = [ln.strip() for ln in lines if ln.strip()]
    if stripped:
        if sum(ln.startswith(_BULLETS) for ln in stripped) / len(stripped) > cfg.max_bullet_line_ratio:
            return "quality:bullet_lines"
        if sum(ln.endswith(_ELLIPSES) for ln in stripped) / len(stripped) > cfg.max_ellipsis_line_ratio:
            return "quality:ellipsis_lines"
    tokens = len(text.split())
    if (tokens - _letterless_tokens(text)) / max(1, tokens) < cfg.min_alpha_word_ratio:
        return "quality:alpha_words"
    lowered = list(map(str.lower, words))
    # Distinct stop words, as in Gopher ("at least two of the following words").
    if len(ALL_STOP_WORDS.intersection(lowered)) < cfg.min_stop_words:
        return "quality:stop_words"
    paragraphs = [p.strip() for p in _PARAGRAPH_BREAK.split(text)]
    dup_paras, dup_para_chars = _dup_fractions(paragraphs)
    if dup_paras > cfg.max_duplicate_paragraph_fraction:
        return "quality:duplicate_paragraphs"
    if dup_para_chars > cfg.max_duplicate_paragraph_char_fraction:
        return "quality:duplicate_paragraph_chars"
    dup_lines, dup_line_chars = _dup_fractions(lines)
    if dup_lines > cfg.max_duplicate_line_fraction:
        return "quality:duplicate_lines"
    if dup_line_chars > cfg.max_duplicate_line_char_fraction:
        return "quality:duplicate_line_chars"
    grams = _Ngrams(lowered)
    # A repeated (n+1)-gram starts with a repeated n-gram: once no n-gram repeats (fraction 0), no
    # longer one does, and the larger sizes need no counting (most prose stops at 5 words).
    for size, limit in sorted(cfg.max_top_ngram_char_fraction.items()):
        fraction = grams.top_char_fraction(size)
        if fraction > limit:
            return f"quality:top_{size}gram"
        if fraction == 0.0:
            break
    for size, limit in sorted(cfg.max_duplicate_ngram_char_fraction.items()):
        fraction = grams.duplicate_char_fraction(size)
        if fraction > limit:
            return f"quality:duplicate_{size}gram"
        if fraction == 0.0:
            break
    return None
