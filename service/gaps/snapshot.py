"""Releases of gap figures: computing, storing and serving what analysts may see.

A release publishes every table of a survey at once (all waves together and each wave) after disclosure control
across all of them and against what earlier releases showed (service.gaps.disclosure). It is stored as one
`GapSnapshot` row per table, the rows sharing `computed_at` (the release time, `generated_at` in the payload).

Releases happen at most once per the survey's `release_interval` (one day unless its YAML says otherwise), and only
when completed sessions changed: from the periodic job (`workers.gaps.refresh_all`), or when figures are asked for
and the release is due (so a bare machine without the scheduler still moves). The first request computes the first
release; a new survey version releases at once. Staff can release at once (`POST .../gaps/refresh`,
`?refresh=true`, `retorno gaps --refresh`), and so does erasure (`recompute`); whoever releases, a cell's figures
change only when its `n` has moved by `min_cell` or more, so a release right after one person completed, or was
erased, shows nothing about them.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, delete, select, text
from sqlalchemy.orm import Session

from service.db import aware
from service.gaps import aggregate, disclosure
from service.gaps.aggregate import OVERALL, Counts, Key
from service.gaps.disclosure import KEPT, NEW, RESPONDENTS, History, Shown, Table
from service.gaps.stats import newcombe, wilson
from service.models import GapSnapshot
from surveys.definition import Definition, Question

log = logging.getLogger(__name__)

KEEP = 10
RETURNEE, COMMUNITY = "returnee", "community"
COLUMNS = ("grouping", "region", "region_name", "group", "dimension", "indicator", "overall", "n", "gap_n",
           "gap_rate", "ci_low", "ci_high", "index_mean", "suppressed", "returnee_gap_rate", "community_gap_rate",
           "gap_difference", "difference_ci_low", "difference_ci_high", "pattern", "released_at")


def comparison_question(definition: Definition) -> Question | None:
    """The group question that tells returnees (`returnee`) from community members (`community`)."""
    candidates = [
        q for q in aggregate.group_questions(definition)
        if {RETURNEE, COMMUNITY} <= set(aggregate.group_values(q))
    ]
    return next((q for q in candidates if q.id == "returned"), candidates[0] if candidates else None)


def publish(tables: Mapping[Table, Counts], definition: Definition, released_at: datetime,
            history: History | None = None) -> dict[Table, tuple[dict[str, Any], dict[str, Any]]]:
    """(payload, basis) of each table: the publishable payload, every cell after disclosure control (see
    service.gaps.disclosure) following `history`, and what the next release must know but nobody may see."""
    history = history or History()
    release = disclosure.decide(tables, definition, history)
    regions = disclosure.regions_of(definition, tables.values())
    keys = sorted(disclosure.grid(definition, regions), key=_order)
    moment = released_at.isoformat()
    released_before = {table for table, _ in history.shown} | {table for table, _ in history.hidden}
    return {
        # all waves of a survey nobody completed yet, never released: nothing to show
        table: _payload(table, counts, [] if table is None and not counts.respondents and None not in released_before
                        else keys, release, history, definition, released_at, moment)
        for table, counts in tables.items()
    }


def _payload(table: Table, counts: Counts, keys: list[Key], release: disclosure.Release, history: History,
             definition: Definition, released_at: datetime, moment: str) -> tuple[dict[str, Any], dict[str, Any]]:
    region_names = _region_names(definition)
    shown: dict[Key, Shown] = {}
    held, hidden = [], []
    for key in [*keys, RESPONDENTS]:
        cell = (table, key)
        state = release.state(cell)
        if state == NEW:
            figures = counts.cells.get(key) if key != RESPONDENTS else None
            n = figures.n if figures else counts.respondents
            mean = figures.index_sum / figures.index_n if figures and figures.index_n else None
            shown[key] = Shown(n, figures.gap_n if figures else 0, mean, moment)
        elif state == KEPT:
            shown[key] = history.shown[cell]
        elif cell in history.shown:
            before = history.shown[cell]
            held.append([key.grouping, key.measure, key.region, key.value, before.n, before.gap_n,
                         before.index_mean, before.released_at])
        elif cell in release.history.hidden:
            hidden.append([key.grouping, key.measure, key.region, key.value, release.history.hidden[cell]])
    compare = comparison_question(definition)
    rows = []
    for key in keys:
        row = _cell(key, shown.get(key), definition, region_names)
        if key.grouping is None:
            row.update(_difference(key, shown, compare))
        rows.append([row.get(column) for column in COLUMNS])
    respondents = shown.get(RESPONDENTS)
    interval = definition.release_interval
    payload = {
        "survey_id": definition.id,
        "version": definition.version,
        "wave": table,
        "generated_at": moment,
        "min_cell": definition.min_cell,
        "respondents": respondents.n if respondents else 0 if not keys else None,
        "respondents_released_at": respondents.released_at if respondents else None,
        "release": {"interval_seconds": interval,
                    "next_release_after": (released_at + timedelta(seconds=interval)).isoformat()},
        "comparison": {"question": compare.id, "returnee": RETURNEE, "community": COMMUNITY} if compare else None,
        "columns": list(COLUMNS),
        "rows": rows,
    }
    # figures an earlier release showed and this one hides; hidden cells' sizes when they were hidden
    return payload, {"held": held, "hidden": hidden}


def cells(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """A payload's cells as dicts (stored as rows under `columns`, a third of the size)."""
    columns = payload["columns"]
    return [dict(zip(columns, row, strict=False)) for row in payload["rows"]]


