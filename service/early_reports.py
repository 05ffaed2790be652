"""Delivery reports that come before the sender has written down which message they are about.

The provider answers the send with the message's id, and may report on it (a WhatsApp failure, most often) before
the sender's transaction that records that id commits. Such a report is kept here, keyed by the provider's id, and
applied as soon as the id is known: by the periodic sweep, and by the campaign job before it acts on failures.
Reports nobody claims (another system's messages on the same account) are dropped after a day.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from bots.base import StatusUpdate
from service.models import EarlyReport, OutboundMessage

KEEP = timedelta(days=1)
BATCH = 1000


def keep(session: Session, status: StatusUpdate, now: datetime) -> None:
    """Keep a report on a message not recorded yet (the furthest status of the message, when several come)."""
    from service.inbox import STATUS_RANK

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
    """Apply every kept report whose message is recorded now; drop those older than a day. How many applied."""
    from service.inbox import apply_status

    rows = session.execute(
        select(EarlyReport, OutboundMessage)
        .join(OutboundMessage, OutboundMessage.provider_id == EarlyReport.provider_id)
        .order_by(OutboundMessage.id)
        .limit(BATCH)
        .with_for_update(of=OutboundMessage)
    ).all()
    for report, message in rows:
        apply_status(session, message, StatusUpdate(report.provider_id, report.status, report.error_code), now)
        session.delete(report)
    session.execute(delete(EarlyReport).where(EarlyReport.received_at < now - KEEP))
    return len(rows)
