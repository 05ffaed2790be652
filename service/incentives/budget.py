"""The budget of a survey wave: a counter of what was promised, raised only while it stays within the budget.

`committed_cents` = reservations held + credits earned (except duplicates). Raising it is one conditional
UPDATE (`... WHERE committed + amount <= budget`): the row lock makes concurrent workers queue, and each sees
the other's committed value, so the budget is never exceeded however many workers consent people at once.

A `Tally` applies a transaction's changes at once, or (deferred) adds them up and applies them per wave just
before the commit: the hot row is then locked for milliseconds instead of for a whole batch of messages.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from sqlalchemy import delete, exists, insert, inspect, literal, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from service.db import json_rows
from service.incentives import PENDING, cents
from service.models import IncentiveBudget, IncentiveReservation, utcnow
from surveys.definition import Definition


def room(session: Session, definition: Definition, wave: int) -> bool:
    """Whether a new respondent can be promised the credit now (a read; the reservation at consent decides)."""
    incentive = definition.incentive
    if incentive is None or incentive.budget is None:
        return True
    return _fits(definition, _committed(session, definition.id, wave))


def _committed(session: Session, survey_id: str, wave: int, lock: bool = False) -> int:
    query = select(IncentiveBudget.committed_cents).where(
        IncentiveBudget.survey_id == survey_id, IncentiveBudget.wave == wave
    )
    return session.scalar(query.with_for_update() if lock else query) or 0


LOCK_MARGIN = 1000
"""Credits left in a wave below which a deferred tally locks the wave's counter when it first reads it: concurrent
batches then promise one after another and none has to run again because another took the last credits. A spent
wave is not locked: nothing can be promised from it (and `settle`'s conditional UPDATE refuses any promise a stale
read would make), so batches of a survey whose budget ran out do not wait for one another."""


def _fits(definition: Definition, committed_cents: int) -> bool:
    return committed_cents + cents(definition.incentive.amount) <= cents(definition.incentive.budget)


def _near_the_end(definition: Definition, committed_cents: int) -> bool:
    """Fewer than LOCK_MARGIN credits left in the wave."""
    incentive = definition.incentive
    return committed_cents + cents(incentive.amount) * LOCK_MARGIN > cents(incentive.budget)


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


class SessionRow(Protocol):
    """What the budget and the ledger read of a survey session: an ORM row, or an inbound batch's own."""

    id: int
    survey_id: str
    wave: int


def unwritten(row: Any) -> bool:
    """A session created in this transaction and not written yet: a pending ORM object, or an inbound batch's row
    whose `unwritten` flag is set."""
    flag = getattr(row, "unwritten", None)
    return inspect(row).pending if flag is None else flag


class Tally:
    """The changes a transaction makes to the waves' counters, applied at once or deferred to `settle`."""

    def __init__(self, session: Session, deferred: bool = False, write_sessions: Callable[[], None] | None = None):
        self.session = session
        self.deferred = deferred
        self.write_sessions = write_sessions or session.flush
        """Writes the transaction's new sessions (the ORM's flush, or the inbound batch's own statement)."""
        self.pending: dict[tuple[str, int], int] = {}
        self.definitions: dict[tuple[str, int], Definition] = {}
        self.read: dict[tuple[str, int], int] = {}
        self.holds: dict[int, dict] = {}
        """Reservations of sessions created in this transaction and not yet written (their row is not either)."""
        self.claims: dict[int, dict] = {}
        """Reservations of sessions already written, counted now and inserted together by `write_claims` (PostgreSQL):
        one statement for a batch's consents instead of one round trip each."""
        self.records: list[tuple[dict, Definition, bool]] = []
        """Incentive records of completions, written together by `write_records` (values, survey, counted)."""
        self.due: list[int] = []
        """Ids of the records written by `write_records` that are ready to issue."""

    def hold_later(self, row: SessionRow, definition: Definition, amount_cents: int) -> None:
        """Reserve for a session that is not in the database yet: written by `write_holds`, counted now."""
        self.holds[row.id] = {"session_id": row.id, "survey_id": row.survey_id, "wave": row.wave,
                              "amount_cents": amount_cents, "created_at": utcnow()}
        self.commit(definition, row.wave, amount_cents)

    def write_holds(self) -> None:
        """Flush the transaction's new sessions, then insert the reservations held for them, in one statement; the
        claims too."""
        if self.holds:
            self.write_sessions()
            self.session.execute(insert(IncentiveReservation.__table__), list(self.holds.values()))
            self.holds.clear()
        self.write_claims()

    def claim_later(self, row: SessionRow, definition: Definition, amount_cents: int) -> None:
        """Reserve for a session already written: counted now, inserted by `write_claims`."""
        self.claims[row.id] = {"session_id": row.id, "survey_id": row.survey_id, "wave": row.wave,
                               "amount_cents": amount_cents, "created_at": utcnow()}
        self.commit(definition, row.wave, amount_cents)

    def write_claims(self, session_id: int | None = None) -> None:
        """Insert the claims (all, or only if `session_id` is among them: before something reads its reservation).
        A session that had a reservation already, or has earned its record, gives its amount back, as `reserve`
        would have counted nothing for it."""
        if not self.claims or (session_id is not None and session_id not in self.claims):
            return
        claims, self.claims = self.claims, {}
        inserted = {found for (found,) in self.session.execute(_CLAIMS, {"rows": json_rows(list(claims.values()))})}
        for claimed, values in claims.items():
            if claimed not in inserted:
                self.give_back(values["survey_id"], values["wave"], values["amount_cents"])

    def record_later(self, values: dict, definition: Definition) -> None:
        """A completion's incentive record, written with the others of the transaction by `write_records`.

        A hold made in this transaction becomes the record's amount directly (it is never written).
        """
        self.write_claims(values["session_id"])
        hold = self.holds.pop(values["session_id"], None)
        if hold is not None:
            values = {**values, "amount_cents": hold["amount_cents"]}
        self.records.append((values, definition, hold is not None))

    def write_records(self) -> bool:
        """Write the records `record_later` collected, taking their sessions' reservations, in one statement.

        False when one of them could not be created (that respondent or number already has a record for the
        wave): the transaction promised credit it cannot keep and must be run again, one record at a time.
        """
        if not self.records:
            return True
        self.write_sessions()
        records, self.records = self.records, []
        found = {
            session_id: (held, new_id)
            for session_id, held, new_id in self.session.execute(
                _RECORDS, {"rows": json_rows([values for values, _, _ in records])}
            )
        }
        for values, definition, counted in records:
            held, new_id = found[values["session_id"]]
            if new_id is None:
                return False
            if held is None and not counted:
                self.commit(definition, values["wave"], values["amount_cents"])
            if values["status"] == PENDING:
                self.due.append(new_id)
        return True

    def room(self, definition: Definition, wave: int) -> bool:
        """`room()`, with the wave's counter read once per deferred tally (plus this transaction's changes)."""
        incentive = definition.incentive
        if not self.deferred or incentive is None or incentive.budget is None:
            return room(self.session, definition, wave)
        key = (definition.id, wave)
        if key not in self.read:
            self.read[key] = _committed(self.session, definition.id, wave)
            if _near_the_end(definition, self.read[key]) and _fits(definition, self.read[key]):
                self.read[key] = _committed(self.session, definition.id, wave, lock=True)
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
        """Write the deferred holds and records, then apply the counters' changes, one UPDATE per wave in a fixed
        order; False if a record cannot be created or a wave passes its budget."""
        self.write_holds()
        if not self.write_records():
            return False
        for key in sorted(self.pending):
            delta = self.pending[key]
            if delta > 0 and not commit(self.session, self.definitions[key], key[1], delta):
                return False
            if delta < 0:
                give_back(self.session, key[0], key[1], -delta)
        self.pending.clear()
        self.read.clear()
        return True


