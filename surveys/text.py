"""Text normalization shared by keywords and answer parsers: case, accents, punctuation and emoji."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

_SPACES = re.compile(r"\s+")
_ASCII_DROP = re.compile(r"[^a-z0-9.,]|(?<![0-9])[.,]|[.,](?![0-9])")
"""What `normalize` turns into spaces in ASCII text (the common case, done without a loop over characters)."""


def strip_accents(text: str) -> str:
    """'Sí, Ñandú' -> 'Si, Nandu' (removes combining marks after NFKD decomposition)."""
    if text.isascii():
        return text
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


SHORT = 64
"""Texts up to this length are normalized once per process (replies like 'si', '2', 'no se' come back often)."""


def normalize(text: str) -> str:
    """Lowercase, accent-free words separated by single spaces; punctuation and emoji become spaces.

    Digits, letters and the decimal separators inside numbers are kept: '¡Sí, claro! 👍' -> 'si claro',
    '2.' -> '2', '3,5' -> '3,5', 'Nuevo León' -> 'nuevo leon'.
    """
    if len(text) <= SHORT:
        return _normalize_short(text)
    return _normalize(text)


@lru_cache(maxsize=8192)
def _normalize_short(text: str) -> str:
    return _normalize(text)


def _normalize(text: str) -> str:
    if text.isascii():
        return _SPACES.sub(" ", _ASCII_DROP.sub(" ", text.lower())).strip()
    return _normalize_any(text)


def _normalize_any(text: str) -> str:
    """`normalize` for any text, one character at a time."""
    text = strip_accents(text).casefold()
    out: list[str] = []
    for i, ch in enumerate(text):
        if ch.isalnum():
            out.append(ch)
        elif ch in ".," and 0 < i < len(text) - 1 and text[i - 1].isdigit() and text[i + 1].isdigit():
            out.append(ch)
        else:
            out.append(" ")
    return _SPACES.sub(" ", "".join(out)).strip()


def words(text: str) -> list[str]:
    """The normalized words of a text."""
    normalized = normalize(text)
    return normalized.split(" ") if normalized else []


def contains_phrase(haystack: list[str], phrase: list[str]) -> bool:
    """True when the word sequence `phrase` occurs contiguously in `haystack`."""
    n = len(phrase)
    if n == 0 or n > len(haystack):
        return False
    return any(haystack[i : i + n] == phrase for i in range(len(haystack) - n + 1))


def sms_is_gsm7(text: str) -> bool:
    """True when the text fits the GSM 03.38 basic alphabet (160 characters per SMS segment)."""
    return all(ch in _GSM7 for ch in text)


_GSM7 = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà^{}\\[~]|€"
)


def sms_segments(text: str) -> int:
    """How many SMS segments a text takes (GSM-7: 160/153 characters, UCS-2: 70/67)."""
    if sms_is_gsm7(text):
        extended = sum(1 for ch in text if ch in "^{}\\[~]|€")
        length = len(text) + extended
        return 1 if length <= 160 else -(-length // 153)
    length = len(text.encode("utf-16-le")) // 2
    return 1 if length <= 70 else -(-length // 67)
