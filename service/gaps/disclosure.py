"""Disclosure control: what a release may show of a survey's gap figures, across all its tables and over time.

A release publishes every table of a survey together: all waves and each wave, ungrouped and by every group
question, each region and the nation, for every indicator, dimension and overall, and the count of respondents.
Each cell of each table is, in this release, in one of three states:

- `NEW`: its figures as they are now;
- `KEPT`: the figures it showed before (`Shown`), unchanged;
- `SUPPRESSED`: nothing (every figure null), which analysts cannot tell from an empty cell.

Rules, in the order they are applied:

1. *Primary suppression.* A cell counting fewer than `min_cell` respondents (empty ones too) is suppressed.
2. *Release rule.* A cell shown before keeps those figures until its `n` has moved by at least `min_cell` from
   them: between two releases an observer only ever sees a cell change by `min_cell` people or more. Likewise a
   cell hidden by the previous release stays suppressed until its `n` has moved by `min_cell` from what it was when
   it was hidden, so that showing it does not tell what it hid (its earlier value stays uncertain by `min_cell`).
3. *Complementary protection.* Published figures add up: a region is the sum of its group cells (plus the
   respondents who did not answer the group question), the nation the sum of its regions (plus respondents without
   a region), and every cell of all waves the sum of the same cell in each wave. What an observer does not see of a
   cell is its *unknown*: all of it when suppressed (its growth since then when it was shown before, since the
   earlier figures may have been kept), its growth since the kept figures when kept, nothing when new. Wherever
   such a sum has exactly one unknown term, or unknown terms adding up to fewer than `min_cell` people, more of its
   terms are hidden (kept when they were shown before, else suppressed): preferably a part the previous release
   hid already (analysts lose nothing they had), else the part whose unknown would be smallest; the total only when
   no part can be. Hiding one term can make another sum need it, so sums are re-examined until
   none does.

The unpublished remainder of a sum counts as unknown when it is itself small (1 .. `min_cell` - 1), or when its
figures equal those of a hidden cell: a group question asked only of returnees has the community members as its
remainder, and that remainder must not give their cell away. Cells whose figures are identical (`n`, `gap_n` and
the index sum) at the same place of the same table are taken to be the same people and hidden together.

What this does not cover is written in docs/disclosure.md.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from service.gaps.aggregate import ZERO, Counts, Figures, Key, group_questions, group_values, measures
from surveys.definition import Definition

NEW, KEPT, SUPPRESSED = "new", "kept", "suppressed"
RESPONDENTS = Key(None, "#", None, None)  # a table's completed respondents: a cell of its own

Table = int | None  # a wave, or None for all waves together
Cell = tuple[Table, Key]


@dataclass(frozen=True, slots=True)
class Shown:
    """A cell's figures as a release published them (and may publish again, unchanged)."""

    n: int
    gap_n: int
    index_mean: float | None
    released_at: str


@dataclass
class History:
    """What the previous release of each table did, cell by cell (empty before the first release)."""

    shown: dict[Cell, Shown] = field(default_factory=dict)  # last figures shown: on show, or held back since
    hidden: dict[Cell, int] = field(default_factory=dict)  # cells it suppressed: their n when they were hidden


@dataclass(frozen=True, slots=True)
class Relation:
    """`total` = sum of `parts` (+ an unpublished remainder, unless `exact`)."""

    total: Cell
    parts: tuple[Cell, ...]
    exact: bool = False


@dataclass
class Release:
    """The state of every cell in one release (cells not listed are empty, hence suppressed), and what the next
    release must know of the suppressed ones (`history`)."""

    states: dict[Cell, str]
    primary: set[Cell]
    history: History

    def state(self, cell: Cell) -> str:
        return self.states.get(cell, SUPPRESSED)

    @property
    def suppressed(self) -> set[Cell]:
        return {cell for cell, state in self.states.items() if state == SUPPRESSED}

    @property
    def hidden(self) -> set[Cell]:
        """Cells that do not show their current figures (suppressed or kept)."""
        return {cell for cell, state in self.states.items() if state != NEW}


def grid(definition: Definition, regions: Iterable[str]) -> list[Key]:
    """Every cell a table of `definition` has, whether anyone is in it or not (RESPONDENTS aside)."""
    groups = [(q.id, group_values(q)) for q in group_questions(definition)]
    keys = []
    for measure in measures(definition):
        for place in [*regions, None]:
            keys.append(Key(None, measure, place, None))
            keys.extend(Key(grouping, measure, place, value) for grouping, values in groups for value in values)
    return keys


def regions_of(definition: Definition, tables: Iterable[Counts] = ()) -> list[str]:
    """The survey's region codes, and any other region its figures name, in order."""
    question = definition.region_question
    listed = [r.code for r in question.regions] if question else []
    seen = {key.region for counts in tables for key in counts.cells if key.region is not None}
    return listed + sorted(seen - set(listed))


