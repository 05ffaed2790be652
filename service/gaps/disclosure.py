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
   cell is its *unknown*: all of it when suppressed (only its growth since, when it was shown before: an observer
   may have kept the earlier figures), its growth since the kept figures when kept, nothing when new. Wherever such
   a sum has exactly one unknown term, or unknown terms adding up to fewer than `min_cell` people, more of its terms
   are hidden (kept when they were shown before, else suppressed): preferably a part the previous release hid
   already (analysts lose nothing they had), else the part whose unknown would be smallest; the total only when no
   part can be. Hiding one term can make another sum need it, so sums are re-examined until none does.

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

from service.gaps.aggregate import Counts, Key, group_questions, group_values, measures
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
    """`total` = sum of `parts` (+ an unpublished remainder, unless `exact`); cells by number (see `Layout`)."""

    total: int
    parts: tuple[int, ...]
    exact: bool = False


class Layout:
    """Every cell of every table, numbered: a table's position times the number of keys, plus the key's position."""

    def __init__(self, tables: Iterable[Table], keys: list[Key]):
        self.tables = list(tables)
        self.keys = keys
        self.width = len(keys)
        self.key_at = {key: number for number, key in enumerate(keys)}
        self.table_at = {table: number for number, table in enumerate(self.tables)}
        self.cells: list[Cell] = [(table, key) for table in self.tables for key in keys]

    def number(self, cell: Cell) -> int | None:
        table, key = cell
        if table not in self.table_at or key not in self.key_at:
            return None
        return self.table_at[table] * self.width + self.key_at[key]


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


def relations(definition: Definition, layout: Layout, regions: list[str]) -> list[Relation]:
    """Every additive relation among the cells of the tables (see the module's docstring)."""
    groups = {q.id: group_values(q) for q in group_questions(definition)}
    at = layout.key_at
    within: list[tuple[int, tuple[int, ...]]] = []  # one table's relations, by key position
    for measure in measures(definition):
        for grouping, values in groups.items():
            for region in [*regions, None]:
                within.append((at[Key(None, measure, region, None)],
                               tuple(at[Key(grouping, measure, region, v)] for v in values)))
        for grouping, values in [(None, [None]), *groups.items()]:
            for value in values:
                within.append((at[Key(grouping, measure, None, value)],
                               tuple(at[Key(grouping, measure, region, value)] for region in regions)))
    found: list[Relation] = []
    for position in range(len(layout.tables)):
        offset = position * layout.width
        found.extend(Relation(offset + total, tuple(offset + p for p in parts)) for total, parts in within)
    waves = [layout.table_at[table] * layout.width for table in layout.tables if table is not None]
    if None in layout.table_at and waves:
        everything = layout.table_at[None] * layout.width
        found.extend(Relation(everything + k, tuple(w + k for w in waves), exact=True) for k in range(layout.width))
    return found


def decide(tables: Mapping[Table, Counts], definition: Definition, history: History | None = None) -> Release:
    """The state of every cell of `tables` (None: all waves; each wave) in a release following `history`."""
    history = history or History()
    regions = regions_of(definition, tables.values())
    layout = Layout(tables, [*grid(definition, regions), RESPONDENTS])
    solver = _Solver(layout, tables, history, relations(definition, layout, regions), definition.min_cell)
    solver.run()
    names = (NEW, KEPT, SUPPRESSED)
    states = dict(zip(layout.cells, (names[state] for state in solver.state), strict=True))
    primary = {layout.cells[number] for number, flag in enumerate(solver.primary) if flag}
    hidden = {}
    for number, state in enumerate(solver.state):
        if state == _SUPPRESSED and solver.n[number] > 0 and solver.before_n[number] < 0:
            cell = layout.cells[number]
            hidden[cell] = history.hidden.get(cell, solver.n[number])  # hidden again: its size when first hidden
    return Release(states=states, primary=primary, history=History(dict(history.shown), hidden))


def protect(counts: Counts, definition: Definition) -> Release:
    """One table (all waves) released for the first time: which cells to suppress."""
    return decide({None: counts}, definition)


_NEW, _KEPT, _SUPPRESSED = 0, 1, 2


