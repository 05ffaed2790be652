"""Counting gaps in the database: one SQL statement turns completed sessions' answers into raw cell figures.

Driven by the survey definition: its indicators (questions with `dimension` and `gap`), its group questions
(`group: true`) and its dimension weights. Each respondent (a completed session) contributes to

- one *indicator* measure per indicator answered (`in_gap` set by the worker);
- one *dimension* measure per dimension with at least one indicator answered (in gap when any of them is);
- the *overall* measure when any indicator was answered (in gap when any indicator is), and

every measure carries the respondent's reintegration index: the weighted mean over dimensions of the share of
the dimension's answered indicators not in gap. Figures are grouped by wave, and within it by region and by each
group question's value (and nationally), in one pass: `GROUPING SETS` on PostgreSQL, one `GROUP BY` per set on
SQLite. All waves together are the sum of the waves (`total`): a session belongs to one wave.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Connection, text

from service.db import aware
from surveys.definition import Definition, Question

OVERALL = "*"


def indicator_measure(question_id: str) -> str:
    return f"i:{question_id}"


def dimension_measure(dimension: str) -> str:
    return f"d:{dimension}"


class Key(NamedTuple):
    """One raw cell: a measure by region (None: national) and by one group question's value (None: all)."""

    grouping: str | None
    measure: str
    region: str | None
    value: str | None


@dataclass(frozen=True, slots=True)
class Figures:
    n: int
    gap_n: int
    index_sum: float
    index_n: int

    def __sub__(self, other: Figures) -> Figures:
        return Figures(self.n - other.n, self.gap_n - other.gap_n, self.index_sum - other.index_sum,
                       self.index_n - other.index_n)

    def __add__(self, other: Figures) -> Figures:
        return Figures(self.n + other.n, self.gap_n + other.gap_n, self.index_sum + other.index_sum,
                       self.index_n + other.index_n)


ZERO = Figures(0, 0, 0.0, 0)


@dataclass
class Counts:
    """Raw (unsuppressed) figures straight from the database; never published as such."""

    cells: dict[Key, Figures]
    respondents: int
    latest_completion: datetime | None


def indicators(definition: Definition) -> list[Question]:
    return [q for q in definition.questions if q.is_indicator]


def group_questions(definition: Definition) -> list[Question]:
    return [q for q in definition.questions if q.group]


def measures(definition: Definition) -> list[str]:
    """Every measure of the survey, in the order figures are computed: indicators, dimensions, overall."""
    measured = indicators(definition)
    dimensions = sorted({q.dimension for q in measured if q.dimension})
    return [*(indicator_measure(q.id) for q in measured), *(dimension_measure(d) for d in dimensions), OVERALL]


NOT_TESTS = " AND {s}.contact_id NOT IN (SELECT id FROM contacts WHERE test)"
"""Test contacts (the console channel) never count in gap figures."""


def fingerprint(connection: Connection, survey_id: str, wave: int | None = None) -> tuple[int, datetime | None]:
    """How many sessions are completed and the latest completion: when it changes, figures are stale."""
    waves = fingerprints(connection, survey_id)
    if wave is not None:
        return waves.get(wave, (0, None))
    return sum(n for n, _ in waves.values()), max((t for _, t in waves.values() if t is not None), default=None)


def fingerprints(connection: Connection, survey_id: str) -> dict[int, tuple[int, datetime | None]]:
    """`fingerprint` of each wave that has a completed session."""
    rows = connection.execute(
        text(
            "SELECT wave, count(*), max(completed_at) FROM survey_sessions "
            "WHERE survey_id = :survey AND status = 'completed'" + NOT_TESTS.format(s="survey_sessions")
            + " GROUP BY wave"
        ),
        {"survey": survey_id},
    ).all()
    return {int(row[0]): (int(row[1]), _aware(row[2])) for row in rows}


def count(connection: Connection, definition: Definition, wave: int | None = None) -> Counts:
    """Every raw cell of `definition`'s survey, from its completed sessions (of one wave, or all)."""
    waves = count_waves(connection, definition)
    if wave is not None:
        return waves.get(wave, Counts({}, 0, None))
    return total(waves.values())


