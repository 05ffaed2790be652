"""The ledger of earned credits: created at completion, given a number, issued, settled, paid.

Every change of status is a conditional UPDATE on the status the caller expects, so two workers (or a job run
twice, or a reconciliation racing a slow call) can never both move the same record.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bots import render
from bots._http import provider_error
from service.addresses import PHONE_CHANNELS
from service.incentives import (
    AWAITING_PHONE,
    DUPLICATE,
    FAILED,
    PENDING,
    SUBMITTED,
    SUCCEEDED,
    amount,
    budget,
    cents,
)
from service.incentives.providers import Outcome, TopUp
from service.models import Contact, Incentive, OutboundMessage, SurveySession
from service.privacy import InvalidAddress, Vault, normalize_phone
from service.vocabulary import OutboundStatus
from surveys.definition import Definition, credit_text
from surveys.engine import Reply


def payout_phone(vault: Vault, contact: Contact, region: str) -> str | None:
    """The number a contact's credit goes to: their SMS/WhatsApp number, or one they gave us (E.164)."""
    if contact.phone_enc:
        return vault.decrypt(contact.phone_enc)
    if contact.channel in PHONE_CHANNELS:
        try:
            return normalize_phone(vault.decrypt(contact.address_enc), region)
        except InvalidAddress:
            return None
    return None


@dataclass(frozen=True)
class Earned:
    """The incentive record a completion created (its id is None until a deferred record is written)."""

    id: int | None
    status: str


def earn(
    session: Session,
    vault: Vault,
    contact: Contact,
    row: budget.SessionRow,
    definition: Definition,
    now: datetime,
    phone: str | None,
    provider: str,
    tally: budget.Tally | None = None,
) -> Earned | None:
    """At completion: the session's reservation becomes its incentive record (reserving now if it had none).

    None when nothing can be recorded: the budget is spent (and nothing was reserved), or the respondent or
    their phone number already has a record for this survey wave (the unique constraints decide).
    """
    tally = tally or budget.Tally(session)
    values = {
        "contact_id": contact.id,
        "session_id": row.id,
        "survey_id": row.survey_id,
        "wave": row.wave,
        "amount_cents": cents(definition.incentive.amount),
        "currency": definition.incentive.currency,
        "status": PENDING if phone else AWAITING_PHONE,
        "provider": provider,
        "idempotency_key": "rt-" + secrets.token_hex(12),
        "phone_hash": vault.hash("phone", phone) if phone else None,
        "phone_enc": vault.encrypt(phone) if phone else None,
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
        "updated_at": now,
    }
    if session.get_bind().dialect.name == "postgresql" and tally.deferred:
        tally.record_later(values, definition)  # written with the batch's other records, before it commits
        return Earned(None, values["status"])
    if budget.unwritten(row):
        tally.write_sessions()  # the record refers to the session: it must be written first
    tally.write_holds()  # a hold deferred in this transaction becomes a row that `take` finds
    held = budget.take(session, row.id)
    if held is None:
        if not tally.commit(definition, row.wave, values["amount_cents"]):
            return None
    else:
        values["amount_cents"] = held
    statement = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}[session.get_bind().dialect.name]
    new_id = session.scalar(statement(Incentive).values(**values).on_conflict_do_nothing().returning(Incentive.id))
    if new_id is None:
        tally.give_back(row.survey_id, row.wave, values["amount_cents"])
        return None
    return Earned(new_id, values["status"])


