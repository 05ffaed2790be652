"""What a webhook does with a verified provider request: store it durably (once), then wake a worker.

Group commit: the concurrent webhook requests of one process hand their rows to one committer thread, which writes
everything waiting in one INSERT and one COMMIT (one WAL flush), then answers each request. Under load, batches grow
by themselves (everything that arrived during the previous flush goes into the next); alone, a request waits for
exactly one commit. A request is answered 2xx only after its batch is committed, or, when the database cannot take
it (unreachable, or no commit within TIMEOUT), once it is fsynced in this machine's spool (service.spool). A batch
the database refuses for its data (not for being unavailable) is written again one request at a time, so only the
bad request fails.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
from collections.abc import Sequence
from datetime import datetime

import psycopg
from sqlalchemy import Connection, insert, update
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session

from bots import SPOKEN
from bots.base import Incoming, StatusUpdate
from bots.twilio import errors
from service import early_reports
from service import spool as spools
from service.db import UNAVAILABLE, cause, json_rows
from service.models import Contact, InboundMessage, OutboundMessage
from service.privacy import InvalidAddress, UnknownKey, Vault, holds_number, normalize_phone
from service.queue import INBOX
from service.runtime import Runtime

log = logging.getLogger(__name__)

PHONE_CHANNELS = ("sms", "whatsapp", "voice")
STATUS_RANK = {
    "queued": 0, "accepted": 0, "scheduled": 0, "sending": 1, "sent": 2,
    "delivered": 3, "read": 4, "undelivered": 3, "failed": 3, "canceled": 3,
}
UNREACHABLE_ERRORS = errors.codes(errors.UNREACHABLE)
OPTED_OUT_ERRORS = errors.codes(errors.OPTED_OUT)
"""Delivery errors that mark the contact: unreachable (a number that is not, or not on WhatsApp), or opted out
(they blocked the business on WhatsApp); bots/twilio/errors.py says what each code means."""


def identity(channel: str, address: str, default_region: str) -> str:
    """The form of an address that identifies a person on a channel (E.164 for phone channels)."""
    if channel in PHONE_CHANNELS:
        try:
            return normalize_phone(address, default_region)
        except InvalidAddress:
            return address.strip()
    return address.strip()


@functools.lru_cache(maxsize=65_536)
def _sealed(runtime: Runtime, channel: str, address: str) -> tuple[str, str]:
    """(keyed hash, ciphertext) of a sender's address; cached, since the same people write again and again."""
    who = identity(channel, address, runtime.settings.default_region)
    return runtime.vault.hash(channel, who), runtime.vault.encrypt(_reply_to(runtime, channel, address))


def _reply_to(runtime: Runtime, channel: str, address: str) -> str:
    """What replies are addressed to: WhatsApp's `whatsapp:+...` as it came, the identity elsewhere."""
    return address if channel == "whatsapp" else identity(channel, address, runtime.settings.default_region)


def unsealed_hash(runtime: Runtime, row: dict) -> dict:
    """A row spooled without its address hash (the hashing key could not be read then), with it."""
    if row.get("address_hash") is None:
        who = identity(row["channel"], runtime.vault.decrypt(row["address_enc"]), runtime.settings.default_region)
        row = {**row, "address_hash": runtime.vault.hash(row["channel"], who)}
    return row


def _spool_only() -> list[int | None]:
    raise TimeoutError("the hashing key could not be read from the database")


def row_for(runtime: Runtime, incoming: Incoming, received_at: datetime) -> dict:
    """The inbound_messages row of a parsed provider message: the address only hashed and encrypted, and so is
    anything that may be a phone number (see `sealed_numbers`).

    The keyed hash needs the hashing key, which a process reads from the database at its first hash: while the
    database cannot be reached the row gets no hash (`address_hash` None) and is spooled; the replay hashes it."""
    try:
        address_hash, address_enc = _sealed(runtime, incoming.channel, incoming.address)
    except Exception as error:
        if not (spools.unavailable(error) or isinstance(error, UnknownKey)):
            raise  # the database away, or a hashing key this process's keys cannot open: spooled, hashed on replay
        address_hash, address_enc = None, runtime.vault.encrypt(_reply_to(runtime, incoming.channel, incoming.address))
    body, payload = sealed_numbers(runtime.vault, incoming.text, incoming.payload())
    return {
        "channel": incoming.channel,
        "provider_id": incoming.provider_id[:128],
        "address_hash": address_hash,
        "address_enc": address_enc,
        "body": body,
        "payload": payload,
        "sequence": incoming.sequence,
        "received_at": received_at,
        "status": "pending",
        "attempts": 0,
    }


SEALED_FIELDS = ("body_enc", "contact_phone_enc")


def sealed_numbers(vault: Vault, body: str, payload: dict) -> tuple[str, dict]:
    """A shared contact's number, and a body that holds a number (a typed payout number, or anything with eight
    digits in a row), are stored encrypted: `payload["contact_phone_enc"]`, `payload["body_enc"]` (body empty).
    The worker reads them, and drops them once the message is processed (see workers.inbound)."""
    if "contact_phone" in payload:
        payload = dict(payload)
        payload["contact_phone_enc"] = vault.encrypt(payload.pop("contact_phone"))
    if holds_number(body):
        payload = {**payload, "body_enc": vault.encrypt(body)}
        body = ""
    return body, payload


