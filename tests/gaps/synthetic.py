"""Synthetic respondents with known true gaps, bulk-inserted, and an independent computation of every figure.

The population answers the bundled survey (or a copy of it under another id and weights). Each indicator's
chance of being in gap is known per region and per returnee/community member, so tests can check both that
published figures equal a plain-Python recount of the rows and that they estimate the truth.
Rows go in with COPY (PostgreSQL) or executemany (SQLite), never through webhooks.
"""

from __future__ import annotations

import json
import math
import random
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from surveys.definition import Definition, Question

Z = 1.959963984540054
START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@dataclass
class Person:
    number: int
    survey_id: str
    status: str
    region: str | None
    answers: dict[str, Any]
    in_gap: dict[str, bool | None] = field(default_factory=dict)
    skipped: set[str] = field(default_factory=set)
    truth: dict[str, float] = field(default_factory=dict)
    wave: int = 1


def gap_values(q: Question) -> list[Any]:
    return list(q.gap or ())


def non_gap_values(q: Question) -> list[Any]:
    values = [c.value for c in q.choices] or ["yes", "no"]
    return [v for v in values if v not in (q.gap or ())]


def true_rate(q: Question, region: str, returnee: bool, behind: set[str]) -> float:
    """The known chance that this person's answer to `q` is a gap."""
    base = 0.15 + 0.5 * (int(region) % 7) / 7 + 0.03 * (len(q.id) % 5)
    if returnee and region in behind:
        base += 0.25
    return min(0.95, base)