def total(tables: Iterable[Counts]) -> Counts:
    """Several waves' counts as one: every cell is the sum of the waves' cells (a session belongs to one wave)."""
    cells: dict[Key, Figures] = {}
    respondents, latest = 0, None
    for counts in tables:
        for key, figures in counts.cells.items():
            cells[key] = cells[key] + figures if key in cells else figures
        respondents += counts.respondents
        if counts.latest_completion is not None and (latest is None or counts.latest_completion > latest):
            latest = counts.latest_completion
    return Counts(cells, respondents, latest)


def count_waves(connection: Connection, definition: Definition) -> dict[int, Counts]:
    """Every raw cell of `definition`'s survey for each wave, from its completed sessions, in one statement."""
    waves = fingerprints(connection, definition.id)
    measured = indicators(definition)
    found = {wave: Counts({}, respondents, latest) for wave, (respondents, latest) in waves.items()}
    if not measured or not waves:
        return found
    groups = group_questions(definition)
    plan = _Plan(connection.dialect.name, definition, measured, groups)
    if connection.dialect.name == "postgresql":
        # one analytical pass over the survey's answers: hash joins and aggregates in memory always win, even
        # when statistics lag behind a bulk load (the planner would pick nested loops); JIT costs more than it saves
        for setting in ("work_mem = '64MB'", "jit = off", "enable_nestloop = off"):
            connection.execute(text(f"SET LOCAL {setting}"))
    k = len(groups)
    for row in connection.execute(text(plan.sql), plan.params):
        wave, region, codes, rolled = row[0], row[1], row[2 : 2 + k], row[2 + k]
        national, grouping = _decode(rolled, k)
        if not national and region is None:
            continue  # sessions without a region only count nationally
        value = None
        if grouping is not None:
            value = plan.value(grouping, codes[grouping])
            if value is None:
                continue  # respondents without this group's answer: the remainder, never published
        figures = row[3 + k :]
        width = plan.width
        cells = found.setdefault(int(wave), Counts({}, 0, None)).cells
        for position, measure in enumerate(plan.measures):
            n, gap_n, index_sum, *rest = figures[width * position : width * position + width]
            index_n = rest[0] if rest else n
            if not n:
                continue
            grouping_id = groups[grouping].id if grouping is not None else None
            key = Key(grouping_id, measure, None if national else region, value)
            cells[key] = Figures(int(n), int(gap_n or 0), float(index_sum or 0.0), int(index_n or 0))
    return found


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


def _aware(moment):
    """A time from the database, or its ISO text, with its zone."""
    return aware(datetime.fromisoformat(moment) if isinstance(moment, str) else moment)


def _mask(region: bool, grouping: int | None, k: int) -> int:
    """GROUPING(region, g0 .. g{k-1}) for a set: a bit is 1 where the column is rolled up (first = highest)."""
    bits = 0
    for position in range(k + 1):
        kept = region if position == 0 else grouping == position - 1
        if not kept:
            bits |= 1 << (k - position)
    return bits


def _decode(mask: int, k: int) -> tuple[bool, int | None]:
    """(national, index of the group question or None) from a GROUPING mask."""
    national = bool(mask >> k & 1)
    kept = [j for j in range(k) if not mask >> (k - 1 - j) & 1]
    return national, kept[0] if kept else None


def _sets(k: int) -> Iterator[tuple[bool, int | None]]:
    for region in (True, False):
        yield region, None
        for j in range(k):
            yield region, j


def group_values(question: Question) -> list[str]:
    """The values a group question can take, in order (yes_no without choices: yes, no)."""
    return [c.value for c in question.choices] or ["yes", "no"]


MASK_BITS = 60
PROFILE_LIMIT = 2**62


