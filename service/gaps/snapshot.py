"""Computing, storing and serving gap snapshots.

A snapshot is what may be published about one survey (one wave, or all waves) at one time: every cell after
disclosure control, suppressed ones nulled. Workers compute one every minute for each survey whose completed
sessions changed (`workers.gaps.refresh_all`), and on demand (`workers.gaps.refresh`, `retorno gaps --refresh`).

Serving (`current`): the latest snapshot, unless there is none, the survey's definition changed, or sessions
completed since and the snapshot is older than `STALE_AFTER`: then it is computed in the request (about a second
for a million answers on PostgreSQL). So figures are at most `STALE_AFTER` old while the scheduler is down, and
a snapshot is never recomputed for nothing.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, select

from service.gaps import aggregate, disclosure
from service.gaps.aggregate import OVERALL, Counts, Figures, Key
from service.gaps.stats import newcombe, wilson
from service.models import GapSnapshot
from surveys.definition import Definition, Question

log = logging.getLogger(__name__)

STALE_AFTER = timedelta(seconds=120)
KEEP = 10
RETURNEE, COMMUNITY = "returnee", "community"
COLUMNS = ("grouping", "region", "region_name", "group", "dimension", "indicator", "overall", "n", "gap_n",
           "gap_rate", "ci_low", "ci_high", "index_mean", "suppressed", "returnee_gap_rate", "community_gap_rate",
           "gap_difference", "difference_ci_low", "difference_ci_high", "pattern")


def comparison_question(definition: Definition) -> Question | None:
    """The group question that tells returnees (`returnee`) from community members (`community`)."""
    candidates = [
        q for q in aggregate.group_questions(definition)
        if {RETURNEE, COMMUNITY} <= set(aggregate.group_values(q))
    ]
    return next((q for q in candidates if q.id == "returned"), candidates[0] if candidates else None)


def publish(counts: Counts, definition: Definition, computed_at: datetime, wave: int | None = None) -> dict[str, Any]:
    """The publishable payload: every cell after disclosure control (see service.gaps.disclosure)."""
    decision = disclosure.protect(counts, definition)
    region_names = _region_names(definition)
    compare = comparison_question(definition)
    rows = []
    for key in sorted(counts.cells, key=_order):
        cell = _cell(key, counts.cells[key], key in decision.suppressed, definition, region_names)
        if key.grouping is None:
            cell.update(_difference(key, counts, decision, compare))
        rows.append([cell.get(column) for column in COLUMNS])
    return {
        "survey_id": definition.id,
        "version": definition.version,
        "wave": wave,
        "generated_at": computed_at.isoformat(),
        "min_cell": definition.min_cell,
        "respondents": counts.respondents,
        "comparison": {"question": compare.id, "returnee": RETURNEE, "community": COMMUNITY} if compare else None,
        "columns": list(COLUMNS),
        "rows": rows,
    }


def cells(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """A payload's cells as dicts (stored as rows under `columns`, a third of the size)."""
    columns = payload["columns"]
    return [dict(zip(columns, row, strict=True)) for row in payload["rows"]]


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


def _cell(key: Key, figures: Figures, suppressed: bool, definition: Definition,
          region_names: dict[str, str]) -> dict[str, Any]:
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
        "suppressed": suppressed,
    }
    if not suppressed:
        low, high = wilson(figures.gap_n, figures.n)
        cell.update(
            n=figures.n,
            gap_n=figures.gap_n,
            gap_rate=figures.gap_n / figures.n,
            ci_low=low,
            ci_high=high,
            index_mean=figures.index_sum / figures.index_n if figures.index_n else None,
        )
    return cell


