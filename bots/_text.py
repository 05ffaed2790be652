"""Texts from providers, made safe to store."""

from __future__ import annotations

from bots.base import Rejected


def storable(value: str, where: str) -> str:
    """The text without NUL characters (databases refuse them); Rejected(400) when it is not valid Unicode."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise Rejected(400, "malformed", f"{where} is not valid Unicode") from None
    return value.replace("\x00", "")
