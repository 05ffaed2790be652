"""Send outgoing messages: claim queued rows, hand them to the provider, record what happened.

Claiming (`queued` -> `sending`) is one UPDATE, so two workers never send the same row. Messages to one contact go
out one after another in creation order; different contacts are sent concurrently. Provider `429`/`5xx` are retried
with exponential backoff; a blocked bot or an unsubscribed number marks the contact unreachable.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import TextClause, bindparam, select, text, update

from bots import make_sender
from bots._http import Client, PerThread
from bots.base import Outgoing, SendResult
from service import runtime as runtimes
from service import whatsapp
from service.db import among, json_rows
from service.models import Contact, OutboundMessage
from service.queue import OUTBOX
from service.runtime import Runtime
from service.throttle import debit
from service.vocabulary import OutboundStatus

log = logging.getLogger(__name__)

BATCH = 100
DRAIN_SECONDS = 2.0
MAX_ATTEMPTS = 6
CONCURRENCY = 16
_session = PerThread(Client)
_threads: ThreadPoolExecutor | None = None
_threads_pid = 0


def drain(max_seconds: float = DRAIN_SECONDS, batch: int = BATCH) -> int:
    """RQ job: send pushed message ids until the outbox is empty or the time is up.

    While full batches keep coming, another drain job is scheduled, so idle workers join in.
    """
    rt = runtimes.current()
    rt.dispatcher.draining(OUTBOX)
    sent = 0
    deadline = time.monotonic() + max_seconds
    while time.monotonic() < deadline:
        ids = rt.dispatcher.pop(OUTBOX, batch)
        if len(ids) == batch:
            rt.dispatcher.ensure_drain(OUTBOX)
        if not ids:
            return sent
        try:
            sent += send(ids)
        except Exception:
            rt.dispatcher.push(OUTBOX, ids, wake=False)
            raise
    rt.dispatcher.ensure_drain(OUTBOX)
    return sent


def backoff(attempts: int) -> timedelta:
    """2 s, 4 s, 8 s ... capped at 10 minutes."""
    return timedelta(seconds=min(600, 2 ** max(1, attempts)))


def send(ids: Sequence[int]) -> int:
    """Send the due, queued messages among `ids`; returns how many the provider accepted."""
    rt = runtimes.current()
    claimed = _claim(rt, ids)
    if not claimed:
        return 0
    by_contact: dict[int, list[Outgoing]] = defaultdict(list)
    for claim in claimed:
        by_contact[claim.contact_id].append(claim.outgoing)
    results: dict[int, SendResult | None] = {}
    if len(by_contact) == 1:
        for queue in by_contact.values():
            results.update(_send_in_order(rt, queue))
    else:
        for part in _pool().map(lambda q: _send_in_order(rt, q), by_contact.values()):
            results.update(part)
    _record(rt, claimed, results)
    debit(rt, [c.outgoing.channel for c in claimed if (r := results.get(c.outgoing.id)) is not None and r.ok])
    return sum(1 for r in results.values() if r is not None and r.ok)


@dataclass(frozen=True)
class _Claim:
    outgoing: Outgoing
    contact_id: int
    attempts: int


_o, _c = OutboundMessage.__table__, Contact.__table__
_READ_DUE = (
    select(_o.c.id, _o.c.channel, _o.c.kind, _o.c.body, _o.c.payload, _o.c.attempts, _o.c.contact_id,
           _o.c.session_id, _c.c.address_enc, _c.c.opted_out, _c.c.last_inbound_at)
    .join(_c, _c.c.id == _o.c.contact_id)
    .where(
        among(_o.c.id, "ids"),
        _o.c.status == OutboundStatus.QUEUED,
        (_o.c.next_attempt_at.is_(None)) | (_o.c.next_attempt_at <= bindparam("now")),
    )
    .order_by(_o.c.id)
    .with_for_update(of=_o, skip_locked=True)
)
"""Claiming's statements, built once (a statement built per batch costs more CPU than its round trip)."""
_CANCEL = (
    update(_o).where(among(_o.c.id, "ids")).values(status=OutboundStatus.CANCELLED, error="opted out")
)
_MARK_SENDING = (
    update(_o).where(among(_o.c.id, "ids"))
    .values(status=OutboundStatus.SENDING, attempts=_o.c.attempts + 1, next_attempt_at=bindparam("now"))
)


