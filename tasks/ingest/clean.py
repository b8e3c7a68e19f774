"""Text normalisation: strict UTF-8, NFC, no control characters, tidy whitespace.

Control characters (C0/C1, NUL included) are removed except newline and tab; a BOM is dropped;
CR and CRLF become LF; runs of spaces and tabs collapse to one space, lines lose trailing
blanks, and more than one empty line in a row becomes one.
"""

from __future__ import annotations

import re
import unicodedata


class InvalidText(ValueError):
    """The bytes are not text Werk will train on; the message is the quarantine reason."""


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_BLANKS = re.compile(r"[ \t\u00a0\u2000-\u200a\u202f\u205f\u3000]+")
_ODD_BLANKS = re.compile(r"[\t\u00a0\u2000-\u200a\u202f\u205f\u3000]")
_TRAILING = re.compile(r" +\n")
_EMPTY_LINES = re.compile(r"\n{3,}")


def normalize(raw: bytes | str) -> str:
    if isinstance(raw, bytes):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidText("invalid_utf8") from exc
    else:
        text = raw
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:  # lone surrogates from JSON escapes
            raise InvalidText("invalid_utf8") from exc
    text = text.replace("\ufeff", "").replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub("", text)
    text = unicodedata.normalize("NFC", text)
    if "  " in text or _ODD_BLANKS.search(text):  # most text has single plain spaces only
        text = _BLANKS.sub(" ", text)
    # A substring test is far cheaper than a regex pass, and most texts need neither.
    if " \n" in text:
        text = _TRAILING.sub("\n", text)
    if "\n\n\n" in text:
        text = _EMPTY_LINES.sub("\n\n", text)
    return text.strip()
