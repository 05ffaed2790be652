"""The paths through a survey: which questions a respondent is asked, given the answers that `when` conditions read.

Only the answers a condition reads are varied (each choice, the numbers either side of a compared literal, no
answer for an optional question), so a survey's paths are few and found quickly. Respondents screened out by
`eligibility` are not counted: a path is what an eligible respondent can get.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from surveys.definition import Eligibility, Question

MAX_PATHS = 4096
_OTHER = "\x00other"
"""An answer equal to no literal a condition names."""


def paths(questions: Sequence[Question], eligibility: Eligibility | None = None) -> list[tuple[str, ...]] | None:
    """Every distinct sequence of question ids asked (in order), or None when there are more than MAX_PATHS."""
    read = {name for q in questions if q.condition is not None for name in q.condition.names}
    literals: dict[str, set[Any]] = {}
    for q in questions:
        if q.condition is not None:
            for name, literal in q.condition.comparisons:
                literals.setdefault(name, set()).add(literal)
    found: dict[tuple[str, ...], None] = {}
    budget = [MAX_PATHS * 8]

    def walk(start: int, answers: dict[str, Any], asked: tuple[str, ...]) -> bool:
        for i in range(start, len(questions)):
            q = questions[i]
            if q.condition is not None and not q.condition.evaluate(answers):
                continue
            asked = (*asked, q.id)
            if q.id not in read:
                continue
            for value in _candidates(q, literals.get(q.id, set()), eligibility):
                budget[0] -= 1
                if budget[0] < 0 or not walk(i + 1, {**answers, q.id: value}, asked):
                    return False
            return True
        found[asked] = None
        return len(found) <= MAX_PATHS

    return list(found) if walk(0, {}, ()) else None


def question_range(questions: Sequence[Question], eligibility: Eligibility | None = None) -> tuple[int, int]:
    """The fewest and most questions asked after consent (all conditional questions count when paths are too many)."""
    found = paths(questions, eligibility)
    if not found:
        asked = questions[1:]
        return sum(1 for q in asked if q.condition is None), len(asked)
    lengths = [len(p) - 1 for p in found]
    return min(lengths), max(lengths)


def _candidates(q: Question, literals: set[Any], eligibility: Eligibility | None) -> Iterator[Any]:
    """The answers that can lead to different paths after `q`."""
    screening = eligibility is not None and eligibility.question == q.id
    values = list(_values(q, literals | {eligibility.min_age} if screening else literals))
    if screening:
        values = [v for v in values if eligibility.admits(q, v)]
    elif not q.required:
        values.append(None)
    return iter(values)


def _values(q: Question, literals: set[Any]) -> Iterator[Any]:
    if q.type == "multi":
        everything = [c.value for c in q.choices]
        yield from ([value] for value in everything)
        yield everything
    elif q.choices:
        yield from (c.value for c in q.choices)
    elif q.type in ("integer", "decimal"):
        numbers = {n + step for n in literals if isinstance(n, int | float) and not isinstance(n, bool)
                   for step in (-1, 0, 1)}
        numbers |= {n for n in (q.min, q.max) if n is not None}
        low = q.min if q.min is not None else float("-inf")
        high = q.max if q.max is not None else float("inf")
        yield from sorted(n for n in numbers or {0} if low <= n <= high) or [low if q.min is not None else high]
    else:
        yield from sorted(str(v) for v in literals)
        yield _OTHER