def _claim(rt: Runtime, ids: Sequence[int]) -> list[_Claim]:
    """Mark the due, queued messages among `ids` as `sending` and return them with their addresses."""
    now = rt.now()
    with rt.sessions() as session, session.begin():
        connection = session.connection()
        rows = connection.execute(_READ_DUE, {"ids": list(ids), "now": now}).all()
        sending, cancelled = [], []
        for row in rows:  # an opted-out contact still gets the confirmation of their STOP, and nothing else
            (cancelled if row.opted_out and row.kind not in ("optout", "ack") else sending).append(row)
        if cancelled:
            connection.execute(_CANCEL, {"ids": [row.id for row in cancelled]})
        templates: dict[int, dict] = {}
        if any(row.channel == "whatsapp" for row in sending):  # WhatsApp's 24-hour window: a template, or not sent
            on_whatsapp = [r for r in sending if r.channel == "whatsapp"]
            templates, closed = whatsapp.outside_window(rt, session, on_whatsapp, now)
            sending = [row for row in sending if row.id not in closed]
        if sending:
            connection.execute(_MARK_SENDING, {"ids": [row.id for row in sending], "now": now})
    decrypt = rt.vault.decrypt
    return [
        _Claim(
            Outgoing(id=row.id, channel=row.channel, address=decrypt(row.address_enc),
                     body="" if row.id in templates else row.body,
                     payload=templates.get(row.id, dict(row.payload or {}))),
            row.contact_id,
            row.attempts + 1,
        )
        for row in sending
    ]


def _send_in_order(rt: Runtime, queue: list[Outgoing]) -> dict[int, SendResult | None]:
    """Send one contact's messages in order; after a failure the rest wait for the retry (None)."""
    results: dict[int, SendResult | None] = {}
    blocked = False
    for outgoing in queue:
        if blocked:
            results[outgoing.id] = None
            continue
        result = _send_one(rt, outgoing)
        results[outgoing.id] = result
        blocked = not result.ok
    return results


def _send_one(rt: Runtime, outgoing: Outgoing) -> SendResult:
    try:
        sender = make_sender(outgoing.channel, rt.settings, _session())
        return sender.send(outgoing)
    except Exception as error:  # noqa: BLE001 - a sender bug must not lose the message
        log.exception("sender for %s failed", outgoing.channel)
        return SendResult(ok=False, retry=True, error=f"{type(error).__name__}: {error}")


def _pool() -> ThreadPoolExecutor:
    """The process's sending threads, kept between batches so each keeps its HTTP connections alive."""
    global _threads, _threads_pid
    if _threads is None or _threads_pid != os.getpid():
        _threads, _threads_pid = ThreadPoolExecutor(max_workers=CONCURRENCY, thread_name_prefix="send"), os.getpid()
    return _threads


def _record(rt: Runtime, claimed: list[_Claim], results: dict[int, SendResult | None]) -> None:
    """Store each result; a contact's messages held behind a retry wait for the same moment, to keep order."""
    now = rt.now()
    unreachable: set[int] = set()
    held_until: dict[int, object] = {}
    alike: dict[tuple[str, ...], list[dict]] = defaultdict(list)
    for claim in claimed:
        result = results.get(claim.outgoing.id)
        values = _outcome(claim, result, now, held_until)
        if result is not None and result.unreachable:
            unreachable.add(claim.contact_id)
        alike[tuple(sorted(values))].append(
            {"message_id": claim.outgoing.id, **{f"new_{k}": v for k, v in values.items()}}
        )
    table = OutboundMessage.__table__
    with rt.sessions() as session, session.begin():
        for columns, rows in alike.items():  # one statement per kind of outcome, not one per message
            if rt.engine.dialect.name == "postgresql":
                session.connection().execute(_recorded(columns), {"rows": json_rows(rows)})
                continue
            statement = update(table).where(table.c.id == bindparam("message_id"))
            session.execute(statement.values({c: bindparam(f"new_{c}") for c in columns}), rows)
        if unreachable:
            session.execute(update(Contact).where(Contact.id.in_(unreachable)).values(unreachable=True))


_OUTCOME_TYPES = {
    "status": "text", "provider_id": "text", "sent_at": "timestamptz", "error": "text", "error_code": "text",
    "attempts": "int", "next_attempt_at": "timestamptz",
}


@functools.lru_cache(maxsize=32)
def _recorded(columns: tuple[str, ...]) -> TextClause:
    """PostgreSQL: one UPDATE for every message with this kind of outcome, their values as one JSON document."""
    fields = ", ".join(f"new_{c} {_OUTCOME_TYPES[c]}" for c in columns)
    assignments = ", ".join(f"{c} = r.new_{c}" for c in columns)
    return text(
        f"UPDATE outbound_messages AS m SET {assignments} "
        f"FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(message_id bigint, {fields}) WHERE m.id = r.message_id"
    )


def _outcome(claim: _Claim, result: SendResult | None, now, held_until: dict) -> dict:
    if result is None:
        return {
            "status": OutboundStatus.QUEUED,
            "attempts": claim.attempts - 1,
            "next_attempt_at": held_until.get(claim.contact_id, now),
        }
    if result.ok:
        return {"status": OutboundStatus.SENT, "provider_id": result.provider_id, "sent_at": now, "error": None}
    values = {"error_code": result.error_code, "error": (result.error or "")[:2000], "status": OutboundStatus.FAILED}
    if result.retry and not result.unreachable and claim.attempts < MAX_ATTEMPTS:
        delay = backoff(claim.attempts)
        if result.retry_after:
            delay = max(delay, timedelta(seconds=result.retry_after))
        held_until[claim.contact_id] = now + delay
        values.update(status=OutboundStatus.QUEUED, next_attempt_at=now + delay)
    return values