def relations(definition: Definition, tables: Iterable[Table], regions: list[str]) -> list[Relation]:
    """Every additive relation among the cells of the tables (see the module's docstring)."""
    groups = {q.id: group_values(q) for q in group_questions(definition)}
    tables = list(tables)
    found: list[Relation] = []
    for table in tables:
        for measure in measures(definition):
            for grouping, values in groups.items():
                for region in [*regions, None]:
                    found.append(Relation((table, Key(None, measure, region, None)),
                                          tuple((table, Key(grouping, measure, region, v)) for v in values)))
            for grouping, values in [(None, [None]), *groups.items()]:
                for value in values:
                    found.append(Relation((table, Key(grouping, measure, None, value)),
                                          tuple((table, Key(grouping, measure, region, value)) for region in regions)))
    waves = [table for table in tables if table is not None]
    if None in tables and waves:
        for key in [*grid(definition, regions), RESPONDENTS]:
            found.append(Relation((None, key), tuple((wave, key) for wave in waves), exact=True))
    return found


def figures_of(tables: Mapping[Table, Counts]) -> dict[Cell, Figures]:
    """Every raw cell of the tables, with each table's respondents as the RESPONDENTS cell."""
    cells: dict[Cell, Figures] = {}
    for table, counts in tables.items():
        for key, figures in counts.cells.items():
            cells[(table, key)] = figures
        if counts.respondents:
            cells[(table, RESPONDENTS)] = Figures(counts.respondents, 0, 0.0, 0)
    return cells


def decide(tables: Mapping[Table, Counts], definition: Definition, history: History | None = None) -> Release:
    """The state of every cell of `tables` (None: all waves; each wave) in a release following `history`."""
    history = history or History()
    regions = regions_of(definition, tables.values())
    found = relations(definition, tables, regions)
    cells = figures_of(tables)
    solver = _Solver(cells, history, found, definition.min_cell)
    solver.run()
    hidden = {
        cell: history.hidden.get(cell, cells[cell].n)  # a cell hidden again keeps its size when first hidden
        for cell, state in solver.state.items()
        if state == SUPPRESSED and cell not in history.shown and cell in cells
    }
    return Release(states=solver.state, primary=solver.primary, history=History(dict(history.shown), hidden))


def protect(counts: Counts, definition: Definition) -> Release:
    """One table (all waves) released for the first time: which cells to suppress."""
    return decide({None: counts}, definition)


def _signature(figures: Figures) -> tuple[int, int, float]:
    return figures.n, figures.gap_n, round(figures.index_sum, 6)


