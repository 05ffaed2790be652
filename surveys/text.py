"""Text normalization shared by keywords and answer parsers: case, accents, punctuation and emoji."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
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


_REPEATS = re.compile(r"([a-z])\1+")


def squeeze(tokens: Iterable[str]) -> list[str]:
    """Collapse repeated letters ('siii' -> 'si', 'llave' -> 'lave'); applied to replies and phrases alike."""
    return [_REPEATS.sub(r"\1", t) for t in tokens]


def contains_phrase(haystack: list[str], phrase: list[str]) -> bool:
    """True when the word sequence `phrase` occurs contiguously in `haystack`."""
    n = len(phrase)
    if n == 0 or n > len(haystack):
        return False
    return any(haystack[i : i + n] == phrase for i in range(len(haystack) - n + 1))