def history_of(payload: dict[str, Any], basis: dict[str, Any] | None) -> tuple[dict[Key, Shown], dict[Key, int]]:
    """What one table's release showed (or held back after showing), and the cells it hid with their size when
    they were hidden (0 when not known), by cell: what the next release decides from."""
    moment = payload["generated_at"]
    basis = basis or {}
    shown: dict[Key, Shown] = {}
    hidden: dict[Key, int] = {}
    for cell in cells(payload):
        key = Key(cell["grouping"], _measure(cell), cell["region"], cell["group"])
        if cell["suppressed"] or cell["n"] is None:
            hidden[key] = 0
        else:
            shown[key] = Shown(cell["n"], cell["gap_n"], cell["index_mean"], cell.get("released_at") or moment)
    if payload.get("respondents"):
        shown[RESPONDENTS] = Shown(payload["respondents"], 0, None, payload.get("respondents_released_at") or moment)
    else:
        hidden[RESPONDENTS] = 0
    for grouping, measure, region, value, n, gap_n, index_mean, released_at in basis.get("held", ()):
        shown[Key(grouping, measure, region, value)] = Shown(n, gap_n, index_mean, released_at)
    for grouping, measure, region, value, n in basis.get("hidden", ()):
        hidden[Key(grouping, measure, region, value)] = n
    return shown, hidden


def _measure(cell: dict[str, Any]) -> str:
    if cell["indicator"]:
        return aggregate.indicator_measure(cell["indicator"])
    return OVERALL if cell["overall"] else aggregate.dimension_measure(cell["dimension"])


def _order(key: Key) -> tuple:
    return (key.grouping or "", key.region or "", key.value or "", key.measure)


def _region_names(definition: Definition) -> dict[str, str]:
    question = definition.region_question
    return {r.code: r.name for r in question.regions} if question else {}


def measure_fields(measure: str, definition: Definition) -> tuple[str | None, str | None]:
    """(dimension, indicator) of a measure."""
    if measure == OVERALL:
        return None, None
    kind, _, name = measure.partition(":")
    if kind == "d":
        return name, None
    return definition.question(name).dimension if definition.has_question(name) else None, name


def _cell(key: Key, shown: Shown | None, definition: Definition, region_names: dict[str, str]) -> dict[str, Any]:
    dimension, indicator = measure_fields(key.measure, definition)
    cell: dict[str, Any] = {
        "grouping": key.grouping,
        "region": key.region,
        "region_name": region_names.get(key.region) if key.region else None,
        "group": key.value,
        "dimension": dimension,
        "indicator": indicator,
        "overall": key.measure == OVERALL,
        "n": None, "gap_n": None, "gap_rate": None, "ci_low": None, "ci_high": None, "index_mean": None,
        "suppressed": shown is None,
        "released_at": None,
    }
    if shown is not None:
        low, high = wilson(shown.gap_n, shown.n)
        cell.update(n=shown.n, gap_n=shown.gap_n, gap_rate=shown.gap_n / shown.n, ci_low=low, ci_high=high,
                    index_mean=shown.index_mean, released_at=shown.released_at)
    return cell


