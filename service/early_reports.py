"""Delivery reports that come before the sender has written down which message they are about.

The provider answers the send with the message's id, and may report on it (a WhatsApp failure, most often) before
the sender's transaction that records that id commits. Such a report is kept here, keyed by the provider's id, and
applied as soon as the id is known: by the periodic sweep, and by the campaign job before it acts on failures.
Reports nobody claims (another system's messages on the same account) are dropped after a day.

`record_status` applies a report to its message, or keeps it here; statuses only move forward (STATUS_RANK).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from bots.base import StatusUpdate
from bots.twilio import errors
from service.models import Contact, EarlyReport, OutboundMessage
from service.vocabulary import OutboundStatus

if TYPE_CHECKING:
    from service.runtime import Runtime

KEEP = timedelta(days=1)
BATCH = 1000
STATUS_RANK = {
    OutboundStatus.QUEUED: 0, OutboundStatus.ACCEPTED: 0, OutboundStatus.SCHEDULED: 0,
    OutboundStatus.SENDING: 1,
    OutboundStatus.SENT: 2,
    OutboundStatus.DELIVERED: 3, OutboundStatus.UNDELIVERED: 3, OutboundStatus.FAILED: 3, OutboundStatus.CANCELED: 3,
    OutboundStatus.READ: 4,
}
UNREACHABLE_ERRORS = errors.codes(errors.UNREACHABLE)
OPTED_OUT_ERRORS = errors.codes(errors.OPTED_OUT)
"""Delivery errors that mark the contact: unreachable (a number that is not, or not on WhatsApp), or opted out
(they blocked the business on WhatsApp); bots/twilio/errors.py says what each code means."""


def keep(session: Session, status: StatusUpdate, now: datetime) -> None:
    """Keep a report on a message not recorded yet (the furthest status of the message, when several come)."""
    provider_id, code = status.provider_id[:128], (status.error_code or "")[:32] or None
    dialect = session.get_bind().dialect.name
    insert = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}[dialect](EarlyReport)
    added = session.execute(insert.values(provider_id=provider_id, status=status.status, error_code=code,
                                          received_at=now).on_conflict_do_nothing(index_elements=["provider_id"]))
    if added.rowcount:
        return
    found = session.get(EarlyReport, provider_id, with_for_update=True)
    if found is not None and STATUS_RANK.get(status.status, 0) >= STATUS_RANK.get(found.status, 0):
        found.status, found.error_code, found.received_at = status.status, code or found.error_code, now


def apply(session: Session, now: datetime) -> int:
    """Apply every kept report whose message is recorded now; drop those older than a day. How many applied.

    Usually none is kept: then the join (which may walk every sent message in id order) is not run at all."""
    if session.scalar(select(EarlyReport.provider_id).limit(1)) is None:
        return 0
    rows = session.execute(
        select(EarlyReport, OutboundMessage)
        .join(OutboundMessage, OutboundMessage.provider_id == EarlyReport.provider_id)
        .where(OutboundMessage.provider_id.is_not(None))  # the partial index of ids the sender wrote down
        .order_by(OutboundMessage.id)
        .limit(BATCH)
        .with_for_update(of=OutboundMessage)
    ).all()
    for report, message in rows:
        apply_status(session, message, StatusUpdate(report.provider_id, report.status, report.error_code), now)
        session.delete(report)
    session.execute(delete(EarlyReport).where(EarlyReport.received_at < now - KEEP))
    return len(rows)


def record_status(runtime: Runtime, status: StatusUpdate, at: datetime | None = None) -> bool:
    """Apply a delivery report (received `at`, default now) to the message it names; statuses only move forward.
    False if the message is unknown.

    A report can come before the sender has written down the provider's id for its message (Twilio reports a
    WhatsApp failure within a second): it is kept (see `keep`) and applied once the id is known.
    """
    rank = STATUS_RANK.get(status.status)
    if rank is None:
        return True
    with runtime.sessions() as session, session.begin():
        message = session.query(OutboundMessage).filter_by(provider_id=status.provider_id).with_for_update().first()
        if message is None:
            keep(session, status, at or runtime.now())
            return False
        apply_status(session, message, status, at or runtime.now())
    return True


def apply_status(session: Session, message: OutboundMessage, status: StatusUpdate, now: datetime) -> None:
    """A delivery report's effect on its message and, for errors that say so, on the contact."""
    rank = STATUS_RANK.get(status.status)
    if rank is None:
        return
    if rank >= STATUS_RANK.get(message.status, 0):
        message.status = status.status
        if status.error_code:
            message.error_code = status.error_code[:32]
        if status.status in (OutboundStatus.DELIVERED, OutboundStatus.READ) and message.delivered_at is None:
            message.delivered_at = now
    if status.error_code in UNREACHABLE_ERRORS:
        session.execute(update(Contact).where(Contact.id == message.contact_id).values(unreachable=True))
    elif status.error_code in OPTED_OUT_ERRORS:
        session.execute(update(Contact).where(Contact.id == message.contact_id).values(
            opted_out=True, opted_out_at=now, opt_in_withdrawn_at=now))
