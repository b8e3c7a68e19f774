"""Redact personal data: e-mail addresses, phone numbers, IBANs, payment cards, public IPs.

Each kind is a regular expression that finds candidates plus a check that confirms them (mod-97
for IBANs, Luhn for cards, "globally routable" for IPs, digit counts and ISBN exclusion for phone
numbers). Matches become typed placeholders (`<EMAIL>`, ...), and counts per kind are returned.

Every pattern runs in linear time: each can start only at a boundary (a look-behind refuses
starts inside a run of the same characters), its repeats are bounded and possessive where they
could otherwise backtrack, so a hostile multi-megabyte document cannot stall a worker.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Callable

from tasks.ingest.pii.checks import iban_valid, luhn_valid, public_ip

KINDS = ("email", "iban", "card", "phone", "ip")
PLACEHOLDER = {"email": "<EMAIL>", "iban": "<IBAN>", "card": "<CARD>", "phone": "<PHONE>", "ip": "<IP>"}

EMAIL = re.compile(r"(?<![\w.+%-])[\w.+%-]{1,64}+@(?:[A-Za-z0-9-]{1,63}+\.){1,8}[A-Za-z]{2,24}+(?![\w-])")
IBAN = re.compile(r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}+(?: ?[A-Z0-9]{1,3})?(?![A-Za-z0-9])")
# 4-4-4-4(-3) groups (Visa, Mastercard, ...) or Amex's 4-6-5; first digit 2-6 (ISBNs start 97x).
CARD = re.compile(r"(?<![\d-])(?:[2-6]\d{3}(?:[ -]?\d{4}){2,3}+(?:[ -]?\d{1,3})?|3[47]\d{2}[ -]?\d{6}[ -]?\d{5})(?![\d-])")
# Greedy but bounded (at most 20 characters to give back), so still linear.
PHONE_INTL = re.compile(r"(?<![\w+])\+[1-9][\d ().\-/]{6,20}(?<=\d)(?![\w])")
IBAN_PREFIX = re.compile(r"[A-Z]{2}\d{2} ?$")
PHONE_NATIONAL = re.compile(r"(?<![\w+/.-])\(?0\d{1,4}\)?(?:[ /-]?\d{2,8}){1,4}+(?![\w/-]|\.\d)")
IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w.]|\.\d)")
IPV6 = re.compile(r"(?<![\w:.])[0-9A-Fa-f:]{2,39}+(?![\w:])")
ISBN_HINT = re.compile(r"ISBN[-‐ ]?(?:1[03])?:?\s*$", re.IGNORECASE)


def _isbn(digits: str) -> bool:
    if len(digits) == 10 and (digits[:9].isdigit()):
        check = sum((10 - i) * (10 if c in "Xx" else int(c)) for i, c in enumerate(digits))
        return check % 11 == 0
    if len(digits) == 13 and digits.isdigit() and digits[:3] in ("978", "979"):
        return sum((3 if i % 2 else 1) * int(c) for i, c in enumerate(digits)) % 10 == 0
    return False


def _phone(match: re.Match, text: str) -> bool:
    candidate = match.group(0)
    digits = "".join(c for c in candidate if c.isdigit())
    if candidate.startswith("+"):
        return 8 <= len(digits) <= 15  # E.164: at most 15 digits
    if not 9 <= len(digits) <= 12:
        return False
    # "030/1234567": a subscriber number never starts with 0, a file number ("062/000198") may.
    if "/" in candidate and candidate.split("/", 1)[1].lstrip(" ").startswith("0"):
        return False
    if ISBN_HINT.search(text[max(0, match.start() - 12) : match.start()]) or (
        "-" in candidate and _isbn(digits)
    ):
        return False
    return True


def _ipv6(candidate: str) -> bool:
    return candidate.count(":") >= 2 and public_ip(candidate)


_RULES: list[tuple[str, re.Pattern, Callable[[re.Match, str], bool]]] = [
    ("email", EMAIL, lambda m, t: True),
    ("iban", IBAN, lambda m, t: iban_valid(m.group(0))),
    # A digit run right after "DE89 " is a mistyped IBAN, not a card.
    ("card", CARD, lambda m, t: luhn_valid(m.group(0)) and not IBAN_PREFIX.search(t[max(0, m.start() - 5) : m.start()])),
    ("phone", PHONE_INTL, _phone),
    ("phone", PHONE_NATIONAL, _phone),
    ("ip", IPV4, lambda m, t: public_ip(m.group(0))),
    ("ip", IPV6, lambda m, t: _ipv6(m.group(0))),
]


@dataclass(frozen=True)
class Redaction:
    text: str
    counts: dict[str, int]


def redact(text: str, kinds: tuple[str, ...] = KINDS) -> Redaction:
    counts: Counter = Counter()
    for kind, pattern, confirm in _RULES:
        if kind not in kinds:
            continue

        def replace(m: re.Match, _kind=kind, _confirm=confirm, _text=text) -> str:
            if _confirm(m, _text):
                counts[_kind] += 1
                return PLACEHOLDER[_kind]
            return m.group(0)

        text = pattern.sub(replace, text)
    return Redaction(text, dict(counts))