class _Plan:
    """The SQL, in three steps, and how to read its rows.

    1. `resp`: one row per completed session from one scan of its answers: the region; `p0`.. the answers to the
       group questions as one mixed-radix integer (0: not answered); `m0`.. a bit per indicator answered and
       `x0`.. a bit per indicator in gap.
    2. `fine`: per wave, region and profile, for every measure (each indicator, each dimension, overall): respondents,
       those in gap, the sum and count of their reintegration indices.
    3. Those sums, within each wave, by region and one group question, by region, by group value and nationally:
       `GROUPING SETS` on PostgreSQL, one `GROUP BY` per set on SQLite.
    """

    def __init__(self, dialect: str, definition: Definition, measured: list[Question], groups: list[Question]):
        self.params: dict[str, Any] = {"survey": definition.id}
        self.choices = [group_values(q) for q in groups]
        self.measures = measures(definition)
        layout = _Layout.of(self.choices)
        dimensions = sorted({q.dimension for q in measured if q.dimension})
        weights = [float(definition.weights.get(dimension, 1.0)) for dimension in dimensions]
        self.params.update({f"w{d}": weight for d, weight in enumerate(weights)})
        # with every weight positive, a respondent with any indicator has an index: no separate count is needed
        counted = any(weight <= 0 for weight in weights)
        self.width = 4 if counted else 3
        if dialect == "postgresql":
            lookups, join, profile_sums = self._postgresql(groups, measured, layout.profile_of, layout.place)
        else:
            lookups, join, profile_sums = self._sqlite(groups, measured, layout.profile_of, layout.place)
        members = [[i for i, q in enumerate(measured) if q.dimension == dimension] for dimension in dimensions]
        measure_columns = [*(f"y{i}" for i in range(len(measured))), *(f"z{d}" for d in range(len(dimensions))), "o"]
        profiles = [f"p{p}" for p in range(layout.profiles)]
        self.sql = _steps(
            lookups,
            resp=_respondents(join, profile_sums, _masks(len(measured))),
            per=["wave", "region", *profiles, *_indicators(len(measured)), *_dimension_counts(members)],
            scored=["wave", "region", *profiles, *(f"y{i}" for i in range(len(measured))), *_scores(len(dimensions))],
            fine=(["wave", "region", *profiles], _fine_sums(measure_columns, counted)),
            grouped=_group_values(layout),
        )
        totals = ", ".join(
            f"sum(n{c}), sum(g{c}), sum(s{c})" + (f", sum(c{c})" if counted else "")
            for c in range(len(measure_columns))
        )
        if dialect == "postgresql":
            self.sql += _grouping_sets(len(groups), totals)
        else:
            self.sql += _union_of_group_bys(len(groups), totals)

    def _postgresql(self, groups: list[Question], measured: list[Question], profile_of: list[int],
                    place: list[int]) -> tuple[str, str, list[str]]:
        """One lookup per question id: an indicator's bit, or a group question's values (code = position)."""
        rows = []
        for i, q in enumerate(measured):
            self.params[f"iq{i}"] = q.id
            rows.append(f"(CAST(:iq{i} AS TEXT), {i // MASK_BITS}, CAST({1 << (i % MASK_BITS)} AS BIGINT), "
                        "CAST(NULL AS INTEGER), CAST(0 AS BIGINT), CAST(NULL AS TEXT[]))")
        for j, q in enumerate(groups):
            self.params[f"gq{j}"], self.params[f"gv{j}"] = q.id, list(self.choices[j])
            rows.append(f"(CAST(:gq{j} AS TEXT), CAST(NULL AS INTEGER), CAST(0 AS BIGINT), {profile_of[j]}, "
                        f"CAST({place[j]} AS BIGINT), CAST(:gv{j} AS TEXT[]))")
        lookups = f"qs(question_id, part, bit, gpart, place, choices) AS (VALUES {', '.join(rows)})"
        columns = [
            "CAST(COALESCE(sum(qs.place * array_position(qs.choices, a.value #>> '{}'))"
            f" FILTER (WHERE qs.gpart = {p}), 0) AS BIGINT) AS p{p}"
            for p in sorted(set(profile_of))
        ]
        return lookups, "JOIN qs ON qs.question_id = a.question_id", columns

    def _sqlite(self, groups: list[Question], measured: list[Question], profile_of: list[int],
                place: list[int]) -> tuple[str, str, list[str]]:
        """Indicator bits by question id; group codes by (question id, value)."""
        bits, values = [], []
        for i, q in enumerate(measured):
            self.params[f"iq{i}"] = q.id
            bits.append(f"(CAST(:iq{i} AS TEXT), {i // MASK_BITS}, {1 << (i % MASK_BITS)})")
        for j, q in enumerate(groups):
            for c, value in enumerate(self.choices[j], 1):
                self.params[f"gq{j}_{c}"], self.params[f"gv{j}_{c}"] = q.id, value
                values.append(f"(CAST(:gq{j}_{c} AS TEXT), CAST(:gv{j}_{c} AS TEXT), {profile_of[j]}, {c * place[j]})")
        lookups = f"qs(question_id, part, bit) AS (VALUES {', '.join(bits)})"
        join = "LEFT JOIN qs ON qs.question_id = a.question_id"
        columns = []
        if values:
            lookups += f",\ngv(question_id, value, part, code) AS (VALUES {', '.join(values)})"
            join += "\n  LEFT JOIN gv ON gv.question_id = a.question_id AND gv.value = json_extract(a.value, '$')"
            columns = [f"COALESCE(sum(gv.code) FILTER (WHERE gv.part = {p}), 0) AS p{p}"
                       for p in sorted(set(profile_of))]
        return lookups, join, columns

    def value(self, grouping: int, code: Any) -> str | None:
        """A group question's value from its code (0 or unknown: not answered)."""
        if code is None or int(code) == 0:
            return None
        return self.choices[grouping][int(code) - 1]


