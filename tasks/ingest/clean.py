"""Text normalisation: strict UTF-8, NFC, one kind of line end, no BOM, no NUL bytes."""

from __future__ import annotations

import unicodedata


class InvalidText(ValueError):
    """The bytes are not text Werk will train on; the message is the quarantine reason."""


def normalize(raw: bytes) -> str:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidText("invalid_utf8") from exc
    text = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    return unicodedata.normalize("NFC", text).strip()