def population(definition: Definition, people: int, seed: int = 7, region_sizes: dict[str, int] | None = None,
               behind: set[str] | None = None) -> list[Person]:
    """`people` completed respondents (plus a few that must not count), regions sized as asked or skewed."""
    rng = random.Random(seed)
    regions = [r.code for r in definition.region_question.regions]
    behind = behind if behind is not None else {"14", "16", "32"}
    fixed = dict(region_sizes or {})
    remaining = people - sum(fixed.values())
    weights = {code: 1 + (int(code) * 7919 % 13) for code in regions if code not in fixed}
    total_weight = sum(weights.values())
    sizes = {code: remaining * w // total_weight for code, w in weights.items()}
    sizes[next(iter(weights))] += remaining - sum(sizes.values())
    sizes.update(fixed)
    everyone: list[Person] = []
    number = 0
    for region in regions:
        for _ in range(sizes.get(region, 0)):
            number += 1
            everyone.append(_person(definition, number, region, rng, behind))
    # a completed respondent without a region counts nationally only
    for _ in range(3):
        number += 1
        person = _person(definition, number, regions[0], rng, behind)
        person.region = None
        person.answers.pop(definition.region_question.id)
        everyone.append(person)
    # not completed, or another survey: never counted
    for status in ("in_progress", "opted_out", "expired"):
        number += 1
        person = _person(definition, number, regions[1], rng, behind)
        person.status = status
        everyone.append(person)
    number += 1
    other = _person(definition, number, regions[1], rng, behind)
    other.survey_id = "another-survey"
    everyone.append(other)
    return everyone


def crowd(definition: Definition, plan: list[tuple[str, bool, int]], seed: int = 1, wave: int = 1) -> list[Person]:
    """Exactly the completed respondents asked for: (region, returnee?, how many); nobody skips an indicator."""
    rng = random.Random(seed)
    people = []
    for region, returnee, count in plan:
        for _ in range(count):
            people.append(_person(definition, len(people) + 1, region, rng, set(), returnee=returnee, skip_rate=0.0))
            people[-1].wave = wave
    return people


def _person(definition: Definition, number: int, region: str, rng: random.Random, behind: set[str],
            returnee: bool | None = None, skip_rate: float = 0.03) -> Person:
    person = Person(number, definition.id, "completed", region, {"consent": "yes"})
    returnee = rng.random() < 0.6 if returnee is None else returnee
    for q in definition.questions[1:]:
        if q.when and "returnee" in q.when and not returnee:
            continue
        if q.type == "region":
            person.answers[q.id] = region
        elif q.id == "returned":
            person.answers[q.id] = "returnee" if returnee else "community"
        elif q.is_indicator:
            if rng.random() < skip_rate:  # skipped: answered nothing
                person.skipped.add(q.id)
                person.answers[q.id] = None
                person.in_gap[q.id] = None
                continue
            p = true_rate(q, region, returnee, behind)
            person.truth[q.id] = p
            in_gap = rng.random() < p
            person.answers[q.id] = rng.choice(_options(q)[0 if in_gap else 1])
            person.in_gap[q.id] = in_gap
        elif q.type == "multi":
            person.answers[q.id] = sorted(rng.sample([c.value for c in q.choices if not c.exclusive], 2))
        else:
            rule = definition.eligibility
            values = [v for v in _options(q)[2] if rule is None or rule.question != q.id or rule.admits(q, v)]
            person.answers[q.id] = rng.choice(values)
    return person


_cache: dict[int, tuple[Question, tuple[list, list, list]]] = {}


def _options(q: Question) -> tuple[list, list, list]:
    """A question's gap values, other values and all values (cached: 400,000 answers ask). The cache holds the
    question too: an id() is reused once its object is gone, and another question must not get its values."""
    cached = _cache.get(id(q))
    if cached is None or cached[0] is not q:
        cached = _cache[id(q)] = (q, (gap_values(q), non_gap_values(q), [c.value for c in q.choices] or ["yes", "no"]))
    return cached[1]


# -- bulk insert --------------------------------------------------------------------------------------------


def insert(engine: Engine, definition: Definition, people: list[Person], first_id: int = 1) -> None:
    """Contacts, sessions and answers for `people`, in bulk: COPY on PostgreSQL, executemany on SQLite."""
    contacts, sessions, answers = [], [], []
    dumped: dict[Any, str | None] = {}
    for offset, person in enumerate(people):
        i = first_id + offset
        done = START + timedelta(seconds=i)
        contacts.append((i, f"syn{i:012d}", "sms", f"{i:064x}", "not-a-real-address", "[]", False, False, START, START))
        sessions.append((i, i, person.survey_id, definition.version, person.wave, person.status, "es", person.region,
                         "{}", START, done if person.status == "completed" else None, done, 0, done))
        for question_id, value in person.answers.items():
            key = tuple(value) if isinstance(value, list) else value
            if key not in dumped:
                dumped[key] = json.dumps(value) if value is not None else None
            answers.append((i, question_id, dumped[key], question_id in person.skipped, person.in_gap.get(question_id)))
    tables = [
        ("contacts", "id, public_id, channel, address_hash, address_enc, tags, opted_out, unreachable, created_at, "
                     "updated_at", contacts),
        ("survey_sessions", "id, contact_id, survey_id, version, wave, status, language, region, state, started_at, "
                            "completed_at, last_activity_at, reminders_sent, updated_at", sessions),
    ]
    raw = engine.raw_connection()
    try:
        if engine.dialect.name == "postgresql":
            with raw.driver_connection.cursor() as cursor:
                # test data is consistent by construction: skip the per-row foreign key triggers while loading
                cursor.execute("SET LOCAL session_replication_role = replica")
                for table, columns, rows in tables:
                    with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                        copy.write("".join("\t".join(map(_copy_text, row)) + "\n" for row in rows))
                flag = {True: "t", False: "f", None: "\\N"}
                started = START.isoformat()
                columns = "session_id, question_id, value, skipped, in_gap, answered_at"
                with cursor.copy(f"COPY answers ({columns}) FROM STDIN") as copy:
                    copy.write("".join(
                        f"{i}\t{question_id}\t{value if value is not None else chr(92) + 'N'}\t{flag[skipped]}\t"
                        f"{flag[gap]}\t{started}\n"
                        for i, question_id, value, skipped, gap in answers
                    ))
        else:
            cursor = raw.cursor()
            cursor.execute("BEGIN")  # the engine's connections autocommit: one transaction, not one per row
            tables.append(("answers", "session_id, question_id, value, skipped, in_gap, answered_at",
                           [(*row, START) for row in answers]))
            for table, columns, rows in tables:
                marks = ", ".join("?" for _ in columns.split(","))
                cursor.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})",
                                   [tuple(_sqlite(v) for v in row) for row in rows])
            cursor.execute("COMMIT")
        raw.commit()
    finally:
        raw.close()


