"""The budget of a survey wave: a counter of what was promised, raised only while it stays within the budget.

`committed_cents` = reservations held + credits earned (except duplicates). Raising it is one conditional
UPDATE (`... WHERE committed + amount <= budget`): the row lock makes concurrent workers queue, and each sees
the other's committed value, so the budget is never exceeded however many workers consent people at once.

A `Tally` applies a transaction's changes at once, or (deferred) adds them up and applies them per wave just
before the commit: the hot row is then locked for milliseconds instead of for a whole batch of messages.
"""

from __future__ import annotations

from sqlalchemy import delete, exists, insert, inspect, literal, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from service.incentives import cents
from service.models import IncentiveBudget, IncentiveReservation, SurveySession, utcnow
from surveys.definition import Definition


def room(session: Session, definition: Definition, wave: int) -> bool:
    """Whether a new respondent can be promised the credit now (a read; the reservation at consent decides)."""
    incentive = definition.incentive
    if incentive is None or incentive.budget is None:
        return True
    return _fits(definition, _committed(session, definition.id, wave))


def _committed(session: Session, survey_id: str, wave: int) -> int:
    return session.scalar(
        select(IncentiveBudget.committed_cents).where(IncentiveBudget.survey_id == survey_id, IncentiveBudget.wave == wave)
    ) or 0


def _fits(definition: Definition, committed_cents: int) -> bool:
    return committed_cents + cents(definition.incentive.amount) <= cents(definition.incentive.budget)


def commit(session: Session, definition: Definition, wave: int, amount_cents: int) -> bool:
    """Add `amount_cents` to the wave's promises unless that passes its budget; False when it would."""
    incentive = definition.incentive
    if incentive is None:
        return False
    budget_cents = cents(incentive.budget) if incentive.budget is not None else None
    _ensure_row(session, definition.id, wave, incentive.currency, budget_cents)
    query = (
        update(IncentiveBudget)
        .where(IncentiveBudget.survey_id == definition.id, IncentiveBudget.wave == wave)
        .values(committed_cents=IncentiveBudget.committed_cents + amount_cents, budget_cents=budget_cents)
        .execution_options(synchronize_session=False)
    )
    if budget_cents is not None:
        query = query.where(IncentiveBudget.committed_cents + amount_cents <= budget_cents)
    return session.execute(query).rowcount == 1


def give_back(session: Session, survey_id: str, wave: int, amount_cents: int) -> None:
    session.execute(
        update(IncentiveBudget)
        .where(IncentiveBudget.survey_id == survey_id, IncentiveBudget.wave == wave)
        .values(committed_cents=IncentiveBudget.committed_cents - amount_cents)
        .execution_options(synchronize_session=False)
    )


class Tally:
    """The changes a transaction makes to the waves' counters, applied at once or deferred to `settle`."""

    def __init__(self, session: Session, deferred: bool = False):
        self.session = session
        self.deferred = deferred
        self.pending: dict[tuple[str, int], int] = {}
        self.definitions: dict[tuple[str, int], Definition] = {}
        self.read: dict[tuple[str, int], int] = {}
        self.holds: dict[int, dict] = {}
        """Reservations of sessions created in this transaction and not yet written (their row is not either)."""

    def hold_later(self, row: SurveySession, definition: Definition, amount_cents: int) -> None:
        """Reserve for a session that is not in the database yet: written by `write_holds`, counted now."""
        self.holds[row.id] = {"session_id": row.id, "survey_id": row.survey_id, "wave": row.wave,
                              "amount_cents": amount_cents, "created_at": utcnow()}
        self.commit(definition, row.wave, amount_cents)

    def write_holds(self) -> None:
        """Flush the transaction's new sessions, then insert the reservations held for them, in one statement."""
        if not self.holds:
            return
        self.session.flush()
        self.session.execute(insert(IncentiveReservation.__table__), list(self.holds.values()))
        self.holds.clear()

    def room(self, definition: Definition, wave: int) -> bool:
        """`room()`, with the wave's counter read once per deferred tally (plus this transaction's changes)."""
        incentive = definition.incentive
        if not self.deferred or incentive is None or incentive.budget is None:
            return room(self.session, definition, wave)
        key = (definition.id, wave)
        if key not in self.read:
            self.read[key] = _committed(self.session, definition.id, wave)
        return _fits(definition, self.read[key] + self.pending.get(key, 0))

    def commit(self, definition: Definition, wave: int, amount_cents: int) -> bool:
        if not self.deferred:
            return commit(self.session, definition, wave, amount_cents)
        key = (definition.id, wave)
        self.pending[key] = self.pending.get(key, 0) + amount_cents
        self.definitions[key] = definition
        return True

    def give_back(self, survey_id: str, wave: int, amount_cents: int) -> None:
        if not self.deferred:
            give_back(self.session, survey_id, wave, amount_cents)
            return
        key = (survey_id, wave)
        self.pending[key] = self.pending.get(key, 0) - amount_cents

    def settle(self) -> bool:
        """Apply the deferred changes, one UPDATE per wave in a fixed order; False if one passes its budget."""
        self.write_holds()
        for key in sorted(self.pending):
            delta = self.pending[key]
            if delta > 0 and not commit(self.session, self.definitions[key], key[1], delta):
                return False
            if delta < 0:
                give_back(self.session, key[0], key[1], -delta)
        self.pending.clear()
        self.read.clear()
        return True


