"""Incentive jobs and the inbound worker's incentive hook.

    Payout          inside the inbound transaction: what the engine may promise, and keeping the promise
                    (reserve at consent, record at completion, attach a Telegram number, release on leaving)
    issue(*ids)     RQ job: one provider call per due record (a job run twice finds nothing to claim)
    settle(*ids)    RQ job: ask the provider what happened to records stuck in `submitted`
    tick()          periodic: release reservations of sessions that ended elsewhere, settle and issue what is due
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import TypeVar

import requests
from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from service import runtime as runtimes
from service.inbox import PHONE_CHANNELS
from service.incentives import FAILED, PENDING, SUBMITTED, budget, ledger
from service.incentives.providers import Outcome, Provider, make_provider
from service.models import Contact, Incentive, IncentiveReservation, SurveySession
from service.queue import OUTBOX
from service.runtime import Runtime
from surveys import engine
from surveys.definition import Definition
from surveys.engine import State, Step

T = TypeVar("T")

log = logging.getLogger(__name__)

ISSUE = "workers.incentives.issue"
TICK_LIMIT = 1000
CONCURRENCY = 8
"""Provider calls one job makes at a time."""
ENDED = (engine.DECLINED, engine.OPTED_OUT, engine.EXPIRED, engine.INELIGIBLE)
_http = threading.local()


# -- the inbound hook ---------------------------------------------------------------------------------------


class BudgetShort(Exception):
    """A batch promised credit it cannot keep (more than its survey wave has left, or to a respondent or number
    already paid for the wave): it is run again, holding and recording credit one by one."""


def tally(session: Session, strict: bool, write_sessions: Callable[[], None] | None = None) -> budget.Tally:
    """The budget changes of one inbound batch: deferred to the end of the batch unless `strict`.

    `write_sessions` writes the batch's new sessions, before anything that refers to them.
    """
    return budget.Tally(session, deferred=not strict, write_sessions=write_sessions)


def close_tally(batch_tally: budget.Tally) -> None:
    """Just before the batch commits: apply its budget changes, or raise BudgetShort (the batch rolls back)."""
    if not batch_tally.settle():
        raise BudgetShort()


def within_budget(run: Callable[[bool], T]) -> T:
    """Run an inbound batch with its budget changes deferred; if they pass the budget, run it again strictly."""
    try:
        return run(False)
    except BudgetShort:
        log.info("a batch promised credit it cannot keep; processing it again, one hold and record at a time")
        return run(True)


class Payout:
    """One inbound message's incentive decisions, inside the worker's transaction."""

    def __init__(self, rt: Runtime, session: Session, contact: Contact, row: budget.SessionRow | None,
                 definition: Definition, now: datetime, batch_tally: budget.Tally | None = None):
        self.rt, self.session, self.contact, self.row, self.d, self.now = rt, session, contact, row, definition, now
        self.tally = batch_tally or budget.Tally(session)
        self.due: list[int] = []
        """Records that became payable: the batch enqueues `issue` for them once it has committed."""

    @property
    def ask_phone(self) -> bool:
        """Channels without a phone number (Telegram, console) ask for one after completing."""
        return self.contact.channel not in PHONE_CHANNELS and self.contact.phone_enc is None

    def step(self, state: State | None, run: Callable[[bool], Step]) -> Step:
        """Run the engine (`run(incentive_available)`); when its promise cannot be kept, run it again with False."""
        first = run(self._can_promise(state))
        if self._keep(first):
            return first
        second = run(False)
        self._keep(second)
        return second

    def _can_promise(self, state: State | None) -> bool:
        if self.d.incentive is None:
            return True
        if state is not None and state.status in (engine.IN_PROGRESS, engine.COMPLETED):
            return True
        wave = self.row.wave if self.row is not None else 1
        return self.tally.room(self.d, wave)

    def _keep(self, step: Step) -> bool:
        """Reserve, record or release what the step's events ask for; False (nothing written) if it cannot."""
        row = self.row
        if row is None or self.d.incentive is None or self.contact.test:
            return True  # a test contact (the console) goes through the whole conversation and is never paid
        for event in step.events:
            if event.kind == "consented" and step.state.incentive:
                if not budget.reserve(self.session, row, self.d, self.tally):
                    return False
            elif event.kind == "completed" and step.state.incentive:
                phone = ledger.payout_phone(self.rt.vault, self.contact, self.rt.settings.default_region)
                record = ledger.earn(self.session, self.rt.vault, self.contact, row, self.d, self.now, phone,
                                     self.rt.settings.incentive_provider, self.tally)
                if record is None:
                    return False
                if record.status == PENDING and record.id is not None:
                    self.due.append(record.id)
            elif event.kind == "payout_phone":
                self._records_written()
                kept = ledger.attach_phone(self.session, self.rt.vault, self.contact, row, event.detail["phone"],
                                           self.rt.settings.default_region, self.now)
                if kept is False:
                    return False
                if isinstance(kept, Incentive):
                    self.due.append(kept.id)
            elif event.kind == "payout_phone_refused":
                self._records_written()
                ledger.withdraw(self.session, row, "this number was already paid for this survey wave", self.now,
                                self.tally)
            elif event.kind in ("declined", "opted_out", "expired", "ineligible"):
                self._records_written()
                budget.release(self.session, row.id, self.tally)
        return True

    def _records_written(self) -> None:
        """The batch's deferred records, written before something reads or changes one of them."""
        if not self.tally.write_records():
            raise BudgetShort()


