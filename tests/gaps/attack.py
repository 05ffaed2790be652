"""An attacker with every published table: recover suppressed cells by subtraction, chaining what it learns.

It knows the additive structure (a region is the sum of its group cells; the nation is the sum of its regions)
and the survey's logic: an unconditional group question is answered by everyone, so its cells sum exactly to the
total; a question asked only of returnees leaves the community members (the `returned` table's community
cell) as its remainder. Respondents without a region are unknown to it. Whatever it recovers becomes known and
is used again, until nothing more comes out.
"""

from __future__ import annotations

from surveys.definition import Definition

Cell = tuple  # (grouping, region, value, dimension, indicator, overall)


def recover(definition: Definition, published: dict[Cell, dict], truth: dict[Cell, dict],
            everyone_has_a_region: bool = False) -> dict[Cell, int]:
    """Suppressed cells whose n the attacker can compute, with the value it computes.

    With `everyone_has_a_region` the attacker also knows that the regions add up to the nation exactly.
    """
    known: dict[Cell, int] = {key: cell["n"] for key, cell in published.items() if not cell["suppressed"]}
    secret = {key for key, cell in published.items() if cell["suppressed"]}
    groups = {q.id: ([c.value for c in q.choices] or ["yes", "no"], q.when) for q in definition.questions if q.group}
    regions = [r.code for r in definition.region_question.regions]
    measures = {(key[3], key[4], key[5]) for key in truth}

    def value(key: Cell) -> int | None:
        if key in known:
            return known[key]
        if key not in published and key not in secret:
            return 0  # not published at all: nobody there
        return None

    equations: list[tuple[Cell, list[Cell], object]] = []
    for dimension, indicator, overall in measures:
        for place in [*regions, None]:
            total = (None, place, None, dimension, indicator, overall)
            for question_id, (values, when) in groups.items():
                parts = [(question_id, place, v, dimension, indicator, overall) for v in values]
                if when is None:
                    remainder = 0
                elif "returnee" in when:
                    remainder = ("returned", place, "community", dimension, indicator, overall)
                else:
                    continue
                equations.append((total, parts, remainder))
        for question_id, (values, _) in [(None, ([None], None)), *groups.items()]:
            for v in values:
                total = (question_id, None, v, dimension, indicator, overall)
                parts = [(question_id, place, v, dimension, indicator, overall) for place in regions]
                equations.append((total, parts, "no_region"))
    recovered: dict[Cell, int] = {}
    progress = True
    while progress:
        progress = False
        for total, parts, remainder in equations:
            if remainder == "no_region":
                if not everyone_has_a_region:
                    continue  # unknown to the attacker (see the docstring)
                remainder = 0
            rest = remainder if isinstance(remainder, int) else value(remainder)
            terms = [total, *parts]
            if remainder is not None and not isinstance(remainder, int):
                terms.append(remainder)
            unknown = [t for t in terms if value(t) is None]
            if len(unknown) != 1:
                continue
            missing = unknown[0]
            if missing == total:
                found = sum(value(p) for p in parts) + (rest if rest is not None else 0)
            elif missing == remainder:
                found = value(total) - sum(value(p) for p in parts)
            else:
                found = value(total) - sum(value(p) for p in parts if p != missing) - (rest or 0)
            known[missing] = found
            if missing in secret:
                recovered[missing] = found
            progress = True
    return recovered