def opened(vault: Vault, body: str, payload: dict) -> tuple[str, str | None]:
    """(text, shared contact number) of a stored message, sealed or not (rows from before sealing existed)."""
    text = vault.decrypt(payload["body_enc"]) if "body_enc" in payload else body
    if "contact_phone_enc" in payload:
        return text, vault.decrypt(payload["contact_phone_enc"])
    return text, payload.get("contact_phone")


def store(runtime: Runtime, incoming: Sequence[Incoming]) -> list[int | None]:
    """Store messages durably (group commit, or the spool while the database cannot take them); the ids of new ones,
    None for redeliveries and spooled messages. Raises SpoolFull when neither can keep them."""
    now = runtime.now()
    rows = [row_for(runtime, item, now) for item in incoming]
    if any(row["address_hash"] is None for row in rows):
        ids = spools.keep(runtime, "inbound", rows, _spool_only)
    else:
        ids = spools.keep(runtime, "inbound", rows, lambda: committer(runtime).submit(rows))
    return [None] * len(rows) if ids is None else ids


def insert_new(session: Session | Connection, rows: list[dict]) -> list[int | None]:
    """One INSERT ... ON CONFLICT DO NOTHING for all rows; per row its new id, or None if it was already stored."""
    if not rows:
        return []
    unique: dict[tuple[str, str], dict] = {}
    for row in rows:
        unique.setdefault((row["channel"], row["provider_id"]), row)
    dialect = session.get_bind().dialect.name if isinstance(session, Session) else session.dialect.name
    if dialect == "postgresql":
        returned = _insert_postgres(session, list(unique.values()))
    else:
        returned = _insert_portable(session, list(unique.values()))
    new = {(channel, provider_id): id_ for id_, channel, provider_id in returned}
    return [new.pop((row["channel"], row["provider_id"]), None) for row in rows]


_INSERT_JSON = (
    "INSERT INTO inbound_messages (channel, provider_id, address_hash, address_enc, body, payload, sequence, "
    "received_at, status, attempts) "
    "SELECT channel, provider_id, address_hash, address_enc, body, payload, sequence, received_at, status, attempts "
    "FROM jsonb_to_recordset(%s::jsonb) AS r(channel text, provider_id text, address_hash text, address_enc text, "
    "body text, payload jsonb, sequence bigint, received_at timestamptz, status text, attempts int) "
    "ON CONFLICT (channel, provider_id) DO NOTHING RETURNING id, channel, provider_id"
)


def _insert_postgres(session: Session | Connection, rows: list[dict]) -> list:
    """One prepared statement for the whole batch, its rows sent as one JSON document.

    Straight on the driver: encoding one JSON text costs a third of the CPU of per-column arrays through the ORM,
    and the committer thread's CPU is shared with every request thread of its process.
    """
    connection = session.connection() if isinstance(session, Session) else session
    driver = connection.connection.driver_connection
    document = json_rows(rows)
    with driver.cursor() as cursor:
        cursor.execute(_INSERT_JSON, (document,), prepare=True)
        return cursor.fetchall()


def _insert_portable(session: Session, rows: list[dict]) -> list:
    dialect = session.get_bind().dialect.name
    statement = {"sqlite": sqlite.insert}.get(dialect, insert)(InboundMessage)
    if dialect == "sqlite":
        statement = statement.on_conflict_do_nothing(index_elements=["channel", "provider_id"])
    returning = statement.returning(
        InboundMessage.id, InboundMessage.channel, InboundMessage.provider_id, sort_by_parameter_order=True
    )
    return session.execute(returning, rows).all()


class _Waiter:
    __slots__ = ("rows", "done", "ids", "error")

    def __init__(self, rows: list[dict]):
        self.rows = rows
        self.done = threading.Event()
        self.ids: list[int | None] = []
        self.error: BaseException | None = None