class _Solver:
    """Rules 1 to 3 of the module's docstring, on every cell and relation at once, cells by number.

    Twins (same figures, same place, same table) form a class that is hidden or shown as one. A class's unknown is
    the smallest unknown of its members (an observer uses the twin that tells most), 0 while any member is new.
    Relations are re-examined from a work list whenever a class they contain is hidden.
    """

    def __init__(self, layout: Layout, tables: Mapping[Table, Counts], history: History, found: list[Relation],
                 min_cell: int):
        self.min_cell = min_cell
        self.relations = found
        size = len(layout.cells)
        self.n = [0] * size
        gap = [0] * size
        index = [0.0] * size
        respondents = layout.key_at[RESPONDENTS]
        for position, table in enumerate(layout.tables):
            offset = position * layout.width
            counts = tables[table]
            for key, figures in counts.cells.items():
                number = offset + layout.key_at[key]
                self.n[number], gap[number], index[number] = figures.n, figures.gap_n, figures.index_sum
            self.n[offset + respondents] = counts.respondents
        self.before_n = [-1] * size  # n of the figures last shown (-1: none)
        self.showable = bytearray(size)  # those figures may be shown again
        for cell, shown in history.shown.items():
            number = layout.number(cell)
            if number is not None:
                self.before_n[number] = shown.n
                self.showable[number] = shown.n >= min_cell
        self.basis: dict[int, int] = {}  # cells the previous release hid, never shown: their n when hidden
        self.hidden_before = bytearray(size)
        for cell, n in history.hidden.items():
            number = layout.number(cell)
            if number is not None:
                self.hidden_before[number] = 1
                self.basis[number] = n
        self.primary = bytearray(size)
        self.state = [self._initial(number) for number in range(size)]
        # twins
        buckets: dict[tuple, list[int]] = defaultdict(list)
        regions = [key.region for key in layout.keys]
        for number in range(size):
            if self.n[number] > 0 and number % layout.width != respondents:
                position, k = divmod(number, layout.width)
                buckets[(position, regions[k], self.n[number], gap[number], round(index[number], 6))].append(number)
        self.class_of = [-1] * size
        self.members: list[list[int]] = []
        twin_at: dict[tuple, int] = {}
        for place, members in buckets.items():
            twin_at[place] = self._add_class(members)
        for number in range(size):
            if self.class_of[number] < 0 and self.n[number] > 0:
                self._add_class([number])
        self.mass = [self._class_mass(c) for c in range(len(self.members))]
        # relations: by class, and their remainders
        self.by_class: list[list[int]] = [[] for _ in self.members]
        self.remainder_n: list[int] = []
        self.remainder_class: list[int] = []
        for r, relation in enumerate(found):
            for number in (relation.total, *relation.parts):
                c = self.class_of[number]
                if c >= 0:
                    self.by_class[c].append(r)
            twin = -1
            rest = 0
            if not relation.exact:
                rest = self.n[relation.total] - sum(self.n[p] for p in relation.parts)
                if rest >= min_cell:
                    position, k = divmod(relation.total, layout.width)
                    twin = twin_at.get((position, regions[k], rest,
                                        gap[relation.total] - sum(gap[p] for p in relation.parts),
                                        round(index[relation.total] - sum(index[p] for p in relation.parts), 6)), -1)
                    if twin >= 0:
                        self.by_class[twin].append(r)
            self.remainder_n.append(rest)
            self.remainder_class.append(twin)

    def _add_class(self, members: list[int]) -> int:
        c = len(self.members)
        self.members.append(members)
        for number in members:
            self.class_of[number] = c
        return c

    def _initial(self, number: int) -> int:
        now, before = self.n[number], self.before_n[number]
        if now < self.min_cell:
            if now > 0:
                self.primary[number] = 1
            return _SUPPRESSED
        if self.showable[number] and abs(now - before) < self.min_cell:
            return _KEPT
        if before < 0 and self.hidden_before[number] and abs(now - self.basis[number]) < self.min_cell:
            return _SUPPRESSED
        return _NEW

    def _unknown(self, number: int, state: int) -> int:
        """How many people an observer does not see of cell `number` in `state`."""
        now = self.n[number]
        if state == _NEW or now == 0:
            return 0
        before = self.before_n[number]
        if self.primary[number] or before < 0:
            return now
        return abs(now - before)

    def _hiding(self, number: int) -> int:
        return _KEPT if self.showable[number] else _SUPPRESSED

    def _class_mass(self, c: int) -> int:
        members = self.members[c]
        if any(self.state[number] == _NEW for number in members):
            return 0
        return min(self._unknown(number, self.state[number]) for number in members)

    def _would_hide(self, c: int) -> int:
        """The class's unknown if it were hidden now."""
        return min(self._unknown(number, self._hiding(number) if self.state[number] == _NEW else self.state[number])
                   for number in self.members[c])

    def run(self) -> None:
        for c, members in enumerate(self.members):
            # twins: one member hidden with something to hide hides them all
            if len(members) > 1 and any(self.state[m] == _NEW for m in members) \
                    and any(self.state[m] != _NEW and self._unknown(m, self.state[m]) > 0 for m in members):
                self._hide(c)
        queue: deque[int] = deque(range(len(self.relations)))
        queued = bytearray(b"\x01" * len(self.relations))
        while queue:
            r = queue.popleft()
            queued[r] = 0
            for c in self._examine(r):
                for other in self.by_class[c]:
                    if not queued[other]:
                        queued[other] = 1
                        queue.append(other)

    def _hide(self, c: int) -> None:
        for number in self.members[c]:
            if self.state[number] == _NEW:
                self.state[number] = self._hiding(number)
        self.mass[c] = self._class_mass(c)

    def _remainder_mass(self, r: int) -> int:
        rest = self.remainder_n[r]
        if rest <= 0:
            return 0
        if rest < self.min_cell:
            return rest
        twin = self.remainder_class[r]
        return self.mass[twin] if twin >= 0 else 0

    def _examine(self, r: int) -> list[int]:
        """Hide terms of relation `r` while exactly one is unknown or the unknown ones are too few people."""
        relation = self.relations[r]
        terms = (relation.total, *relation.parts)
        hidden: list[int] = []
        while True:
            count, mass, seen = 0, 0, set()
            for number in terms:
                c = self.class_of[number]
                if c >= 0 and self.mass[c] > 0:
                    count += 1
                    if c not in seen:
                        seen.add(c)
                        mass += self.mass[c]
            remainder = self._remainder_mass(r)
            if remainder > 0:
                count += 1
                if self.remainder_class[r] not in seen:
                    mass += remainder
            if count == 0 or (count > 1 and mass >= self.min_cell):
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
        for number in relation.parts:
            c = self.class_of[number]
            if c < 0 or self.mass[c] > 0:
                continue
            would = self._would_hide(c)
            if would <= 0:
                continue
            cost = (0 if all(self.hidden_before[m] for m in self.members[c]) else 1, would)
            if best is None or cost < best_cost:
                best, best_cost = c, cost
        if best is not None:
            return best
        c = self.class_of[relation.total]
        if c >= 0 and self.mass[c] == 0 and self._would_hide(c) > 0:
            return c
        return None