def attach_phone(
    session: Session, vault: Vault, contact: Contact, row: budget.SessionRow, phone: str, region: str, now: datetime
) -> Incentive | bool:
    """The number a Telegram respondent gave after completing; False when that number was already paid.

    Returns the record (now pending), or True when there is no record waiting for a number.
    """
    phone = normalize_phone(phone, region)
    record = session.scalar(select(Incentive).where(Incentive.session_id == row.id).with_for_update())
    if record is None or record.status != AWAITING_PHONE:
        return True
    hashed = vault.hash("phone", phone)
    taken = session.scalar(
        select(Incentive.id).where(
            Incentive.phone_hash == hashed, Incentive.survey_id == record.survey_id, Incentive.wave == record.wave
        )
    )
    if taken is not None:
        return False
    try:
        with session.begin_nested():
            record.phone_hash = hashed
            record.phone_enc = vault.encrypt(phone)
            record.status = PENDING
            record.next_attempt_at = now
            record.updated_at = now
            session.flush()
    except IntegrityError:
        return False
    contact.phone_hash = hashed
    contact.phone_enc = record.phone_enc
    return record


def withdraw(
    session: Session, row: budget.SessionRow, reason: str, now: datetime, tally: budget.Tally | None = None
) -> None:
    """A record whose number was already paid (another channel, another account): marked, budget given back."""
    record = session.scalar(select(Incentive).where(Incentive.session_id == row.id).with_for_update())
    if record is None or record.status != AWAITING_PHONE:
        return
    record.status = DUPLICATE
    record.error = reason
    record.next_attempt_at = None
    record.updated_at = now
    (tally or budget.Tally(session)).give_back(record.survey_id, record.wave, record.amount_cents)


# -- issuing ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Claim:
    """A record handed to one worker for one provider call."""

    incentive_id: int
    attempts: int
    order: TopUp


def claim(
    session: Session, vault: Vault, incentive_id: int, now: datetime, max_attempts: int, provider: str,
    grace: timedelta,
) -> Claim | None:
    """pending/failed -> submitted, when due and under the attempt limit; None when another worker has it.

    `next_attempt_at` becomes the moment to ask the provider if this worker never reports back (it died).
    """
    record = session.scalar(
        select(Incentive)
        .where(
            Incentive.id == incentive_id,
            Incentive.status.in_((PENDING, FAILED)),
            Incentive.attempts < max_attempts,
            Incentive.next_attempt_at.is_not(None),
            Incentive.next_attempt_at <= now,
        )
        .with_for_update(skip_locked=True)
    )
    if record is None or record.phone_enc is None:
        return None
    record.status = SUBMITTED
    record.attempts += 1
    record.provider = provider
    record.submitted_at = now
    record.next_attempt_at = now + grace
    record.updated_at = now
    order = TopUp(
        key=record.idempotency_key,
        phone=vault.decrypt(record.phone_enc),
        amount=amount(record.amount_cents),
        currency=record.currency,
    )
    return Claim(record.id, record.attempts, order)


def claim_check(session: Session, incentive_id: int, now: datetime, grace: timedelta) -> str | None:
    """A submitted record whose outcome is overdue: leased for one lookup; its idempotency key, or None."""
    key = session.scalar(
        update(Incentive)
        .where(
            Incentive.id == incentive_id,
            Incentive.status == SUBMITTED,
            Incentive.next_attempt_at <= now,
        )
        .values(next_attempt_at=now + grace, updated_at=now)
        .returning(Incentive.idempotency_key)
        .execution_options(synchronize_session=False)
    )
    return key


def record(
    session: Session,
    incentive_id: int,
    outcome: Outcome,
    now: datetime,
    max_attempts: int,
    retry_in: timedelta,
    attempts: int | None = None,
) -> bool:
    """Store what the provider said about a submitted record; True when it moved to succeeded just now.

    `attempts`: the claim's attempt number (an issue call); None for a lookup. An outcome for a record that
    is no longer submitted (or was claimed again since) changes nothing.
    """
    where = [Incentive.id == incentive_id, Incentive.status == SUBMITTED]
    if attempts is not None:
        where.append(Incentive.attempts == attempts)
    error = _error(outcome)
    if outcome.state == "paid":
        values = {"status": SUCCEEDED, "transaction_id": outcome.transaction_id, "paid_at": now,
                  "next_attempt_at": None, "error": None}
    elif outcome.state == "unknown":
        values = {"next_attempt_at": now + retry_in, "error": error}
    else:
        current = session.execute(
            select(Incentive.attempts, Incentive.idempotency_key).where(Incentive.id == incentive_id)
        ).first()
        if current is None:
            return False
        again = outcome.retry and current.attempts < max_attempts
        values = {"status": FAILED, "error": error,
                  "next_attempt_at": (now if outcome.state == "absent" else now + retry_in) if again else None}
        if outcome.state == "failed":
            values["idempotency_key"] = next_reference(current.idempotency_key)
    values["updated_at"] = now
    changed = session.execute(
        update(Incentive).where(*where).values(**values).execution_options(synchronize_session=False)
    ).rowcount
    return bool(changed) and outcome.state == "paid"


