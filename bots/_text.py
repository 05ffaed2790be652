"""Texts from providers, made safe to store."""

from __future__ import annotations

import re

from bots.base import Rejected

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
"""Control characters but tab and line breaks: databases refuse NUL, and none of them is something a person wrote."""


def storable(value: str, where: str) -> str:
    """The text without control characters (tab and line breaks kept); Rejected(400) when it is not valid Unicode."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise Rejected(400, "malformed", f"{where} is not valid Unicode") from None
    return _CONTROL.sub("", value)