def _difference(key: Key, shown: dict[Key, Shown], compare: Question | None) -> dict[str, Any]:
    """Returnees' gap rate minus community members' in the same place, from their published figures."""
    empty = {"returnee_gap_rate": None, "community_gap_rate": None, "gap_difference": None,
             "difference_ci_low": None, "difference_ci_high": None, "pattern": None}
    if compare is None:
        return empty
    r = shown.get(Key(compare.id, key.measure, key.region, RETURNEE))
    c = shown.get(Key(compare.id, key.measure, key.region, COMMUNITY))
    if r is None or c is None:
        return empty
    difference, low, high = newcombe(r.gap_n, r.n, c.gap_n, c.n)
    pattern = "returnees_behind" if low > 0 else "returnees_ahead" if high < 0 else "shared"
    return {"returnee_gap_rate": r.gap_n / r.n, "community_gap_rate": c.gap_n / c.n, "gap_difference": difference,
            "difference_ci_low": low, "difference_ci_high": high, "pattern": pattern}


# -- releasing, storing and serving --------------------------------------------------------------------------


def release(rt, definition: Definition, force: bool = False) -> dict[Table, GapSnapshot]:
    """A new release of every table of `definition`'s survey, unless another one made it unnecessary meanwhile.

    Releases of one survey never run side by side (an advisory lock on PostgreSQL, SQLite's write lock): each one
    decides against the one before it. Without `force`, a release that is no longer due (another process released
    while this one waited) returns that release instead.
    """
    started = time.perf_counter()
    with rt.sessions() as session, session.begin():
        connection = session.connection()
        _lock(connection, definition.id)
        latest = _latest(session, definition.id, None)
        if not force and latest is not None and not _due(rt, connection, latest, definition):
            return _release_rows(session, latest)
        history, known_tables = _history(session, definition.id)
        waves = aggregate.count_waves(connection, definition)
        tables: dict[Table, Counts] = {None: aggregate.total(waves.values()), **dict(sorted(waves.items()))}
        for table in sorted(t for t in known_tables if t is not None and t not in tables):
            tables[table] = Counts({}, 0, None)  # a wave emptied by erasure: its cells were shown before
        released_at = rt.now()
        published = publish(tables, definition, released_at, history)
        duration = round((time.perf_counter() - started) * 1000)
        rows = {}
        for table, (payload, basis) in published.items():
            counts = tables[table]
            rows[table] = GapSnapshot(
                survey_id=definition.id, version=definition.version, digest=definition.digest, wave=table,
                computed_at=released_at, duration_ms=duration, respondents=counts.respondents,
                latest_completion=counts.latest_completion, payload=payload, basis=basis,
            )
            session.add(rows[table])
        session.flush()
        for table in tables:
            old = session.scalars(
                select(GapSnapshot.id)
                .where(GapSnapshot.survey_id == definition.id, _wave_is(table))
                .order_by(GapSnapshot.computed_at.desc(), GapSnapshot.id.desc())
                .offset(KEEP)
            ).all()
            if old:
                session.execute(delete(GapSnapshot).where(GapSnapshot.id.in_(old)))
    everything = tables[None]
    log.info("gap release of %s: %d tables, %d respondents, %d cells in %d ms", definition.id, len(tables),
             everything.respondents, len(everything.cells), duration)
    return rows


def recompute(rt, survey_id: str) -> dict[Table, GapSnapshot]:
    """A release now, whatever the interval: after an erasure, or when staff ask. The per-cell rule still holds."""
    return release(rt, rt.catalog.current(survey_id), force=True)


def _lock(connection: Connection, survey_id: str) -> None:
    """One release of a survey at a time (SQLite's BEGIN IMMEDIATE already serializes writers)."""
    if connection.dialect.name == "postgresql":
        key = int.from_bytes(hashlib.sha256(f"gaps:{survey_id}".encode()).digest()[:8], "big", signed=True)
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