def reserve(session: Session, row: SessionRow, definition: Definition, tally: Tally | None = None) -> bool:
    """Hold the credit for a respondent who consented; True when held (also when it already was, or was earned)."""
    from service.models import Incentive

    amount_cents = cents(definition.incentive.amount) if definition.incentive else 0
    tally = tally or Tally(session)
    if unwritten(row):  # created in this transaction: nothing can be held or earned for it yet
        if tally.deferred:
            if row.id not in tally.holds:
                tally.hold_later(row, definition, amount_cents)
            return True
        tally.write_sessions()
    elif tally.deferred and session.get_bind().dialect.name == "postgresql":
        if row.id not in tally.claims:
            tally.claim_later(row, definition, amount_cents)
        return True
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
    if tally is not None:
        tally.write_claims(session_id)
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


_CLAIMS = text(
    "INSERT INTO incentive_reservations (session_id, survey_id, wave, amount_cents, created_at) "
    "SELECT r.session_id, r.survey_id, r.wave, r.amount_cents, r.created_at "
    "FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(session_id bigint, survey_id text, wave int, "
    "amount_cents bigint, created_at timestamptz) "
    "WHERE NOT EXISTS (SELECT 1 FROM incentives AS i WHERE i.session_id = r.session_id) ORDER BY r.session_id "
    "ON CONFLICT (session_id) DO NOTHING RETURNING session_id"
)
"""A batch's reservations for sessions already written (PostgreSQL), as `reserve` inserts one: not for a session
that has one or has earned its record; the sessions that got one."""

_RECORDS = text(
    "WITH r AS (SELECT * FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(contact_id bigint, session_id bigint, "
    "survey_id text, wave int, amount_cents bigint, currency text, status text, provider text, "
    "idempotency_key text, phone_hash text, phone_enc text, attempts int, next_attempt_at timestamptz, "
    "created_at timestamptz, updated_at timestamptz)), "
    "taken AS (DELETE FROM incentive_reservations AS h USING r WHERE h.session_id = r.session_id "
    "RETURNING h.session_id, h.amount_cents), "
    "created AS (INSERT INTO incentives (contact_id, session_id, survey_id, wave, amount_cents, currency, status, "
    "provider, idempotency_key, phone_hash, phone_enc, attempts, next_attempt_at, created_at, updated_at) "
    "SELECT r.contact_id, r.session_id, r.survey_id, r.wave, coalesce(t.amount_cents, r.amount_cents), r.currency, "
    "r.status, r.provider, r.idempotency_key, r.phone_hash, r.phone_enc, r.attempts, r.next_attempt_at, "
    "r.created_at, r.updated_at FROM r LEFT JOIN taken AS t ON t.session_id = r.session_id ORDER BY r.session_id "
    "ON CONFLICT DO NOTHING RETURNING session_id, id) "
    "SELECT r.session_id, t.amount_cents, c.id FROM r LEFT JOIN taken AS t ON t.session_id = r.session_id "
    "LEFT JOIN created AS c ON c.session_id = r.session_id"
)
"""A batch's records (PostgreSQL): each takes its session's reservation, if any, as its amount. Both parts run
whatever the other does: a record that is refused as a duplicate makes the whole transaction run again."""