class _Solver:
    """Rules 1 to 3 of the module's docstring, on every cell and relation at once.

    Twins (same figures, same place, same table) form a class that is hidden or shown as one. A class's unknown is
    the smallest unknown of its members (an observer uses the twin that tells most), 0 while any member is new.
    Relations are re-examined from a work list whenever a class they contain is hidden.
    """

    def __init__(self, cells: dict[Cell, Figures], history: History, found: list[Relation], min_cell: int):
        self.cells = cells
        self.previous = history.shown
        self.hidden_before = history.hidden
        self.relations = found
        self.min_cell = min_cell
        self.state: dict[Cell, str] = {}
        self.primary: set[Cell] = set()
        everything = set(cells) | set(self.previous) | {c for r in found for c in (r.total, *r.parts)}
        for cell in sorted(everything, key=_cell_order):
            self.state[cell] = self._initial(cell)
        # twins
        buckets: dict[tuple, list[Cell]] = defaultdict(list)
        for cell, figures in cells.items():
            if figures.n > 0 and cell[1] != RESPONDENTS:
                buckets[(cell[0], cell[1].region, _signature(figures))].append(cell)
        self.class_of: dict[Cell, int] = {}
        self.members: list[list[Cell]] = []
        self.twin_at: dict[tuple, int] = {}
        for place, members in buckets.items():
            self._add_class(sorted(members, key=_cell_order), place)
        for cell, figures in cells.items():
            if cell not in self.class_of and figures.n > 0:
                self._add_class([cell], None)
        self.mass = [self._class_mass(c) for c in range(len(self.members))]
        # relations
        self.by_class: list[list[int]] = [[] for _ in self.members]
        self.remainders: list[Figures] = []
        self.remainder_class: list[int | None] = []
        for number, relation in enumerate(found):
            for cell in (relation.total, *relation.parts):
                c = self.class_of.get(cell)
                if c is not None:
                    self.by_class[c].append(number)
            remainder = ZERO
            if not relation.exact:
                remainder = self._figures(relation.total) - sum((self._figures(p) for p in relation.parts), ZERO)
            self.remainders.append(remainder)
            twin = None
            if remainder.n >= min_cell:
                table, key = relation.total
                twin = self.twin_at.get((table, key.region, _signature(remainder)))
                if twin is not None:
                    self.by_class[twin].append(number)
            self.remainder_class.append(twin)

    def _add_class(self, members: list[Cell], place: tuple | None) -> None:
        number = len(self.members)
        self.members.append(members)
        for cell in members:
            self.class_of[cell] = number
        if place is not None:
            self.twin_at[place] = number

    def _figures(self, cell: Cell) -> Figures:
        return self.cells.get(cell, ZERO)

    def _initial(self, cell: Cell) -> str:
        now, before = self._figures(cell), self.previous.get(cell)
        if now.n < self.min_cell:
            if now.n > 0:
                self.primary.add(cell)
            return SUPPRESSED
        if before is not None and before.n >= self.min_cell and abs(now.n - before.n) < self.min_cell:
            return KEPT
        if before is None and cell in self.hidden_before and abs(now.n - self.hidden_before[cell]) < self.min_cell:
            return SUPPRESSED
        return NEW

    def _unknown(self, cell: Cell, state: str) -> int:
        """How many people an observer does not see of `cell` in `state`."""
        now = self._figures(cell)
        if state == NEW or now.n == 0:
            return 0
        before = self.previous.get(cell)
        if cell in self.primary or before is None:
            return now.n
        return abs(now.n - before.n)

    def _hiding(self, cell: Cell) -> str:
        before = self.previous.get(cell)
        return KEPT if before is not None and before.n >= self.min_cell else SUPPRESSED

    def _class_mass(self, c: int) -> int:
        states = [(cell, self.state[cell]) for cell in self.members[c]]
        if any(state == NEW for _, state in states):
            return 0
        return min(self._unknown(cell, state) for cell, state in states)

    def _would_hide(self, c: int) -> int:
        """The class's unknown if it were hidden now."""
        return min(self._unknown(cell, self._hiding(cell) if self.state[cell] == NEW else self.state[cell])
                   for cell in self.members[c])

    def run(self) -> None:
        queue: deque[int] = deque()
        queued = [False] * len(self.relations)
        for c, members in enumerate(self.members):
            # twins: one member hidden with something to hide hides them all
            if any(self.state[cell] != NEW and self._unknown(cell, self.state[cell]) > 0 for cell in members) \
                    and any(self.state[cell] == NEW for cell in members):
                self._hide(c)
        for number in range(len(self.relations)):
            queue.append(number)
            queued[number] = True
        while queue:
            number = queue.popleft()
            queued[number] = False
            for c in self._examine(number):
                for other in self.by_class[c]:
                    if not queued[other]:
                        queued[other] = True
                        queue.append(other)

    def _hide(self, c: int) -> None:
        for cell in self.members[c]:
            if self.state[cell] == NEW:
                self.state[cell] = self._hiding(cell)
        if hasattr(self, "mass"):
            self.mass[c] = self._class_mass(c)

    def _term_mass(self, cell: Cell) -> int:
        c = self.class_of.get(cell)
        return self.mass[c] if c is not None else 0

    def _remainder_mass(self, number: int) -> int:
        remainder = self.remainders[number]
        if self.relations[number].exact or remainder.n <= 0:
            return 0
        if remainder.n < self.min_cell:
            return remainder.n
        twin = self.remainder_class[number]
        return self.mass[twin] if twin is not None else 0

    def _examine(self, number: int) -> list[int]:
        """Hide terms of relation `number` while exactly one is unknown or the unknown ones are too few people."""
        relation = self.relations[number]
        hidden: list[int] = []
        while True:
            classes = {}
            for cell in (relation.total, *relation.parts):
                c = self.class_of.get(cell)
                if c is not None and self.mass[c] > 0:
                    classes[c] = self.mass[c]
            remainder = self._remainder_mass(number)
            terms = sum(1 for cell in (relation.total, *relation.parts) if self._term_mass(cell) > 0)
            count = terms + (1 if remainder > 0 else 0)
            if count == 0:
                return hidden
            mass = sum(classes.values()) + (remainder if self.remainder_class[number] not in classes else 0)
            if count > 1 and mass >= self.min_cell:
                return hidden
            c = self._candidate(relation)
            if c is None:
                return hidden
            self._hide(c)
            hidden.append(c)

    def _candidate(self, relation: Relation) -> int | None:
        """A part the previous release hid, else the part whose hiding adds the smallest unknown (ties: the first);
        the total when no part can be hidden."""
        best, best_cost = None, (0, 0)
        for cell in relation.parts:
            c = self.class_of.get(cell)
            if c is None or self.mass[c] > 0:
                continue
            would = self._would_hide(c)
            cost = (0 if all(m in self.hidden_before for m in self.members[c]) else 1, would)
            if would > 0 and (best is None or cost < best_cost):
                best, best_cost = c, cost
        if best is not None:
            return best
        c = self.class_of.get(relation.total)
        if c is not None and self.mass[c] == 0 and self._would_hide(c) > 0:
            return c
        return None


def _cell_order(cell: Cell) -> tuple:
    table, key = cell
    return (-1 if table is None else table, key.grouping or "", key.region or "", key.value or "", key.measure)
