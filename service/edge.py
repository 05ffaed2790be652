"""Validation at the edge: what a request may carry, checked before any of it reaches the database.

Each check is a regular expression or a comparison, so it costs next to nothing on the hot path. A value that fails
raises `BadInput`, which the app answers `400` with the usual JSON error; an id in a path that cannot exist (too big
for its column) is an unknown id, `404`.
"""

from __future__ import annotations

import re

from flask import request
from werkzeug.routing import BaseConverter, ValidationError

INT32_MAX = 2**31 - 1
"""The largest value of an `Integer` column (survey versions, waves)."""
INT64_MAX = 2**63 - 1
"""The largest value of a `BigInteger` column (ids, message numbers)."""

_DIGITS = re.compile(r"[0-9]{1,19}", re.ASCII)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
"""C0 and C1 control characters and DEL: never part of an id, a query value or a path."""


class BadInput(ValueError):
    """A request value the endpoint does not take; the message says which and what it should be."""


def whole(value: str | None, name: str, high: int = INT64_MAX, low: int = 0) -> int | None:
    """`value` as a whole number written in ASCII digits, from `low` to `high`; None when absent or empty."""
    if value is None or value == "":
        return None
    if _DIGITS.fullmatch(value):
        number = int(value)
        if low <= number <= high:
            return number
    raise BadInput(f"{name} must be a number from {low} to {high}, in digits")


def has_control(value: str) -> bool:
    """Whether `value` holds a control character (NUL, escape, DEL...)."""
    return _CONTROL.search(value) is not None


def refuse_control_characters() -> None:
    """`before_request` of the API and the dashboard: no control character in the path or the query."""
    if has_control(request.path):
        raise BadInput("the path holds a control character")
    for name, value in request.args.items(multi=True):
        if has_control(name) or has_control(value):
            raise BadInput(f"the query parameter {name!r} holds a control character")


class IdConverter(BaseConverter):
    """`<id:name>` in a route: a database id, ASCII digits within 64 bits; anything else matches no route (404)."""

    regex = r"[0-9]{1,19}"

    def to_python(self, value: str) -> int:
        number = int(value)
        if number > INT64_MAX:
            raise ValidationError()
        return number

    def to_url(self, value: int) -> str:
        return str(int(value))
