"""Values worked out once per survey object (a question, its choices, a definition), found by identity.

Definitions and their parts are frozen and live as long as the process, but they can hold dicts, so they are found
by `id()`. An entry keeps its objects alive, so their ids cannot be reused by other objects while it exists.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any, Generic, TypeVar

V = TypeVar("V")


class IdentityMemo(Generic[V]):
    """At most `limit` values, each for some objects (by identity) and a hashable key; emptied when full."""

    def __init__(self, limit: int):
        self._limit = limit
        self._entries: dict[tuple, tuple[tuple[Any, ...], V]] = {}

    def get(self, owners: tuple[Any, ...], key: Hashable = None) -> V | None:
        """The value remembered for these very objects and this key, or None."""
        entry = self._entries.get((*map(id, owners), key))
        if entry is None or any(kept is not owner for kept, owner in zip(entry[0], owners, strict=True)):
            return None
        return entry[1]

    def put(self, owners: tuple[Any, ...], key: Hashable, value: V) -> V:
        """Remember `value` for these objects and this key; returns it."""
        if len(self._entries) >= self._limit:
            self._entries.clear()
        self._entries[(*map(id, owners), key)] = (owners, value)
        return value

    def clear(self) -> None:
        """Forget every value (a benchmark measuring work never seen before)."""
        self._entries.clear()