def next_reference(reference: str) -> str:
    """The reference for the next try after the provider said the last one did not pay ("rt-ab12" -> "rt-ab12-2").

    A provider may keep a refused or refunded reference as used; it paid nothing under it, so a new one is safe.
    After an unknown outcome (a timeout) the reference is kept: that is what stops a second payment.
    """
    base, _, generation = reference.rpartition("-")
    if base.count("-") >= 1 and generation.isdigit():
        return f"{base}-{int(generation) + 1}"
    return f"{reference}-2"


def _error(outcome: Outcome) -> str | None:
    """What staff see of a failure: the provider's code and message, without phone numbers."""
    if outcome.state == "paid":
        return None
    parts = [p for p in (outcome.code, outcome.message) if p]
    return provider_error(": ".join(parts) or outcome.state)


# -- staff --------------------------------------------------------------------------------------------------


def mark_paid(session: Session, incentive_id: int, now: datetime, reference: str | None) -> str:
    """Staff paid a record by hand: -> succeeded. Returns what happened: 'paid', 'already paid' or why not."""
    record = session.scalar(select(Incentive).where(Incentive.id == incentive_id).with_for_update())
    if record is None:
        return "unknown incentive"
    if record.status == SUCCEEDED:
        return "already paid"
    if record.status == DUPLICATE:
        return "not owed: the number was already paid"
    if record.status == AWAITING_PHONE:
        return "no phone number yet"
    record.status = SUCCEEDED
    record.paid_at = now
    record.transaction_id = (reference or "")[:128] or record.transaction_id
    record.next_attempt_at = None
    record.error = None
    record.updated_at = now
    return "paid"


def retry(session: Session, incentive_id: int, now: datetime) -> bool:
    """Staff asked to try a failed record again: its attempts start over."""
    changed = session.execute(
        update(Incentive)
        .where(Incentive.id == incentive_id, Incentive.status == FAILED)
        .values(attempts=0, next_attempt_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    return bool(changed)


# -- telling the respondent ---------------------------------------------------------------------------------


def notify(session: Session, incentive_id: int, definition: Definition, now: datetime) -> OutboundMessage | None:
    """Queue the short "credit sent" message for a record that just succeeded (nothing to opted-out people)."""
    found = session.execute(
        select(Incentive, Contact, SurveySession.language)
        .join(Contact, Contact.id == Incentive.contact_id)
        .join(SurveySession, SurveySession.id == Incentive.session_id)
        .where(Incentive.id == incentive_id)
    ).first()
    if found is None:
        return None
    record, contact, language = found
    if contact.opted_out or contact.unreachable:
        return None
    value = amount(record.amount_cents)
    text = definition.message(
        "credit_sent", contact.language or language, credit=credit_text(value, record.currency),
        amount=f"{value:g}", currency=record.currency,
    )
    body, payload = render(contact.channel, Reply(text=text))
    message = OutboundMessage(
        contact_id=contact.id,
        session_id=record.session_id,
        channel=contact.channel,
        kind="incentive",
        body=body,
        payload=payload,
        status=OutboundStatus.QUEUED,
        attempts=0,
        created_at=now,
    )
    session.add(message)
    session.flush()
    return message
