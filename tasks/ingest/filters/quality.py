"""Gopher-style quality heuristics: returns the first rule a document breaks, or None.

Rules and default thresholds follow Rae et al. (2021), "Scaling Language Models", appendix A:
word count and mean word length bounds, symbol-to-word ratio, bullet and ellipsis lines,
alphabetic words, stop words, and repetition (duplicate paragraphs and lines, top n-grams,
duplicate n-grams).
"""

from __future__ import annotations

import re
from collections import Counter

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


def _top_ngram_char_fraction(words: list[str], n: int, total_chars: int) -> float:
    grams = Counter(tuple(words[i : i + n]) for i in range(len(words) - n + 1))
    if not grams:
        return 0.0
    gram, count = grams.most_common(1)[0]
    if count < 2:
        return 0.0
    return count * sum(len(w) for w in gram) / total_chars


def _duplicate_ngram_char_fraction(words: list[str], n: int, total_chars: int) -> float:
    """Share of characters in words covered by n-grams that occur more than once."""
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


def quality_issue(text: str, cfg: QualityFilter) -> str | None:
    words = _WORD.findall(text)
    n = len(words)
    if n < cfg.min_words:
        return "quality:too_few_words"
    if n > cfg.max_words:
        return "quality:too_many_words"
    mean_len = sum(len(w) for w in words) / n
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
    tokens = text.split()
    if sum(any(c.isalpha() for c in t) for t in tokens) / max(1, len(tokens)) < cfg.min_alpha_word_ratio:
        return "quality:alpha_words"
    lowered = [w.lower() for w in words]
    # Distinct stop words, as in Gopher ("at least two of the following words").
    if len(ALL_STOP_WORDS.intersection(lowered)) < cfg.min_stop_words:
        return "quality:stop_words"
    paragraphs = [p.strip() for p in re.split(r"\n{2,}", text)]
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
    total_chars = sum(len(w) for w in lowered)
    for size, limit in sorted(cfg.max_top_ngram_char_fraction.items()):
        if _top_ngram_char_fraction(lowered, size, total_chars) > limit:
            return f"quality:top_{size}gram"
    for size, limit in sorted(cfg.max_duplicate_ngram_char_fraction.items()):
        if _duplicate_ngram_char_fraction(lowered, size, total_chars) > limit:
            return f"quality:duplicate_{size}gram"
    return None