def _history(session: Session, survey_id: str) -> tuple[History, set[Table]]:
    """What the latest release of each table did, and which tables were released."""
    newest: dict[Table, int] = {}
    for snapshot_id, wave in session.execute(
        select(GapSnapshot.id, GapSnapshot.wave).where(GapSnapshot.survey_id == survey_id)
        .order_by(GapSnapshot.computed_at.desc(), GapSnapshot.id.desc())
    ):
        newest.setdefault(wave, snapshot_id)
    history = History()
    for row in session.scalars(select(GapSnapshot).where(GapSnapshot.id.in_(list(newest.values())))):
        shown, hidden = history_of(row.payload, row.basis)
        history.shown.update(((row.wave, key), figures) for key, figures in shown.items())
        history.hidden.update(((row.wave, key), n) for key, n in hidden.items())
    return history, set(newest)


def _release_rows(session: Session, latest: GapSnapshot) -> dict[Table, GapSnapshot]:
    rows = session.scalars(
        select(GapSnapshot).where(GapSnapshot.survey_id == latest.survey_id,
                                  GapSnapshot.computed_at == latest.computed_at)
        .order_by(GapSnapshot.id)
    ).all()
    return {row.wave: row for row in rows} | {None: latest}


def _wave_is(wave: Table):
    return GapSnapshot.wave.is_(None) if wave is None else GapSnapshot.wave == wave


def _latest(session: Session, survey_id: str, wave: Table) -> GapSnapshot | None:
    return session.scalars(
        select(GapSnapshot)
        .where(GapSnapshot.survey_id == survey_id, _wave_is(wave))
        .order_by(GapSnapshot.computed_at.desc(), GapSnapshot.id.desc())
        .limit(1)
    ).first()


def latest(rt, survey_id: str, wave: Table = None) -> GapSnapshot | None:
    with rt.sessions() as session:
        return _latest(session, survey_id, wave)


def stale(rt, snapshot: GapSnapshot | None, definition: Definition) -> bool:
    """Whether completed sessions (or the definition) changed since `snapshot`."""
    if snapshot is None or snapshot.digest != definition.digest:
        return True
    with rt.engine.connect() as connection:
        changed = _changed(connection, snapshot)
        connection.rollback()
    return changed


def _changed(connection: Connection, snapshot: GapSnapshot) -> bool:
    respondents, latest_completion = aggregate.fingerprint(connection, snapshot.survey_id, snapshot.wave)
    return (respondents, latest_completion) != (snapshot.respondents, aware(snapshot.latest_completion))


def _due(rt, connection: Connection, latest: GapSnapshot, definition: Definition) -> bool:
    if latest.digest != definition.digest:
        return True
    waited = rt.now() - aware(latest.computed_at) >= timedelta(seconds=definition.release_interval)
    return waited and _changed(connection, latest)


def due(rt, snapshot: GapSnapshot | None, definition: Definition) -> bool:
    """Whether a release should happen now: none yet, a new definition, or the interval passed and data changed."""
    if snapshot is None or snapshot.digest != definition.digest:
        return True
    if rt.now() - aware(snapshot.computed_at) < timedelta(seconds=definition.release_interval):
        return False
    return stale(rt, snapshot, definition)


def current(rt, definition: Definition, wave: Table = None, refresh: bool = False) -> GapSnapshot:
    """The release to serve now (see the module's docstring); `refresh` (staff) releases at once."""
    newest = latest(rt, definition.id)
    if refresh or due(rt, newest, definition):
        newest = release(rt, definition, force=refresh)[None]
    if wave is None:
        return newest
    with rt.sessions() as session:
        row = session.scalars(
            select(GapSnapshot).where(GapSnapshot.survey_id == definition.id, GapSnapshot.wave == wave,
                                      GapSnapshot.computed_at == newest.computed_at)
            .order_by(GapSnapshot.id.desc())
        ).first()
    return row if row is not None else _empty(newest, definition, wave)


def _empty(newest: GapSnapshot, definition: Definition, wave: int) -> GapSnapshot:
    """A wave without completed sessions: every cell as "fewer than min_cell", like any other small table."""
    payload, _ = publish({wave: Counts({}, 0, None)}, definition, aware(newest.computed_at))[wave]
    return GapSnapshot(survey_id=definition.id, version=definition.version, digest=definition.digest, wave=wave,
                       computed_at=newest.computed_at, duration_ms=0, respondents=0, latest_completion=None,
                       payload=payload)