# -- the plan's steps, each a small function of what it needs --------------------------------------------------


@dataclass(frozen=True)
class _Layout:
    """Group answers as mixed-radix numbers: question j's code (0: not answered, else 1 + the value's position)
    is digit `place[j]` (radix `radix_of[j]`) of profile column `profile_of[j]`; a column holds below PROFILE_LIMIT."""

    radix_of: list[int]
    profile_of: list[int]
    place: list[int]
    profiles: int

    @classmethod
    def of(cls, choices: list[list[str]]) -> _Layout:
        radix_of, profile_of, place = [], [], []
        column, base = 0, 1
        for values in choices:
            radix = len(values) + 1
            if base * radix > PROFILE_LIMIT:
                column, base = column + 1, 1
            profile_of.append(column)
            place.append(base)
            radix_of.append(radix)
            base *= radix
        return cls(radix_of, profile_of, place, column + 1 if choices else 0)


def _masks(indicators: int) -> list[str]:
    """Per respondent, `m0`.. a bit per indicator answered and `x0`.. a bit per indicator in gap."""
    masks = range((indicators + MASK_BITS - 1) // MASK_BITS)
    return [
        *(f"CAST(COALESCE(sum(qs.bit) FILTER (WHERE qs.part = {m} AND a.in_gap IS NOT NULL), 0) AS BIGINT) AS m{m}"
          for m in masks),
        *(f"CAST(COALESCE(sum(qs.bit) FILTER (WHERE qs.part = {m} AND a.in_gap), 0) AS BIGINT) AS x{m}"
          for m in masks),
    ]


def _respondents(join: str, profile_sums: list[str], masks: list[str]) -> str:
    """Step 1, `resp`: one row per completed session from one scan of its answers."""
    return f"""SELECT {', '.join(["s.wave", "s.region", *profile_sums, *masks])}
  FROM survey_sessions s
  JOIN answers a ON a.session_id = s.id
  {join}
  WHERE s.survey_id = :survey AND s.status = 'completed'{NOT_TESTS.format(s="s")}
  GROUP BY s.id, s.wave, s.region"""


def _has(i: int, prefix: str) -> str:
    """Whether indicator `i`'s bit is set in mask `prefix` (m: answered, x: in gap)."""
    return f"({prefix}{i // MASK_BITS} & {1 << (i % MASK_BITS)}) <> 0"


def _indicators(count: int) -> list[str]:
    """`y0`..: each indicator 1 (in gap), 0 (not) or NULL (not answered)."""
    return [f"CASE WHEN {_has(i, 'm')} THEN (CASE WHEN {_has(i, 'x')} THEN 1 ELSE 0 END) END AS y{i}"
            for i in range(count)]


def _dimension_counts(members: list[list[int]]) -> list[str]:
    """Per dimension `d`: `k{d}` its indicators answered, `kg{d}` those in gap."""
    columns = []
    for d, indicators in enumerate(members):
        columns.append(" + ".join(f"(CASE WHEN {_has(i, 'm')} THEN 1 ELSE 0 END)" for i in indicators) + f" AS k{d}")
        columns.append(" + ".join(f"(CASE WHEN {_has(i, 'x')} THEN 1 ELSE 0 END)" for i in indicators) + f" AS kg{d}")
    return columns


def _scores(dimensions: int) -> list[str]:
    """`z{d}` each dimension in gap or not (NULL: none of it answered), `o` overall, `idx` the reintegration index
    (the weighted mean over dimensions of the share of their answered indicators not in gap)."""
    ds = range(dimensions)
    shares = [f"(CASE WHEN k{d} > 0 THEN CAST(:w{d} AS FLOAT) * (k{d} - kg{d}) / k{d} ELSE 0 END)" for d in ds]
    weights = [f"(CASE WHEN k{d} > 0 THEN CAST(:w{d} AS FLOAT) ELSE 0 END)" for d in ds]
    return [
        *(f"CASE WHEN k{d} > 0 THEN (CASE WHEN kg{d} > 0 THEN 1 ELSE 0 END) END AS z{d}" for d in ds),
        "CASE WHEN " + " + ".join(f"k{d}" for d in ds) + " > 0 THEN (CASE WHEN "
        + " + ".join(f"kg{d}" for d in ds) + " > 0 THEN 1 ELSE 0 END) END AS o",
        f"({' + '.join(shares)}) / NULLIF({' + '.join(weights)}, 0) AS idx",
    ]


def _fine_sums(measure_columns: list[str], counted: bool) -> list[str]:
    """Step 2's sums per measure `c`: respondents `n`, in gap `g`, index sum `s` (and count `c` when counted)."""
    sums = []
    for c, name in enumerate(measure_columns):
        sums += [
            f"CAST(count({name}) AS INTEGER) AS n{c}",
            f"CAST(sum({name}) AS INTEGER) AS g{c}",
            f"sum(idx) FILTER (WHERE {name} IS NOT NULL) AS s{c}",
        ]
        if counted:
            sums.append(f"CAST(count(idx) FILTER (WHERE {name} IS NOT NULL) AS INTEGER) AS c{c}")
    return sums


def _group_values(layout: _Layout) -> list[str]:
    """`v{j}`: group question j's code, read back from its profile column."""
    return [f"(p{layout.profile_of[j]} / {layout.place[j]}) % {layout.radix_of[j]} AS v{j}"
            for j in range(len(layout.place))]


def _steps(lookups: str, resp: str, per: list[str], scored: list[str], fine: tuple[list[str], list[str]],
           grouped: list[str]) -> str:
    """The WITH clause: lookups, then resp -> per -> scored -> fine -> grouped."""
    keys, sums = fine
    return f"""WITH {lookups},
resp AS MATERIALIZED (
  {resp}
),
per AS MATERIALIZED (
  SELECT {', '.join(per)} FROM resp
),
scored AS MATERIALIZED (
  SELECT {', '.join(scored)} FROM per
),
fine AS MATERIALIZED (
  SELECT {', '.join([*keys, *sums])}
  FROM scored GROUP BY {', '.join(keys)}
),
grouped AS (
  SELECT {', '.join(["fine.*", *grouped])} FROM fine
)
"""


def _grouping_sets(k: int, totals: str) -> str:
    """Step 3 on PostgreSQL: every set in one GROUP BY GROUPING SETS."""
    kept = ["region", *(f"v{j}" for j in range(k))]
    sets = ", ".join(
        "(" + ", ".join(["wave", *(["region"] if region else []), *([f"v{g}"] if g is not None else [])]) + ")"
        for region, g in _sets(k)
    )
    return (f"SELECT wave, {', '.join(kept)}, GROUPING({', '.join(kept)}), {totals} FROM grouped "
            f"GROUP BY GROUPING SETS ({sets})")


def _union_of_group_bys(k: int, totals: str) -> str:
    """Step 3 on SQLite: one GROUP BY per set, with the mask GROUPING would give."""
    branches = []
    for region, g in _sets(k):
        shown = ["wave", "region" if region else "NULL", *((f"v{j}" if g == j else "NULL") for j in range(k))]
        by = ["wave", *(["region"] if region else []), *([f"v{g}"] if g is not None else [])]
        branches.append(f"SELECT {', '.join(shown)}, {_mask(region, g, k)}, {totals} FROM grouped "
                        f"GROUP BY {', '.join(by)}")
    return "\nUNION ALL\n".join(branches)
