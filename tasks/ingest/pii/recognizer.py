"""The recogniser interface, and loading a team's own recognisers by import path.

Patterns find what has a shape (addresses, numbers with checksums). Names, postal addresses and
other free-text identifiers need a model: a team that has one (an NER model it installs, a
dictionary of its own customers) adds it without changing Werk, by naming a factory in the
recipe:

    ingest:
      pii:
        recognizers: ["my_team.pii:PersonNames"]

The factory is called once per worker process with no arguments (load a model there) and returns
an object with `kinds` and `find(text)`; its spans are redacted as `<KIND>` and counted per kind
alongside Werk's own.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable, Protocol, runtime_checkable


@dataclass(frozen=True, order=True)
class Span:
    start: int
    end: int  # exclusive
    kind: str  # lower-case name; its placeholder is `<KIND>`


@runtime_checkable
class Recognizer(Protocol):
    kinds: tuple[str, ...]

    def find(self, text: str) -> Iterable[Span]:
        """Every span of personal data in `text`; spans may overlap, the redactor resolves them."""


class RecognizerError(ValueError):
    """A configured recogniser cannot be loaded or does not provide the interface."""


@lru_cache(maxsize=None)
def load(path: str) -> Recognizer:
    """`"package.module:factory"` -> the recogniser it makes, once per process."""
    module_name, _, attr = path.partition(":")
    if not module_name or not attr:
        raise RecognizerError(f"recogniser {path!r}: expected 'package.module:factory'")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise RecognizerError(f"recogniser {path!r} cannot be imported: {exc}") from exc
    recognizer = factory()
    if not isinstance(recognizer, Recognizer) or not recognizer.kinds:
        raise RecognizerError(f"recogniser {path!r} has no `kinds` and `find(text)`")
    bad = [k for k in recognizer.kinds if not k.isidentifier() or k != k.lower()]
    if bad:
        raise RecognizerError(f"recogniser {path!r}: kinds must be lower-case identifiers, got {bad}")
    return recognizer