def reserve(session: Session, row: SurveySession, definition: Definition, tally: Tally | None = None) -> bool:
    """Hold the credit for a respondent who consented; True when held (also when it already was, or was earned)."""
    from service.models import Incentive

    amount_cents = cents(definition.incentive.amount) if definition.incentive else 0
    tally = tally or Tally(session)
    if inspect(row).pending:  # created in this transaction: nothing can be held or earned for it yet
        if tally.deferred:
            if row.id not in tally.holds:
                tally.hold_later(row, definition, amount_cents)
            return True
        session.flush()
    table = IncentiveReservation.__table__
    source = select(
        literal(row.id, table.c.session_id.type),
        literal(row.survey_id, table.c.survey_id.type),
        literal(row.wave, table.c.wave.type),
        literal(amount_cents, table.c.amount_cents.type),
        literal(utcnow(), table.c.created_at.type),
    ).where(~exists().where(Incentive.session_id == row.id))
    dialect = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}[session.get_bind().dialect.name]
    held = session.scalar(
        dialect(table)
        .from_select(["session_id", "survey_id", "wave", "amount_cents", "created_at"], source)
        .on_conflict_do_nothing(index_elements=["session_id"])
        .returning(table.c.id)
    )
    if held is None:
        return True
    if not tally.commit(definition, row.wave, amount_cents):
        session.execute(delete(table).where(table.c.id == held))
        return False
    return True


def take(session: Session, session_id: int) -> int | None:
    """Remove a session's reservation and return its amount (None when it had none); the caller uses it."""
    taken = session.execute(
        delete(IncentiveReservation)
        .where(IncentiveReservation.session_id == session_id)
        .returning(IncentiveReservation.amount_cents)
        .execution_options(synchronize_session=False)
    ).first()
    return taken[0] if taken else None


def release(session: Session, session_id: int, tally: Tally | None = None) -> bool:
    """Give a session's reservation back to its wave (the respondent declined, opted out or expired)."""
    if tally is not None and session_id in tally.holds:
        hold = tally.holds.pop(session_id)
        tally.give_back(hold["survey_id"], hold["wave"], hold["amount_cents"])
        return True
    taken = session.execute(
        delete(IncentiveReservation)
        .where(IncentiveReservation.session_id == session_id)
        .returning(IncentiveReservation.survey_id, IncentiveReservation.wave, IncentiveReservation.amount_cents)
        .execution_options(synchronize_session=False)
    ).first()
    if taken is None:
        return False
    (tally or Tally(session)).give_back(*taken)
    return True


def _ensure_row(session: Session, survey_id: str, wave: int, currency: str, budget_cents: int | None) -> None:
    dialect = session.get_bind().dialect.name
    statement = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}[dialect]
    session.execute(
        statement(IncentiveBudget)
        .values(survey_id=survey_id, wave=wave, currency=currency, budget_cents=budget_cents, committed_cents=0)
        .on_conflict_do_nothing(index_elements=["survey_id", "wave"])
    )
