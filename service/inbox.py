"""What a webhook does with a verified provider request: store it durably (once), then wake a worker."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import insert, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from bots.base import Incoming, StatusUpdate
from service.models import Contact, InboundMessage, OutboundMessage
from service.privacy import InvalidAddress, normalize_phone
from service.queue import INBOX
from service.runtime import Runtime

log = logging.getLogger(__name__)

PHONE_CHANNELS = ("sms", "whatsapp")
STATUS_RANK = {
    "queued": 0, "accepted": 0, "scheduled": 0, "sending": 1, "sent": 2,
    "delivered": 3, "read": 4, "undelivered": 3, "failed": 3, "canceled": 3,
}
UNREACHABLE_ERRORS = {"21610", "21614", "30003", "30005", "30006", "63024"}


def identity(channel: str, address: str, default_region: str) -> str:
    """The form of an address that identifies a person on a channel (E.164 for phone channels)."""
    if channel in PHONE_CHANNELS:
        try:
            return normalize_phone(address, default_region)
        except InvalidAddress:
            return address.strip()
    return address.strip()


def row_for(runtime: Runtime, incoming: Incoming, received_at: datetime) -> dict:
    """The inbound_messages row of a parsed provider message: the address only hashed and encrypted."""
    settings = runtime.settings
    who = identity(incoming.channel, incoming.address, settings.default_region)
    reply_to = incoming.address if incoming.channel == "whatsapp" else who
    return {
        "channel": incoming.channel,
        "provider_id": incoming.provider_id[:128],
        "address_hash": runtime.vault.hash(incoming.channel, who),
        "address_enc": runtime.vault.encrypt(reply_to),
        "body": incoming.text,
        "payload": incoming.payload(),
        "sequence": incoming.sequence,
        "received_at": received_at,
        "status": "pending",
        "attempts": 0,
    }


def store(runtime: Runtime, incoming: Sequence[Incoming]) -> list[int | None]:
    """Store messages in one transaction and commit; the ids of new ones, None for redeliveries."""
    now = runtime.now()
    rows = [row_for(runtime, item, now) for item in incoming]
    with runtime.sessions() as session, session.begin():
        ids = insert_new(session, rows)
    runtime.dispatcher.push(INBOX, [i for i in ids if i is not None])
    return ids


def insert_new(session: Session, rows: list[dict]) -> list[int | None]:
    """INSERT ... ON CONFLICT DO NOTHING for each row; the new id, or None where the row was already there."""
    dialect = session.get_bind().dialect.name
    statement = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}.get(dialect, insert)
    ids: list[int | None] = []
    for row in rows:
        query = statement(InboundMessage).values(**row)
        if dialect in ("postgresql", "sqlite"):
            query = query.on_conflict_do_nothing(index_elements=["channel", "provider_id"])
        ids.append(session.scalar(query.returning(InboundMessage.id)))
    return ids


def record_status(runtime: Runtime, status: StatusUpdate) -> bool:
    """Apply a delivery report to the message it names; statuses only move forward. False if unknown."""
    rank = STATUS_RANK.get(status.status)
    if rank is None:
        return True
    with runtime.sessions() as session, session.begin():
        message = session.query(OutboundMessage).filter_by(provider_id=status.provider_id).with_for_update().first()
        if message is None:
            return False
        if rank >= STATUS_RANK.get(message.status, 0):
            message.status = status.status
            if status.error_code:
                message.error_code = status.error_code[:32]
            if status.status in ("delivered", "read") and message.delivered_at is None:
                message.delivered_at = runtime.now()
        if status.error_code in UNREACHABLE_ERRORS:
            session.execute(update(Contact).where(Contact.id == message.contact_id).values(unreachable=True))
    return True
