"""Redact personal data: e-mail addresses, phone numbers, IBANs, payment cards, public IPs.

Each kind is a regular expression that finds candidates plus a check that confirms them (mod-97
for IBANs, Luhn for cards, "globally routable" for IPs, libphonenumber's metadata for phone
numbers, see `phones.py`). All recognisers (Werk's, then a team's own, see `recognizer.py`) report
spans of the original text; overlaps are resolved by priority and the kept spans become typed
placeholders (`<EMAIL>`, ...), with counts per kind.

Recall and precision per kind and per EU locale are measured on a labelled set against Presidio
by `benchmarks/pii.py` (figures in BENCHMARKS.md).

Every pattern runs in linear time: each can start only at a boundary (a look-behind refuses
starts inside a run of the same characters), its repeats are bounded and possessive where they
could otherwise backtrack, so a hostile multi-megabyte document cannot stall a worker.
"""

from __future__ import annotations

import bisect
import re
from collections import Counter
from dataclasses import dataclass
from typing import Callable

from tasks.ingest.pii.checks import IBAN_HEAD, IBAN_HEAD_WINDOW, iban_valid, luhn_valid, public_ip
from tasks.ingest.pii.phones import CANDIDATE, EUROPE, phone_span
from tasks.ingest.pii.recognizer import Recognizer, Span

KINDS = ("email", "iban", "card", "phone", "ip")

# The local part may hold an apostrophe (o'brien@example.ie) but starts with a letter or digit.
EMAIL = re.compile(r"(?<![\w.+%-])\w[\w.+%'-]{0,63}+@(?:[A-Za-z0-9-]{1,63}+\.){1,8}[A-Za-z]{2,24}+(?![\w-])")
IBAN = re.compile(r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}+(?: ?[A-Z0-9]{1,3})?(?![A-Za-z0-9])")
# 4-4-4-4(-3) groups (Visa, Mastercard, ...) or Amex's 4-6-5; first digit 2-6 (ISBNs start 97x).
# Maestro's 0604 range (UK) is the one that starts with 0. Not glued to letters ("AT63 8194..."),
# a "+" or a bracket ("+43291715358648", "+43 (0)5675 26983802" are phone numbers).
CARD = re.compile(r"(?<![\w+)-])(?:(?:[2-6]\d{3}|0604)(?:[ -]?\d{4}){2,3}+(?:[ -]?\d{1,3})?|3[47]\d{2}[ -]?\d{6}[ -]?\d{5})(?![\d-])")
# Maestro issues 12-digit cards; other brands start at 13 digits.
MAESTRO_12 = re.compile(r"5[06-8]|6304|639|67|0604")
# An address before a full stop ends the sentence ("Contact: 8.8.8.8. Next"), so a following "."
# is allowed unless a digit follows it ("1.2.3.4.5" is no address); after "+" it is a phone number
# written with dots ("+36.28.157.247").
IPV4 = re.compile(r"(?<![\w.+])(?:\d{1,3}\.){3}\d{1,3}(?!\w|\.\d)")
# Hex-and-colon runs, also right after "word:" ("IP:2a00::1"); a colon glued on either side
# ("Tel.:2a00::1", "2a00::1: and") is trimmed. A colon within the first five characters, or the
# run is a word ("face", "added") and not looked at further.
IPV6 = re.compile(r"(?:(?<![\w:])|(?<=\w:))(?=[0-9A-Fa-f]{0,4}:)[0-9A-Fa-f:]{2,41}+(?![\w:])")

Found = tuple[int, int] | None


def _without_tail(m: re.Match, valid: Callable[[str], bool], separators: str) -> Found:
    """The match, or the match less a short trailing group, whichever passes `valid`: the
    pattern's last group ("... 1239 I", "...-6323 52", "...2206 2008") can take the next word."""
    text = m.group(0)
    if valid(text):
        return m.span()
    cut = max(text.rfind(sep) for sep in separators)
    if cut > 0 and len(text) - cut <= 5 and valid(text[:cut]):
        return m.start(), m.start() + cut
    return None


def _iban(m: re.Match, text: str, regions: tuple[str, ...]) -> Found:
    return _without_tail(m, iban_valid, " ")


def _card_valid(number: str) -> bool:
    digits = "".join(c for c in number if c.isdigit())
    if len(digits) == 12:
        return MAESTRO_12.match(digits) is not None and luhn_valid(digits, min_length=12)
    return luhn_valid(digits)


def _card(m: re.Match, text: str, regions: tuple[str, ...]) -> Found:
    if IBAN_HEAD.search(text[max(0, m.start() - IBAN_HEAD_WINDOW):m.start()]):
        return None  # the digits of a mistyped IBAN ("DE89 ...", "IT82 J185 ...")
    return _without_tail(m, _card_valid, " -")


def _ipv6(m: re.Match, text: str, regions: tuple[str, ...]) -> Found:
    start, end = m.span()
    if text.startswith(":", start) and not text.startswith("::", start):
        start += 1
    if text.endswith(":", start, end) and not text.endswith("::", start, end):
        end -= 1
    candidate = text[start:end]
    return (start, end) if candidate.count(":") >= 2 and public_ip(candidate) else None


