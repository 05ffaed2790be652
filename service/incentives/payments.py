"""Paying: hand due incentive records to the provider, settle records stuck in `submitted`, tell the respondent.

Runs in a worker (workers.incentives' jobs) or in the caller's process (`retorno incentives reconcile`); every
function takes the runtime it works in.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import requests
from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from bots._http import PerThread
from service.incentives import FAILED, PENDING, SUBMITTED, budget, ledger
from service.incentives.providers import Outcome, Provider, make_provider
from service.models import Incentive, IncentiveReservation, SurveySession
from service.queue import OUTBOX
from service.runtime import Runtime
from surveys import engine

log = logging.getLogger(__name__)

ISSUE = "workers.incentives.issue"
TICK_LIMIT = 1000
CONCURRENCY = 8
"""Provider calls one job makes at a time."""
ENDED = (engine.DECLINED, engine.OPTED_OUT, engine.EXPIRED, engine.INELIGIBLE)


def wake(rt: Runtime, incentive_ids: list[int]) -> None:
    """After a commit: issue the records that became payable (the periodic tick catches any lost wake-up)."""
    if incentive_ids and rt.settings.incentive_provider != "ledger":
        rt.dispatcher.enqueue(ISSUE, *incentive_ids)


def issue(rt: Runtime, incentive_ids: tuple[int, ...]) -> dict[str, int]:
    """Hand due records to the provider, several at once; counts by outcome ('skipped': not due, or another
    worker has it, so running twice does nothing the second time)."""
    return _each(rt, incentive_ids, _issue_one)


def settle(rt: Runtime, incentive_ids: tuple[int, ...]) -> dict[str, int]:
    """Records still `submitted` past their time: ask the provider by idempotency key, never pay again."""
    return _each(rt, incentive_ids, _settle_one)


def reconcile(rt: Runtime, everything: bool = False, survey_id: str | None = None) -> dict[str, int]:
    """Settle `submitted` records now (all of them with `everything`, else the overdue ones), then issue due ones.

    Runs in the caller's process (the CLI); returns counts by outcome.
    """
    now = rt.now()
    with rt.sessions() as session, session.begin():
        counts = {"released": release_ended(session, now, hold(rt))}
        query = select(Incentive.id).where(Incentive.status == SUBMITTED)
        if not everything:
            query = query.where(Incentive.next_attempt_at <= now)
        if survey_id:
            query = query.where(Incentive.survey_id == survey_id)
        submitted = session.scalars(query.order_by(Incentive.id)).all()
        if everything and submitted:
            session.execute(
                update(Incentive)
                .where(Incentive.id.in_(submitted), Incentive.status == SUBMITTED)
                .values(next_attempt_at=now)
                .execution_options(synchronize_session=False)
            )
    for state, count in settle(rt, tuple(submitted)).items():
        counts[f"looked up: {state}"] = count
    with rt.sessions() as session:
        payable, _ = due(session, rt.now(), survey_id)
    for state, count in issue(rt, tuple(payable)).items():
        counts[f"issued: {state}"] = count
    return counts


def _issue_one(rt: Runtime, provider: Provider, incentive_id: int) -> str:
    with rt.sessions() as session, session.begin():
        claim = ledger.claim(session, rt.vault, incentive_id, rt.now(), rt.settings.incentive_max_attempts,
                             provider.name, grace(rt))
    if claim is None:
        return "skipped"
    outcome = _call(lambda: provider.topup(claim.order))
    log.info("incentive %s attempt %s: %s %s", incentive_id, claim.attempts, outcome.state, outcome.code or "")
    _record(rt, incentive_id, outcome, claim.attempts)
    return outcome.state


def _settle_one(rt: Runtime, provider: Provider, incentive_id: int) -> str:
    with rt.sessions() as session, session.begin():
        key = ledger.claim_check(session, incentive_id, rt.now(), grace(rt))
    if key is None:
        return "skipped"
    outcome = _call(lambda: provider.lookup(key))
    log.info("incentive %s looked up: %s %s", incentive_id, outcome.state, outcome.code or "")
    _record(rt, incentive_id, outcome, None)
    return outcome.state


def _each(rt: Runtime, incentive_ids: tuple[int, ...], work: Callable[[Runtime, Provider, int], str]) -> dict[str, int]:
    """Run `work` for each record, CONCURRENCY provider calls at a time; counts by outcome."""
    if not incentive_ids:
        return {}
    if rt.settings.incentive_provider == "ledger":
        return {"ledger": len(incentive_ids)}

    def one(incentive_id: int) -> str:
        return work(rt, make_provider(rt.settings, _session()), incentive_id)

    if len(incentive_ids) == 1:
        outcomes = [one(incentive_ids[0])]
    else:
        with ThreadPoolExecutor(max_workers=min(CONCURRENCY, len(incentive_ids))) as pool:
            outcomes = list(pool.map(one, incentive_ids))
    return dict(Counter(outcomes))


def release_ended(session: Session, now: datetime, hold: timedelta) -> int:
    """Reservations go back when their session ended without completing (declined, opted out, expired) or has
    been silent for longer than `hold` (a respondent who comes back later is held the credit again, budget
    permitting)."""
    ended = session.scalars(
        select(IncentiveReservation.session_id)
        .join(SurveySession, SurveySession.id == IncentiveReservation.session_id)
        .where(
            or_(
                SurveySession.status.in_(ENDED),
                and_(SurveySession.status == engine.IN_PROGRESS, SurveySession.last_activity_at < now - hold),
            )
        )
        .limit(TICK_LIMIT)
    ).all()
    return sum(1 for session_id in ended if budget.release(session, session_id))


def due(session: Session, now: datetime, survey_id: str | None = None) -> tuple[list[int], list[int]]:
    """Records to issue (pending, or failed and due for a retry) and submitted ones whose answer is overdue."""
    only = [Incentive.survey_id == survey_id] if survey_id else []
    due = session.scalars(
        select(Incentive.id)
        .where(Incentive.status.in_((PENDING, FAILED)), Incentive.next_attempt_at <= now, *only)
        .order_by(Incentive.next_attempt_at)
        .limit(TICK_LIMIT)
    ).all()
    overdue = session.scalars(
        select(Incentive.id)
        .where(Incentive.status == SUBMITTED, Incentive.next_attempt_at <= now, *only)
        .order_by(Incentive.next_attempt_at)
        .limit(TICK_LIMIT)
    ).all()
    return list(due), list(overdue)


def _record(rt: Runtime, incentive_id: int, outcome: Outcome, attempts: int | None) -> None:
    now = rt.now()
    retry_in = backoff(rt.settings.incentive_retry_seconds, attempts or 1)
    outbound: list[int] = []
    with rt.sessions() as session, session.begin():
        paid = ledger.record(session, incentive_id, outcome, now, rt.settings.incentive_max_attempts, retry_in,
                             attempts)
        if paid:
            outbound = notify_paid(rt, session, incentive_id)
    rt.dispatcher.push(OUTBOX, outbound)


def notify_paid(rt: Runtime, session: Session, incentive_id: int) -> list[int]:
    """Queue the "credit sent" message of a record that just succeeded; the outbound ids to push after commit."""
    survey_id, version = session.execute(
        select(SurveySession.survey_id, SurveySession.version)
        .join(Incentive, Incentive.session_id == SurveySession.id)
        .where(Incentive.id == incentive_id)
    ).one()
    definition = rt.catalog.get(survey_id, version, session)
    message = ledger.notify(session, incentive_id, definition, rt.now())
    return [message.id] if message is not None else []


def backoff(base_seconds: float, attempts: int) -> timedelta:
    """base, 2x base, 4x base ... capped at one hour."""
    return timedelta(seconds=min(3600.0, base_seconds * 2 ** max(0, attempts - 1)))


def hold(rt: Runtime) -> timedelta:
    return timedelta(days=rt.settings.incentive_hold_days)


def grace(rt: Runtime) -> timedelta:
    """How long a submitted record may wait for its worker before the provider is asked about it."""
    return timedelta(seconds=2 * rt.settings.reloadly_timeout + 10)


def _call(work: Callable[[], Outcome]) -> Outcome:
    try:
        return work()
    except Exception as error:  # noqa: BLE001 - a provider bug must not lose the record: it is looked up later
        log.exception("incentive provider failed")
        return Outcome("unknown", code="error", message=type(error).__name__)


_session = PerThread(requests.Session)
