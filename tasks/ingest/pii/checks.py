"""Checksums and address classes that turn pattern matches into confirmed personal data.

A regular expression finds candidates; these functions decide. That keeps the patterns simple
(and fast) while ISBNs, order numbers and private addresses stay untouched.
"""

from __future__ import annotations

import ipaddress
import re

# IBAN lengths per country (ISO 13616), EU/EEA plus a few neighbours seen in EU text.
IBAN_LENGTHS = {
    "AD": 24, "AT": 20, "BE": 16, "BG": 22, "CH": 21, "CY": 28, "CZ": 24, "DE": 22, "DK": 18,
    "EE": 20, "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GI": 23, "GL": 18, "GR": 27,
    "HR": 21, "HU": 28, "IE": 22, "IS": 26, "IT": 27, "LI": 21, "LT": 20, "LU": 20, "LV": 21,
    "MC": 27, "MT": 31, "NL": 18, "NO": 15, "PL": 28, "PT": 25, "RO": 24, "SE": 24, "SI": 19,
    "SK": 24, "SM": 27, "VA": 22,
}


# What precedes the digits of a mistyped IBAN ("NL89 ZVYH 7429 5523 55", "IT82 J185 6176 ..." fail
# mod-97): those digits are neither a card nor a phone number. Searched in a bounded window.
IBAN_HEAD = re.compile(r"[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){0,7} ?$")
IBAN_HEAD_WINDOW = 40


def iban_valid(candidate: str) -> bool:
    iban = candidate.replace(" ", "").upper()
    if IBAN_LENGTHS.get(iban[:2]) != len(iban) or not iban[2:4].isdigit():
        return False
    rearranged = iban[4:] + iban[:4]
    digits = "".join(str(int(ch, 36)) for ch in rearranged)
    return int(digits) % 97 == 1


def luhn_valid(candidate: str, min_length: int = 13) -> bool:
    digits = [int(c) for c in candidate if c.isdigit()]
    if not min_length <= len(digits) <= 19:
        return False
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def public_ip(candidate: str) -> bool:
    """True for globally routable addresses only: private, loopback, link-local, documentation,
    multicast and reserved ranges are not personal data about anyone."""
    try:
        addr = ipaddress.ip_address(candidate)
    except ValueError:
        return False
    return addr.is_global and not addr.is_multicast