def _span_if(check: Callable[[re.Match, str, tuple[str, ...]], bool]) -> Callable[[re.Match, str, tuple[str, ...]], Found]:
    return lambda m, t, r: m.span() if check(m, t, r) else None


Confirm = Callable[[re.Match, str, tuple[str, ...]], Found]


@dataclass(frozen=True)
class _Rule:
    """A kind's pattern and check. Every match of `pattern` holds a character of `anchor` and is at
    most `reach` characters long, so the pattern only needs to run near the anchor's characters:
    a few stretches of a document, not all of it (`_windows`)."""

    kind: str
    pattern: re.Pattern
    confirm: Confirm
    anchor: str  # a key of _ANCHORS
    reach: int


# In priority order: where two kinds claim the same characters, the earlier wins (an e-mail's
# digits are not a phone number; an IP address is not one either). Reaches are the patterns'
# longest matches, rounded up: e-mail 1+63+1+8*64+24, IBAN 4+7*5+4, card 23, IPv4 15, IPv6 41,
# phone 2+17+1+8*20.
_RULES: list[_Rule] = [
    _Rule("email", EMAIL, lambda m, t, r: m.span(), "@", 640),
    _Rule("iban", IBAN, _iban, "digit", 48),
    _Rule("card", CARD, _card, "digit", 32),
    _Rule("ip", IPV4, _span_if(lambda m, t, r: public_ip(m.group(0))), "digit", 16),
    _Rule("ip", IPV6, _ipv6, ":", 48),
    _Rule("phone", CANDIDATE, phone_span, "digit", 192),
]
_ANCHORS = {"@": re.compile(r"@+"), ":": re.compile(r":+"), "digit": re.compile(r"\d+")}
# Characters a pattern's look-behind or look-ahead reads beyond its match (at most 2 today).
_LOOK = 4


def _windows(runs: list[tuple[int, int]], reach: int, size: int) -> list[tuple[int, int]]:
    """Disjoint stretches of a text of `size` characters that hold every match of a rule whose
    matches contain an anchor character (at `runs`) and are at most `reach` long, with the
    characters its look-arounds read. Scanning each stretch with `finditer(text, start, end)`
    finds exactly the matches a scan of the whole text finds: a match lies within `reach` of one
    of its anchors, so no match (nor any path the engine tries that could succeed) crosses a
    stretch's end, and look-behinds still see the text before `start`."""
    windows: list[tuple[int, int]] = []
    for run_start, run_end in runs:
        start, end = max(0, run_start - reach - _LOOK), min(size, run_end + reach + _LOOK)
        if windows and start <= windows[-1][1]:
            windows[-1] = (windows[-1][0], end)
        else:
            windows.append((start, end))
    return windows


def find(text: str, kinds: tuple[str, ...] = KINDS, regions: tuple[str, ...] = EUROPE,
         recognizers: tuple[Recognizer, ...] = ()) -> list[Span]:
    """Non-overlapping spans of personal data, sorted; Werk's kinds first, then `recognizers`'."""
    chosen = _Chosen()
    # Where each anchor's characters are (most prose has no "@" and many paragraphs no digit):
    # size grows with the number of digit runs, colons and "@" in the document.
    runs: dict[str, list[tuple[int, int]]] = {}
    for rule in _RULES:
        if rule.kind not in kinds:
            continue
        if rule.anchor not in runs:
            runs[rule.anchor] = [m.span() for m in _ANCHORS[rule.anchor].finditer(text)]
        for start, end in _windows(runs[rule.anchor], rule.reach, len(text)):
            for m in rule.pattern.finditer(text, start, end):
                if found := rule.confirm(m, text, regions):
                    chosen.add(Span(*found, rule.kind))
    for recognizer in recognizers:
        for span in recognizer.find(text):
            if not (0 <= span.start < span.end <= len(text)):
                raise ValueError(f"{type(recognizer).__name__} returned {span} outside a text of {len(text)} characters")
            chosen.add(span)
    return chosen.spans


class _Chosen:
    """Disjoint spans kept sorted by start; a span overlapping one already kept is dropped.
    Size grows with the spans found in one document; each insertion is a binary search."""

    def __init__(self) -> None:
        self.spans: list[Span] = []
        self._starts: list[int] = []

    def add(self, span: Span) -> None:
        i = bisect.bisect_left(self._starts, span.start)
        if i > 0 and self.spans[i - 1].end > span.start:
            return
        if i < len(self.spans) and self.spans[i].start < span.end:
            return
        self.spans.insert(i, span)
        self._starts.insert(i, span.start)


@dataclass(frozen=True)
class Redaction:
    text: str
    counts: dict[str, int]


def redact(text: str, kinds: tuple[str, ...] = KINDS, regions: tuple[str, ...] = EUROPE,
           recognizers: tuple[Recognizer, ...] = ()) -> Redaction:
    spans = find(text, kinds, regions, recognizers)
    out, last = [], 0
    for span in spans:
        out += [text[last:span.start], f"<{span.kind.upper()}>"]
        last = span.end
    out.append(text[last:])
    return Redaction("".join(out), dict(Counter(span.kind for span in spans)))