def _difference(key: Key, counts: Counts, decision: disclosure.Decision, compare: Question | None) -> dict[str, Any]:
    """Returnees' gap rate minus community members' in the same place, when both cells are published."""
    empty = {"returnee_gap_rate": None, "community_gap_rate": None, "gap_difference": None,
             "difference_ci_low": None, "difference_ci_high": None, "pattern": None}
    if compare is None:
        return empty
    returnees = Key(compare.id, key.measure, key.region, RETURNEE)
    community = Key(compare.id, key.measure, key.region, COMMUNITY)
    if any(k not in counts.cells or k in decision.suppressed for k in (returnees, community)):
        return empty
    r, c = counts.cells[returnees], counts.cells[community]
    difference, low, high = newcombe(r.gap_n, r.n, c.gap_n, c.n)
    pattern = "returnees_behind" if low > 0 else "returnees_ahead" if high < 0 else "shared"
    return {"returnee_gap_rate": r.gap_n / r.n, "community_gap_rate": c.gap_n / c.n, "gap_difference": difference,
            "difference_ci_low": low, "difference_ci_high": high, "pattern": pattern}


# -- storing and serving ------------------------------------------------------------------------------------


def compute(rt, definition: Definition, wave: int | None = None) -> GapSnapshot:
    """Aggregate, protect and store a new snapshot of `definition`'s survey."""
    started = time.perf_counter()
    with rt.engine.connect() as connection:
        counts = aggregate.count(connection, definition, wave)
        connection.rollback()
    computed_at = rt.now()
    payload = publish(counts, definition, computed_at, wave)
    row = GapSnapshot(
        survey_id=definition.id,
        version=definition.version,
        digest=definition.digest,
        wave=wave,
        computed_at=computed_at,
        duration_ms=round((time.perf_counter() - started) * 1000),
        respondents=counts.respondents,
        latest_completion=counts.latest_completion,
        payload=payload,
    )
    with rt.sessions() as session, session.begin():
        session.add(row)
        session.flush()
        old = session.scalars(
            select(GapSnapshot.id)
            .where(GapSnapshot.survey_id == definition.id, _wave_is(wave))
            .order_by(GapSnapshot.computed_at.desc(), GapSnapshot.id.desc())
            .offset(KEEP)
        ).all()
        if old:
            session.execute(delete(GapSnapshot).where(GapSnapshot.id.in_(old)))
    log.info("gap snapshot of %s%s: %d respondents, %d cells in %d ms", definition.id,
             f" wave {wave}" if wave is not None else "", counts.respondents, len(counts.cells), row.duration_ms)
    return row


def _wave_is(wave: int | None):
    return GapSnapshot.wave.is_(None) if wave is None else GapSnapshot.wave == wave


def latest(rt, survey_id: str, wave: int | None = None) -> GapSnapshot | None:
    with rt.sessions() as session:
        return session.scalars(
            select(GapSnapshot)
            .where(GapSnapshot.survey_id == survey_id, _wave_is(wave))
            .order_by(GapSnapshot.computed_at.desc(), GapSnapshot.id.desc())
            .limit(1)
        ).first()


def stale(rt, snapshot: GapSnapshot | None, definition: Definition) -> bool:
    """Whether completed sessions (or the definition) changed since `snapshot`."""
    if snapshot is None or snapshot.digest != definition.digest:
        return True
    with rt.engine.connect() as connection:
        respondents, latest_completion = aggregate.fingerprint(connection, definition.id, snapshot.wave)
        connection.rollback()
    return (respondents, latest_completion) != (snapshot.respondents, aware(snapshot.latest_completion))


def current(rt, definition: Definition, wave: int | None = None, refresh: bool = False) -> GapSnapshot:
    """The snapshot to serve now (see the module's docstring)."""
    snapshot = None if refresh else latest(rt, definition.id, wave)
    if snapshot is None or snapshot.digest != definition.digest:
        return compute(rt, definition, wave)
    if rt.now() - aware(snapshot.computed_at) >= STALE_AFTER and stale(rt, snapshot, definition):
        return compute(rt, definition, wave)
    return snapshot


def aware(moment: datetime | None) -> datetime | None:
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment
