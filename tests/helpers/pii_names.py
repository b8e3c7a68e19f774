"""A team's own recogniser, as a recipe would name it ("helpers.pii_names:known_people"): the
people on a list, found by exact match. Stands in for an NER model a team installs."""

from __future__ import annotations

import re
from typing import Iterator

from tasks.ingest.pii.recognizer import Span


class KnownPeople:
    kinds = ("person",)

    def __init__(self, names: tuple[str, ...]):
        self._pattern = re.compile("|".join(re.escape(n) for n in names))

    def find(self, text: str) -> Iterator[Span]:
        for m in self._pattern.finditer(text):
            yield Span(m.start(), m.end(), "person")


def known_people() -> KnownPeople:
    return KnownPeople(("Ada Lovelace", "Grace Hopper"))


def not_a_recognizer() -> object:
    return object()