def wake(rt: Runtime, incentive_ids: list[int]) -> None:
    """After a commit: issue the records that became payable (the periodic tick catches any lost wake-up)."""
    if incentive_ids and rt.settings.incentive_provider != "ledger":
        rt.dispatcher.enqueue(ISSUE, *incentive_ids)


# -- jobs -------------------------------------------------------------------------------------------------


def issue(*incentive_ids: int) -> dict[str, int]:
    """RQ job: hand due records to the provider, several at once; counts by outcome ('skipped': not due, or
    another worker has it, so a job run twice does nothing the second time)."""
    return _each(runtimes.current(), incentive_ids, _issue_one)


def settle(*incentive_ids: int) -> dict[str, int]:
    """RQ job: records still `submitted` past their time: ask the provider by idempotency key, never pay again."""
    return _each(runtimes.current(), incentive_ids, _settle_one)


def tick() -> dict[str, int]:
    """Periodic: release reservations of sessions that ended elsewhere (expiry), settle overdue records, issue due
    ones. Ticks may overlap on several workers: each record is claimed by one of them."""
    rt = runtimes.current()
    with rt.sessions() as session, session.begin():
        released = release_ended(session, rt.now(), _hold(rt))
        due, overdue = _due(session, rt.now()) if rt.settings.incentive_provider != "ledger" else ([], [])
    if overdue:
        settle(*overdue)
    if due:
        issue(*due)
    if released or due or overdue:
        log.info("incentives: %d reservations released, %d records issued, %d settled by lookup", released,
                 len(due), len(overdue))
    return {"released": released, "issue": len(due), "settle": len(overdue)}


def reconcile(everything: bool = False, survey_id: str | None = None) -> dict[str, int]:
    """Settle `submitted` records now (all of them with `everything`, else the overdue ones), then issue due ones.

    Runs in the caller's process (the CLI); returns counts by outcome.
    """
    rt = runtimes.current()
    now = rt.now()
    with rt.sessions() as session, session.begin():
        counts = {"released": release_ended(session, now, _hold(rt))}
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
    for state, count in settle(*submitted).items():
        counts[f"looked up: {state}"] = count
    with rt.sessions() as session:
        due, _ = _due(session, rt.now(), survey_id)
    for state, count in issue(*due).items():
        counts[f"issued: {state}"] = count
    return counts


def _issue_one(rt: Runtime, provider: Provider, incentive_id: int) -> str:
    with rt.sessions() as session, session.begin():
        claim = ledger.claim(session, rt.vault, incentive_id, rt.now(), rt.settings.incentive_max_attempts,
                             provider.name, _grace(rt))
    if claim is None:
        return "skipped"
    outcome = _call(lambda: provider.topup(claim.order))
    log.info("incentive %s attempt %s: %s %s", incentive_id, claim.attempts, outcome.state, outcome.code or "")
    _record(rt, incentive_id, outcome, claim.attempts)
    return outcome.state


def _settle_one(rt: Runtime, provider: Provider, incentive_id: int) -> str:
    with rt.sessions() as session, session.begin():
        key = ledger.claim_check(session, incentive_id, rt.now(), _grace(rt))
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


def _due(session: Session, now: datetime, survey_id: str | None = None) -> tuple[list[int], list[int]]:
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


def _hold(rt: Runtime) -> timedelta:
    return timedelta(days=rt.settings.incentive_hold_days)


def _grace(rt: Runtime) -> timedelta:
    """How long a submitted record may wait for its worker before the provider is asked about it."""
    return timedelta(seconds=2 * rt.settings.reloadly_timeout + 10)


def _call(work: Callable[[], Outcome]) -> Outcome:
    try:
        return work()
    except Exception as error:  # noqa: BLE001 - a provider bug must not lose the record: it is looked up later
        log.exception("incentive provider failed")
        return Outcome("unknown", code="error", message=type(error).__name__)


def _session() -> requests.Session:
    """One keep-alive HTTP session per thread."""
    session = getattr(_http, "session", None)
    if session is None:
        session = _http.session = requests.Session()
    return session
