"""Language identification with lingua, whose models ship inside its wheel (nothing downloaded).

The detector chooses among the configured candidate languages (by default the EU's official
languages lingua covers: all but Maltese). One detector per process, built on first use.
"""

from __future__ import annotations

from functools import lru_cache

from tasks.ingest.config import LanguageFilter


@lru_cache(maxsize=4)
def _detector(candidates: tuple[str, ...], accuracy: str):
    from lingua import IsoCode639_1, Language, LanguageDetectorBuilder

    languages = [Language.from_iso_code_639_1(getattr(IsoCode639_1, c.upper())) for c in candidates]
    builder = LanguageDetectorBuilder.from_languages(*languages)
    if accuracy == "low":
        builder = builder.with_low_accuracy_mode()
    return builder.with_preloaded_language_models().build()


def identify(text: str, cfg: LanguageFilter) -> tuple[str | None, float]:
    """(ISO 639-1 code, confidence) of the text's most likely language, or (None, 0.0)."""
    detector = _detector(tuple(sorted(set(cfg.candidates))), cfg.accuracy)
    values = detector.compute_language_confidence_values(text[: cfg.sample_chars])
    if not values:
        return None, 0.0
    best = values[0]
    return best.language.iso_code_639_1.name.lower(), float(best.value)


def language_issue(language: str | None, confidence: float, cfg: LanguageFilter) -> str | None:
    if language is None or confidence < cfg.min_confidence:
        return "language:uncertain"
    if cfg.keep and language not in cfg.keep:
        return f"language:not_kept:{language}"
    return None
