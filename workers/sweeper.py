"""Periodic safety net: re-push what the queue lost (Redis down, a killed worker), release stuck sends, and apply
delivery reports that came before their message was recorded."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import select, update

from service import early_reports
from service import runtime as runtimes
from service.models import InboundMessage, OutboundMessage
from service.queue import INBOX, OUTBOX
from service.vocabulary import InboundStatus, OutboundStatus

log = logging.getLogger(__name__)

GRACE = timedelta(seconds=5)
BUSY_GRACE = timedelta(minutes=2)
STUCK_SENDING = timedelta(minutes=5)
LIMIT = 20_000


def sweep() -> dict[str, int]:
    """RQ job: push pending inbound and due outbound ids older than a few seconds; unstick abandoned sends."""
    rt = runtimes.current()
    now = rt.now()
    depth = _depth(rt)
    inbound_grace = GRACE if depth.get(INBOX, 0) == 0 else BUSY_GRACE
    outbound_grace = GRACE if depth.get(OUTBOX, 0) == 0 else BUSY_GRACE
    with rt.sessions() as session, session.begin():
        released = session.execute(
            update(OutboundMessage)
            .where(OutboundMessage.status == OutboundStatus.SENDING,
                   OutboundMessage.next_attempt_at < now - STUCK_SENDING)
            .values(status=OutboundStatus.QUEUED)
        ).rowcount
        reports = early_reports.apply(session, now)
        inbound = session.scalars(
            select(InboundMessage.id)
            .where(InboundMessage.status == InboundStatus.PENDING, InboundMessage.received_at < now - inbound_grace)
            .order_by(InboundMessage.id)
            .limit(LIMIT)
        ).all()
        outbound = session.scalars(
            select(OutboundMessage.id)
            .where(
                OutboundMessage.status == OutboundStatus.QUEUED,
                OutboundMessage.created_at < now - outbound_grace,
                (OutboundMessage.next_attempt_at.is_(None)) | (OutboundMessage.next_attempt_at <= now),
            )
            .order_by(OutboundMessage.id)
            .limit(LIMIT)
        ).all()
    if inbound:
        rt.dispatcher.push(INBOX, list(inbound))
    if outbound:
        rt.dispatcher.push(OUTBOX, list(outbound))
    for box in (INBOX, OUTBOX):
        if depth.get(box, 0) > 0:
            _ensure_drain(rt, box)
    if inbound or outbound or released or reports:
        log.info("sweep: %d inbound, %d outbound re-pushed, %d stuck sends released, %d early delivery reports "
                 "applied", len(inbound), len(outbound), released, reports)
    return {"inbound": len(inbound), "outbound": len(outbound), "released": released, "reports": reports}


def _depth(rt) -> dict[str, int]:
    """How many ids wait in the queue; while it is busy, older messages are probably still in it."""
    try:
        return rt.dispatcher.depth()
    except Exception:  # noqa: BLE001 - Redis down: push everything that is due
        return {}


def _ensure_drain(rt, box: str) -> None:
    """Ids waiting with no job to drain them (a job died mid-way, or a worker died taking it) get one."""
    try:
        rt.dispatcher.ensure_drain(box, verify=True)
    except Exception:  # noqa: BLE001 - Redis down: the next sweep tries again
        log.warning("sweep: could not schedule a drain of %s", box)
