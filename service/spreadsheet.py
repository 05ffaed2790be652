"""CSV that a spreadsheet opens as data, never as formulas.

A cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage return is written with a leading `'`
(OWASP's advice against CSV injection): a respondent's free-text answer `=HYPERLINK(...)` reaches staff's
spreadsheet as text. Only text is neutralized: numbers (int, float, Decimal, never bool-like text) stay numbers,
so a negative figure such as a gap difference of -0.1250 is written as it is and a spreadsheet reads a number.
"""

from __future__ import annotations

from typing import Any

DANGEROUS = ("=", "+", "-", "@", "\t", "\r")


def inert(value: Any) -> Any:
    """The cell as a spreadsheet may safely read it."""
    if isinstance(value, str) and value.startswith(DANGEROUS):
        return "'" + value
    return value


def inert_row(values: list[Any]) -> list[Any]:
    return [inert(v) for v in values]
