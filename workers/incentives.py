"""Incentive jobs and the inbound worker's incentive hook.

    Payout          inside the inbound transaction: what the engine may promise, and keeping the promise
                    (reserve at consent, record at completion, attach a Telegram number, release on leaving)
    issue(*ids)     RQ job: one provider call per due record (a job run twice finds nothing to claim)
    settle(*ids)    RQ job: ask the provider what happened to records stuck in `submitted`
    tick()          periodic: release reservations of sessions that ended elsewhere, settle and issue what is due
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from sqlalchemy.orm import Session

from service import runtime as runtimes
from service.addresses import PHONE_CHANNELS
from service.incentives import PENDING, budget, ledger, payments
from service.incentives.payments import CONCURRENCY as CONCURRENCY  # bench/incentives.py sizes its pool by it
from service.incentives.payments import ISSUE as ISSUE
from service.incentives.payments import notify_paid as notify_paid
from service.incentives.payments import wake as wake
from service.models import Contact, Incentive
from service.runtime import Runtime
from service.vocabulary import EventKind
from surveys import engine
from surveys.definition import Definition
from surveys.engine import State, Step

T = TypeVar("T")

log = logging.getLogger(__name__)


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
            if event.kind == EventKind.CONSENTED and step.state.incentive:
                if not budget.reserve(self.session, row, self.d, self.tally):
                    return False
            elif event.kind == EventKind.COMPLETED and step.state.incentive:
                phone = ledger.payout_phone(self.rt.vault, self.contact, self.rt.settings.default_region)
                record = ledger.earn(self.session, self.rt.vault, self.contact, row, self.d, self.now, phone,
                                     self.rt.settings.incentive_provider, self.tally)
                if record is None:
                    return False
                if record.status == PENDING and record.id is not None:
                    self.due.append(record.id)
            elif event.kind == EventKind.PAYOUT_PHONE:
                self._records_written()
                kept = ledger.attach_phone(self.session, self.rt.vault, self.contact, row, event.detail["phone"],
                                           self.rt.settings.default_region, self.now)
                if kept is False:
                    return False
                if isinstance(kept, Incentive):
                    self.due.append(kept.id)
            elif event.kind == EventKind.PAYOUT_PHONE_REFUSED:
                self._records_written()
                ledger.withdraw(self.session, row, "this number was already paid for this survey wave", self.now,
                                self.tally)
            elif event.kind in (EventKind.DECLINED, EventKind.OPTED_OUT, EventKind.EXPIRED, EventKind.INELIGIBLE):
                self._records_written()
                budget.release(self.session, row.id, self.tally)
        return True

    def _records_written(self) -> None:
        """The batch's deferred records, written before something reads or changes one of them."""
        if not self.tally.write_records():
            raise BudgetShort()


# -- jobs -------------------------------------------------------------------------------------------------


def issue(*incentive_ids: int) -> dict[str, int]:
    """RQ job: hand due records to the provider, several at once; counts by outcome ('skipped': not due, or
    another worker has it, so a job run twice does nothing the second time)."""
    return payments.issue(runtimes.current(), incentive_ids)


def settle(*incentive_ids: int) -> dict[str, int]:
    """RQ job: records still `submitted` past their time: ask the provider by idempotency key, never pay again."""
    return payments.settle(runtimes.current(), incentive_ids)


def tick() -> dict[str, int]:
    """Periodic: release reservations of sessions that ended elsewhere (expiry), settle overdue records, issue due
    ones. Ticks may overlap on several workers: each record is claimed by one of them."""
    rt = runtimes.current()
    with rt.sessions() as session, session.begin():
        released = payments.release_ended(session, rt.now(), payments.hold(rt))
        due, overdue = payments.due(session, rt.now()) if rt.settings.incentive_provider != "ledger" else ([], [])
    if overdue:
        settle(*overdue)
    if due:
        issue(*due)
    if released or due or overdue:
        log.info("incentives: %d reservations released, %d records issued, %d settled by lookup", released,
                 len(due), len(overdue))
    return {"released": released, "issue": len(due), "settle": len(overdue)}