def _copy_text(value: Any) -> str:
    """A value in COPY's text format (the values here need no escaping beyond NULL and booleans)."""
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _sqlite(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.replace(tzinfo=None).isoformat(sep=" ")
    return value


# -- the independent computation ----------------------------------------------------------------------------


def wilson(k: int, n: int) -> tuple[float, float]:
    p = k / n
    centre = (p + Z * Z / (2 * n)) / (1 + Z * Z / n)
    half = Z / (1 + Z * Z / n) * math.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def expected_cells(definition: Definition, people: list[Person]) -> dict[tuple, dict[str, Any]]:
    """(grouping, region, group value, dimension, indicator, overall) -> n, gap_n, index_sum, index_n: recounted.

    First per place (each region and the nation) and full profile (every group question's answer), then each
    profile adds into the ungrouped cell and into one cell per group question it answered.
    """
    indicators = [q for q in definition.questions if q.dimension and q.gap is not None]
    groups = [q for q in definition.questions if q.group]
    allowed = [set(c.value for c in q.choices) or {"yes", "no"} for q in groups]
    regions = {r.code for r in definition.region_question.regions}
    fine: dict[tuple, list] = defaultdict(lambda: [0, 0, 0.0, 0])
    for person in people:
        if person.survey_id != definition.id or person.status != "completed":
            continue
        measures: list[tuple[tuple, bool]] = []  # ((dimension, indicator, overall), in gap)
        per_dimension: dict[str, list[bool]] = defaultdict(list)
        for q in indicators:
            gap = person.in_gap.get(q.id)
            if gap is None:
                continue
            measures.append(((q.dimension, q.id, False), gap))
            per_dimension[q.dimension].append(gap)
        if not per_dimension:
            continue
        for dimension, gaps in per_dimension.items():
            measures.append(((dimension, None, False), any(gaps)))
        measures.append(((None, None, True), any(any(g) for g in per_dimension.values())))
        weight = sum(definition.weights.get(d, 1.0) for d in per_dimension)
        shares = sum(definition.weights.get(d, 1.0) * gaps.count(False) / len(gaps)
                     for d, gaps in per_dimension.items())
        index = shares / weight if weight else None
        profile = tuple(
            person.answers.get(q.id) if person.answers.get(q.id) in ok else None
            for q, ok in zip(groups, allowed, strict=True)
        )
        for place in [None] + ([person.region] if person.region in regions else []):
            for measure, gap in measures:
                cell = fine[(place, profile, measure)]
                cell[0] += 1
                cell[1] += gap
                if index is not None:
                    cell[2] += index
                    cell[3] += 1
    cells: dict[tuple, dict[str, Any]] = defaultdict(lambda: {"n": 0, "gap_n": 0, "index_sum": 0.0, "index_n": 0})
    for (place, profile, measure), (n, gap_n, index_sum, index_n) in fine.items():
        targets = [(None, None)] + [(q.id, v) for q, v in zip(groups, profile, strict=True) if v is not None]
        for grouping, value in targets:
            cell = cells[(grouping, place, value, *measure)]
            cell["n"] += n
            cell["gap_n"] += gap_n
            cell["index_sum"] += index_sum
            cell["index_n"] += index_n
    return dict(cells)


def published_cells(responses: dict[str | None, dict[str, Any]]) -> dict[tuple, dict[str, Any]]:
    """The API's answers (grouping -> JSON) keyed like expected_cells."""
    found = {}
    for grouping, body in responses.items():
        for kind in ("cells", "overall", "national"):
            for cell in body[kind]:
                overall = cell.get("overall", kind == "overall")
                key = (grouping, cell["region"], cell["group"], cell["dimension"], cell["indicator"], overall)
                assert key not in found, f"cell published twice: {key}"
                found[key] = cell
    return found


def assert_every_cell(published: dict[tuple, dict[str, Any]], expected: dict[tuple, dict[str, Any]]) -> None:
    """Every cell somebody is in is published, and every other one (nobody there) looks like a suppressed one."""
    missing = set(expected) - set(published)
    assert not missing, f"cells missing: {sorted(missing, key=str)[:5]}"
    for key in set(published) - set(expected):
        cell = published[key]
        assert cell["suppressed"] and cell["n"] is None and cell["gap_rate"] is None, key

