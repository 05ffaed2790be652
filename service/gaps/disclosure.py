"""Disclosure control: which cells may be published.

Primary suppression: a cell counting fewer than `min_cell` respondents (the survey's `min_cell`, default 10).

Complementary suppression: published figures add up. A region's cell is the sum of its group cells (plus the
respondents who did not answer the group question), and a national cell is the sum of its regions' cells (plus
respondents without a region). Wherever such a sum has exactly one unknown term, that term could be recovered by
subtraction, so a second one is suppressed too: the published part with the fewest respondents (the total only
when no part is left). The unknown terms of a sum must also add up to at least `min_cell` respondents, so that
two tiny suppressed cells cannot be pinned down by their sum either. Only these two rules are enforced; they are
applied until nothing changes (a suppression can make another sum need one).

The unpublished remainder of a sum (respondents without an answer to the group question, or without a region)
counts as unknown when it is itself small (1 .. min_cell - 1), or when its figures equal those of a suppressed
cell: a group question asked only of returnees has the community members as its remainder, and that
remainder must not give their suppressed cell away. Cells whose figures are identical (n, gap_n and the index
sum) at the same place are taken to be the same people, and are suppressed together.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from service.gaps.aggregate import ZERO, Counts, Figures, Key, group_questions, group_values
from surveys.definition import Definition


@dataclass(frozen=True)
class Relation:
    """`total` = sum of `parts` + an unpublished remainder."""

    total: Key
    parts: tuple[Key, ...]


@dataclass
class Decision:
    suppressed: set[Key]
    primary: set[Key]

    def published(self, key: Key) -> bool:
        return key not in self.suppressed


def relations(counts: Counts, definition: Definition) -> list[Relation]:
    """Every additive relation among the cells of `counts` (see the module's docstring)."""
    groups = {q.id: group_values(q) for q in group_questions(definition)}
    measures = sorted({key.measure for key in counts.cells})
    regions = sorted({key.region for key in counts.cells if key.region is not None})
    found: list[Relation] = []
    for measure in measures:
        for grouping, values in groups.items():
            for region in [*regions, None]:
                found.append(Relation(Key(None, measure, region, None),
                                      tuple(Key(grouping, measure, region, v) for v in values)))
        for grouping, values in [(None, [None]), *groups.items()]:
            for value in values:
                found.append(Relation(Key(grouping, measure, None, value),
                                      tuple(Key(grouping, measure, region, value) for region in regions)))
    return found


def protect(counts: Counts, definition: Definition) -> Decision:
    """Which cells to suppress so that no suppressed figure can be recovered from the published ones."""
    min_cell = definition.min_cell
    cells = counts.cells
    primary = {key for key, figures in cells.items() if figures.n < min_cell}
    suppressed = set(primary)
    found = relations(counts, definition)
    places = _places(cells)
    twins = [bucket for bucket in places.values() if len(bucket) > 1]
    # what does not change while suppressing: each relation's remainder
    remainders = [
        _figures(cells, relation.total) - sum((_figures(cells, key) for key in relation.parts), ZERO)
        for relation in found
    ]
    changed = True
    while changed:
        changed = False
        for bucket in twins:
            if suppressed.intersection(bucket) and not suppressed.issuperset(bucket):
                suppressed.update(bucket)
                changed = True
        for relation, remainder in zip(found, remainders, strict=True):
            if _complement(relation, remainder, cells, suppressed, places, min_cell):
                changed = True
    return Decision(suppressed=suppressed, primary=primary)


def _figures(cells: dict[Key, Figures], key: Key) -> Figures:
    return cells.get(key, ZERO)


def _signature(figures: Figures) -> tuple[int, int, float]:
    return figures.n, figures.gap_n, round(figures.index_sum, 6)


def _places(cells: dict[Key, Figures]) -> dict[tuple, set[Key]]:
    """Cells by place (region or national) and figures: a bucket of two or more holds twins."""
    buckets: dict[tuple, set[Key]] = defaultdict(set)
    for key, figures in cells.items():
        if figures.n > 0:
            buckets[(key.region, _signature(figures))].add(key)
    return buckets


def _remainder_unknown(
    relation: Relation, remainder: Figures, suppressed: set[Key], places: dict[tuple, set[Key]], min_cell: int
) -> bool:
    if remainder.n <= 0:
        return False
    if remainder.n < min_cell:
        return True
    same = places.get((relation.total.region, _signature(remainder)), ())
    return any(key in suppressed for key in same)


def _complement(
    relation: Relation, remainder: Figures, cells: dict[Key, Figures], suppressed: set[Key],
    places: dict[tuple, set[Key]], min_cell: int,
) -> bool:
    """Suppress more terms of `relation` while exactly one is unknown or the unknown ones are too few people."""
    unknown = [key for key in (relation.total, *relation.parts) if key in suppressed]
    remainder_unknown = _remainder_unknown(relation, remainder, suppressed, places, min_cell)
    count = len(unknown) + (1 if remainder_unknown else 0)
    if count == 0:
        return False
    mass = sum(_figures(cells, key).n for key in unknown) + (remainder.n if remainder_unknown else 0)
    changed = False
    while count == 1 or mass < min_cell:
        candidate = _cheapest(relation.parts, cells, suppressed) or (
            relation.total if relation.total not in suppressed and _figures(cells, relation.total).n > 0 else None
        )
        if candidate is None:
            break
        suppressed.add(candidate)
        count += 1
        mass += _figures(cells, candidate).n
        changed = True
    return changed


def _cheapest(parts: Iterable[Key], cells: dict[Key, Figures], suppressed: set[Key]) -> Key | None:
    """The published part with the fewest respondents (ties: the first in order)."""
    candidates = [key for key in parts if key not in suppressed and _figures(cells, key).n > 0]
    return min(candidates, key=lambda key: _figures(cells, key).n, default=None)
