"""Periodic privacy work: retention of messages and payout numbers, erasures asked for by message.

    purge()   every minute: message bodies and provider payloads older than RETORNO_RETENTION_DAYS after their
              processing are emptied (inbound and outbound); paid (or duplicate) incentive records drop their
              number the same time after payment, keeping its keyed hash; ended dashboard sessions go; contacts
              who confirmed BORRAR are erased once their last reply went out; spooled records the database
              refused (the spool's rejected/ folder on this machine) are deleted after the same period.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta

from sqlalchemy import delete, func, or_, select, update

from service import rights
from service import runtime as runtimes
from service import spool as spools
from service.audit import aware
from service.incentives import DUPLICATE, SUCCEEDED
from service.models import (
    Contact,
    DashboardSession,
    InboundMessage,
    Incentive,
    OutboundMessage,
    RetentionMark,
)
from service.runtime import Runtime

log = logging.getLogger(__name__)

BATCH = 2000
PURGE_SECONDS = 20.0
"""One purge hands over after this long (the next one goes on where it stopped)."""
ERASE_GRACE = timedelta(minutes=10)
"""A respondent's erasure waits for their last reply this long at most."""
UNSENT = ("queued", "sending")


def purge() -> dict[str, int]:
    """RQ job (periodic): see the module's docstring; counts of what went."""
    rt = runtimes.current()
    now = rt.now()
    cutoff = now - timedelta(days=rt.settings.retention_days)
    deadline = time.monotonic() + PURGE_SECONDS
    counts = {
        "erased": _erase_requested(rt, now),
        "inbound": _purge_messages(rt, InboundMessage, "inbound", cutoff, deadline),
        "outbound": _purge_messages(rt, OutboundMessage, "outbound", cutoff, deadline),
        "payout_numbers": _drop_paid_numbers(rt, cutoff),
        "dashboard_sessions": _drop_sessions(rt, now),
        "spool_rejected": spools.of(rt).purge_rejected(now.timestamp()),
    }
    if any(counts.values()):
        log.info("privacy: %s", ", ".join(f"{n} {what}" for what, n in counts.items() if n))
    return counts


def _erase_requested(rt: Runtime, now: datetime) -> int:
    with rt.sessions() as session:
        waiting = session.scalars(
            select(Contact).where(Contact.erase_requested_at.is_not(None)).order_by(Contact.id).limit(100)
        ).all()
        due = []
        for contact in waiting:
            unsent = session.scalar(select(func.count(OutboundMessage.id)).where(
                OutboundMessage.contact_id == contact.id, OutboundMessage.status.in_(UNSENT)))
            if not unsent or now - _aware(contact.erase_requested_at) > ERASE_GRACE:
                due.append(contact)
    for contact in due:
        rights.erase(rt, [contact], "respondent", "message")
    return len(due)


def _purge_messages(rt: Runtime, model, name: str, cutoff: datetime, deadline: float) -> int:
    """Empty bodies and payloads in id order up to the first message too young (or not sent yet); where it
    stopped is kept (retention_marks), so each message is purged once and a purge reads only new rows."""
    purged = 0
    inbound = model is InboundMessage
    while time.monotonic() < deadline:
        with rt.sessions() as session, session.begin():
            mark = session.get(RetentionMark, name, with_for_update=True)
            if mark is None:
                mark = RetentionMark(name=name, last_id=0, updated_at=rt.now())
                session.add(mark)
                session.flush()
            if inbound:
                moment = func.coalesce(model.processed_at, model.received_at)
            else:
                moment = func.coalesce(model.sent_at, model.created_at)
            rows = session.execute(
                select(model.id, moment.label("at"), model.status).where(model.id > mark.last_id)
                .order_by(model.id).limit(BATCH)
            ).all()
            old = []
            for row in rows:
                if _aware(row.at) >= cutoff or (not inbound and row.status in UNSENT) or (
                        inbound and row.status == "pending"):
                    break
                old.append(row.id)
            if old:
                session.execute(update(model).where(model.id.in_(old)).values(body="", payload={})
                                .execution_options(synchronize_session=False))
                mark.last_id, mark.updated_at = old[-1], rt.now()
                purged += len(old)
        if len(old) < BATCH:
            return purged
    return purged


def _drop_paid_numbers(rt: Runtime, cutoff: datetime) -> int:
    """Paid records keep the number's keyed hash (a number is paid once per wave), not the number."""
    with rt.sessions() as session, session.begin():
        return session.execute(
            update(Incentive)
            .where(Incentive.status.in_((SUCCEEDED, DUPLICATE)), Incentive.phone_enc.is_not(None),
                   func.coalesce(Incentive.paid_at, Incentive.updated_at) < cutoff)
            .values(phone_enc=None)
            .execution_options(synchronize_session=False)
        ).rowcount


def _drop_sessions(rt: Runtime, now: datetime) -> int:
    with rt.sessions() as session, session.begin():
        return session.execute(
            delete(DashboardSession).where(or_(DashboardSession.expires_at < now - timedelta(days=1),
                                               DashboardSession.revoked_at < now - timedelta(days=1)))
            .execution_options(synchronize_session=False)
        ).rowcount


def _aware(moment: datetime) -> datetime:
    return aware(moment)
