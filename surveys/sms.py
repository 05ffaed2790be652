"""What a text costs as an SMS: its encoding, its length as the network counts it, and its segments.

Pure and small on purpose: the survey checker, the engine (to keep a message in one segment) and the simulate
endpoint all measure with it. GSM-7 (GSM 03.38 basic alphabet, with its extension table) takes 160 characters in
one segment and 153 per segment of a longer message; a text with any other character is sent as UCS-2: 70, or 67
per segment, counting UTF-16 code units (an emoji counts twice).
"""

from __future__ import annotations

from dataclasses import dataclass

GSM7, UCS2 = "GSM-7", "UCS-2"

_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_EXTENDED = frozenset("^{}\\[~]|€\f")
"""Characters of the extension table: each takes two septets (an escape and the character)."""
_LIMITS = {GSM7: (160, 153), UCS2: (70, 67)}


@dataclass(frozen=True)
class Measure:
    """A text as the network sends it: `characters` are septets (GSM-7) or UTF-16 code units (UCS-2)."""

    encoding: str
    characters: int
    segments: int

    def as_dict(self) -> dict[str, int | str]:
        return {"encoding": self.encoding, "characters": self.characters, "segments": self.segments}


def is_gsm7(text: str) -> bool:
    """True when every character is in the GSM-7 alphabet (basic or extension table)."""
    return all(ch in _BASIC or ch in _EXTENDED for ch in text)


def encoding(text: str) -> str:
    """'GSM-7' or 'UCS-2'."""
    return GSM7 if is_gsm7(text) else UCS2


def characters(text: str) -> int:
    """The text's length as the network counts it in its encoding."""
    if is_gsm7(text):
        return len(text) + sum(1 for ch in text if ch in _EXTENDED)
    return len(text.encode("utf-16-le")) // 2


def segments(text: str) -> int:
    """How many SMS segments the text takes (an empty text still takes one)."""
    return measure(text).segments


def measure(text: str) -> Measure:
    """Encoding, characters and segments of one message."""
    kind = encoding(text)
    length = characters(text)
    single, multi = _LIMITS[kind]
    return Measure(kind, length, 1 if length <= single else -(-length // multi))


def fits_one(text: str) -> bool:
    """Whether the text goes in a single segment."""
    return measure(text).segments == 1


def non_gsm7(text: str) -> str:
    """The characters that force UCS-2, each once, in order of appearance ('' for a GSM-7 text)."""
    return "".join(dict.fromkeys(ch for ch in text if ch not in _BASIC and ch not in _EXTENDED))