class GroupCommitter:
    """One thread per process that commits the rows of all waiting requests together."""

    MAX_ROWS = 1000
    TIMEOUT = 5.0  # then the request spools its rows: answered well within Twilio's 15 s, whatever the database does

    def __init__(self, runtime: Runtime):
        self.runtime = runtime
        self.pending: list[_Waiter] = []
        self.condition = threading.Condition()
        self.pid = os.getpid()
        self.thread: threading.Thread | None = None
        self.batches = 0
        self.rows = 0
        self.connection: Connection | None = None

    def submit(self, rows: list[dict]) -> list[int | None]:
        """Block until `rows` are committed; their ids (None for redeliveries). Raises what the commit raised."""
        waiter = _Waiter(rows)
        with self.condition:
            self._ensure_thread()
            self.pending.append(waiter)
            self.condition.notify()
        if not waiter.done.wait(self.TIMEOUT):
            raise TimeoutError("the database did not commit in time")
        if waiter.error is not None:
            raise waiter.error
        return waiter.ids

    def _ensure_thread(self) -> None:
        if self.thread is None or not self.thread.is_alive() or self.pid != os.getpid():
            if self.pid != os.getpid():
                self.connection = None  # the parent's; a forked child opens its own
            self.pid = os.getpid()
            self.thread = threading.Thread(target=self._run, name="group-commit", daemon=True)
            self.thread.start()

    def _run(self) -> None:
        while True:
            with self.condition:
                while not self.pending:
                    self.condition.wait()
                batch, total = [], 0
                while self.pending and (not batch or total + len(self.pending[0].rows) <= self.MAX_ROWS):
                    waiter = self.pending.pop(0)
                    batch.append(waiter)
                    total += len(waiter.rows)
            self._commit(batch)

    def _commit(self, batch: list[_Waiter]) -> None:
        rows = [row for waiter in batch for row in waiter.rows]
        try:
            ids = self._write(rows)
        except BaseException as error:  # noqa: BLE001 - every waiting request must hear about it
            if len(batch) > 1 and isinstance(error, Exception) and cause(error) != UNAVAILABLE:
                self._commit_each(batch)
                return
            for waiter in batch:
                waiter.error = error
                waiter.done.set()
            return
        self.batches += 1
        self.rows += len(rows)
        self.runtime.dispatcher.push(INBOX, [i for i, row in zip(ids, rows, strict=True)
                                             if i is not None and row["channel"] not in SPOKEN])
        position = 0
        for waiter in batch:
            waiter.ids = ids[position:position + len(waiter.rows)]
            position += len(waiter.rows)
            waiter.done.set()

    def _commit_each(self, batch: list[_Waiter]) -> None:
        """A batch refused for its rows: each request's rows on their own, so one bad request fails alone."""
        log.warning("a group commit of %d requests was refused; writing them one by one", len(batch))
        for waiter in batch:
            self._commit([waiter])

    def _write(self, rows: list[dict]) -> list[int | None]:
        """Insert the batch and commit it; on PostgreSQL one autocommit statement, so one round trip."""
        if self.runtime.engine.dialect.name != "postgresql":
            with self.runtime.sessions() as session, session.begin():
                return insert_new(session, rows)
        for attempt in (1, 2):
            connection = self._connection()
            try:
                return insert_new(connection, rows)
            except psycopg.OperationalError as error:
                # a connection broken since the last batch (database restarted): once more on a new one
                self._drop_connection()
                if attempt == 2:
                    raise OperationalError("INSERT INTO inbound_messages", None, error) from error
            except psycopg.Error as error:
                self._drop_connection()
                raise DBAPIError("INSERT INTO inbound_messages", None, error) from error
        raise AssertionError("unreachable")

    def _connection(self) -> Connection:
        """The committer's own autocommit connection, kept between batches (no pool checkout or ping per batch)."""
        if self.connection is None or self.connection.closed:
            self.connection = self.runtime.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        return self.connection

    def _drop_connection(self) -> None:
        if self.connection is not None:
            try:
                self.connection.invalidate()
                self.connection.close()
            except Exception:  # noqa: BLE001 - a broken connection may fail to close; it is dropped anyway
                pass
            self.connection = None


_committers: dict[int, GroupCommitter] = {}
_committers_lock = threading.Lock()


def committer(runtime: Runtime) -> GroupCommitter:
    """The group committer of this runtime (one per process)."""
    key = id(runtime)
    with _committers_lock:
        found = _committers.get(key)
        if found is None or found.runtime is not runtime:
            found = _committers[key] = GroupCommitter(runtime)
        return found


def store_status(runtime: Runtime, status: StatusUpdate) -> None:
    """Apply a delivery report, or spool it while the database cannot take it (SpoolFull when neither can)."""
    item = spools.status_item(status, runtime.now())
    spools.keep(runtime, "status", [item], lambda: record_status(runtime, status))


def record_status(runtime: Runtime, status: StatusUpdate, at: datetime | None = None) -> bool:
    """Apply a delivery report (received `at`, default now) to the message it names; statuses only move forward.
    False if the message is unknown.

    A report can come before the sender has written down the provider's id for its message (Twilio reports a
    WhatsApp failure within a second): it is kept (service/early_reports.py) and applied once the id is known.
    """
    rank = STATUS_RANK.get(status.status)
    if rank is None:
        return True
    with runtime.sessions() as session, session.begin():
        message = session.query(OutboundMessage).filter_by(provider_id=status.provider_id).with_for_update().first()
        if message is None:
            early_reports.keep(session, status, at or runtime.now())
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
        if status.status in ("delivered", "read") and message.delivered_at is None:
            message.delivered_at = now
    if status.error_code in UNREACHABLE_ERRORS:
        session.execute(update(Contact).where(Contact.id == message.contact_id).values(unreachable=True))
    elif status.error_code in OPTED_OUT_ERRORS:
        session.execute(update(Contact).where(Contact.id == message.contact_id).values(
            opted_out=True, opted_out_at=now, opt_in_withdrawn_at=now))
