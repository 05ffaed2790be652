"""Process inbound messages: one respondent at a time, in arrival order, each message once.

A batch locks the contacts it touches (row locks, in id order), runs the engine on each pending message and stores
answers, session state, outgoing messages and the message's new status in one transaction. Several workers on
several machines can run batches at once: a second worker touching the same contact waits for the lock and then
finds the messages already processed.

When a batch fails, nothing is lost, nothing is processed twice, and one respondent's bug never stops the others:

1. prepare (`_prepare`, PostgreSQL only): the engine runs in the batch's open transaction. If that raises (credit
   short, a deadlock, a bad message), the transaction is dropped and `process` runs the same ids in one go.
2. process (`process`): the batch in one transaction, its budget changes deferred to the end of the batch;
3. retry (`retrying`): a deadlock or serialization victim (SQLSTATE 40P01, 40001) is run again, 4 times at most;
4. within budget (`incentives.within_budget`): a batch that promised more credit than its wave has left is run
   again, holding and recording credit one by one;
5. one by one (`_one_by_one`): any other failure runs the ids again, one contact per transaction (retried as in 3);
6. mark failed (`_mark_failed`): a contact whose transaction still fails has its pending messages set `failed`
   with the error (scrubbed of numbers and tokens), set aside for staff (`retorno inbox failed`, `retry`).

The database being unavailable (a lost or refused connection, a timeout) is no message's fault: it is raised from
any step, the ids go back to the inbox (`drain`), the job fails, and the messages, still `pending` in the
database, are processed by a later job (the sweeper pushes pending messages again after its grace).
The writer thread (`_write`, PostgreSQL) writes and commits a prepared batch; if that fails, nothing was
committed, so it runs the same ids through `process` (2 to 6); if that fails too, the ids go back to the inbox
and the error ends the drain job.
"""

from __future__ import annotations

import json
import logging
import os
import random
import secrets
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Row, bindparam, delete, insert, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session

from bots import SPOKEN, TEST_CHANNELS, render
from bots.base import Received
from service import runtime as runtimes
from service import whatsapp
from service.addresses import PHONE_CHANNELS
from service.db import UNAVAILABLE, among, aware, cause, json_rows
from service.inbox import SEALED_FIELDS, opened
from service.logs import scrub
from service.models import Answer, Contact, InboundMessage, OutboundMessage, SurveySession
from service.queue import INBOX, OUTBOX
from service.rows import (
    ANSWER_COLUMNS,
    OUTBOUND_NEW,
    SESSION_CHANGING,
    SESSION_READ,
    SESSION_STAMPS,
    SessionRow,
    insert_from_json,
    table_columns,
    update_from_json,
    upsert,
)
from service.runtime import Runtime
from service.vocabulary import EventKind, InboundStatus, OutboundStatus
from surveys import engine
from surveys.definition import Definition
from surveys.engine import Inbound, State, Step
from workers import incentives

log = logging.getLogger(__name__)

BATCH = 500
"""Messages per transaction at most: per-batch costs amortized, contacts locked for a fraction of a second."""
DRAIN_SECONDS = 2.0
"""A drain job hands over after this long, so periodic jobs are not kept waiting (and at once to a waiting send)."""
TO_OPTED_OUT = (EventKind.OPTED_OUT, EventKind.ERASE_REQUESTED, EventKind.ERASE_CONFIRMED)
"""Events whose replies reach a respondent who opted out (the confirmation of their STOP or erasure)."""
REPLY_KINDS = ("text", "button", "contact", "photo", "video", "document", "animation", "audio", "voice")


def drain(max_seconds: float = DRAIN_SECONDS, batch: int = BATCH) -> int:
    """RQ job: process pushed message ids until the inbox is empty or the time is up.

    While full batches keep coming, another drain job is scheduled, so idle workers join in. On PostgreSQL a
    batch's writes and commit run on a second thread while the next batch is prepared (the database writes while
    the engine runs); on SQLite, which has one writer at a time, batches run one after the other.
    """
    rt = runtimes.current()
    rt.dispatcher.draining(INBOX)
    overlap = rt.engine.dialect.name == "postgresql"
    done, writing, emptied = 0, None, False
    deadline = time.monotonic() + max_seconds
    try:
        while time.monotonic() < deadline:
            ids = rt.dispatcher.pop(INBOX, batch)
            if len(ids) == batch:
                rt.dispatcher.ensure_drain(INBOX)
            if not ids:
                emptied = True
                break
            prepared = None
            try:
                prepared = _prepare(rt, ids) if overlap else None
                if prepared is None:
                    done += process(ids)
                else:
                    done += _finished(writing)
                    writing, prepared = _writer().submit(_write, rt, prepared), None
            except Exception:
                if prepared is not None:
                    prepared.session.close()
                rt.dispatcher.push(INBOX, ids, wake=False)
                raise
            if rt.dispatcher.send_waiting():
                break  # replies waiting for a free worker go first; another drain job takes over the inbox
    except BaseException:
        if writing is not None:
            wait([writing])  # the job ends with no commit in flight (its outcome is logged by _write)
        raise
    done += _finished(writing)
    if not emptied:
        rt.dispatcher.ensure_drain(INBOX)
    return done


def process(ids: Sequence[int]) -> int:
    """Process the pending messages among `ids` (and earlier pending ones of the same contacts)."""
    rt = runtimes.current()
    try:
        result = retrying(lambda: incentives.within_budget(lambda strict: _Batch(rt, strict).run(ids)))
    except (OperationalError, DBAPIError) as error:
        if _is_unavailable(error):
            raise
        log.exception("batch of %d messages failed; retrying them one contact at a time", len(ids))
        result = _one_by_one(rt, ids)
    except Exception:
        log.exception("batch of %d messages failed; retrying them one contact at a time", len(ids))
        result = _one_by_one(rt, ids)
    _committed(rt, result)
    return result.processed


@dataclass
class _Prepared:
    """A batch the engine has run, its transaction open, its writes not yet made."""

    ids: Sequence[int]
    batch: _Batch
    session: Session
    result: _Result


def _prepare(rt: Runtime, ids: Sequence[int]) -> _Prepared | None:
    """Run a batch up to its writes; None when it did not go through (`process` then takes the ids over)."""
    session = rt.sessions()
    batch = _Batch(rt)
    try:
        session.begin()
        return _Prepared(ids, batch, session, batch.prepare(session, ids))
    except Exception as error:  # noqa: BLE001 - budget short, deadlock, a bad message: `process` knows what to do
        log.info("preparing a batch of %d messages stopped (%s); processing it in one go", len(ids),
                 type(error).__name__)
        session.close()
        return None


def _write(rt: Runtime, prepared: _Prepared) -> int:
    """On the writer thread: write and commit a prepared batch (or process its ids again if that fails)."""
    try:
        with prepared.session:
            prepared.batch.write(prepared.session, prepared.result)
            prepared.session.commit()
    except Exception as error:  # noqa: BLE001 - nothing was committed: the messages are still pending
        log.info("writing a batch of %d messages failed (%s); processing them again", len(prepared.ids),
                 type(error).__name__)
        try:
            return process(prepared.ids)
        except Exception:
            log.exception("a batch of %d messages failed again; back to the inbox", len(prepared.ids))
            rt.dispatcher.push(INBOX, prepared.ids, wake=False)
            raise
    _committed(rt, prepared.result)
    return prepared.result.processed


def _finished(writing: Future[int] | None) -> int:
    return 0 if writing is None else writing.result()


def _committed(rt: Runtime, result: _Result) -> None:
    """After a batch's commit: its replies to the senders, its deferred messages back, its credits to issue."""
    rt.dispatcher.push(OUTBOX, result.outbound_ids)
    rt.dispatcher.push(INBOX, result.deferred_ids)
    incentives.wake(rt, result.incentive_ids)


_writers: dict[int, ThreadPoolExecutor] = {}


def _writer() -> ThreadPoolExecutor:
    """This process's batch-writing thread (a forked child starts its own)."""
    pid = os.getpid()
    if pid not in _writers:
        _writers[pid] = ThreadPoolExecutor(max_workers=1, thread_name_prefix="inbound-writer")
    return _writers[pid]


def retrying(work, attempts: int = 4):
    """Run a transaction again when the database chose it as a deadlock or serialization victim."""
    for attempt in range(attempts):
        try:
            return work()
        except DBAPIError as error:
            if attempt == attempts - 1 or not _is_transient(error):
                raise
            log.info("transaction retried after %s", type(error.orig).__name__)
            time.sleep(0.05 * (attempt + 1) + random.random() * 0.05)
    raise AssertionError("unreachable")


def _is_transient(error: DBAPIError) -> bool:
    return getattr(error.orig, "sqlstate", None) in ("40P01", "40001")


def _is_unavailable(error: DBAPIError) -> bool:
    """A lost or refused connection or a timeout (worth retrying later), not a problem with the messages."""
    return cause(error) == UNAVAILABLE


def _one_by_one(rt: Runtime, ids: Sequence[int]) -> _Result:
    total = _Result()
    with rt.sessions() as session:
        keys = session.execute(
            select(InboundMessage.channel, InboundMessage.address_hash)
            .where(InboundMessage.id.in_(ids), InboundMessage.status == InboundStatus.PENDING)
            .distinct()
        ).all()
    for channel, address_hash in keys:
        try:
            result = retrying(lambda key=(channel, address_hash): _Batch(rt, strict=True).run(ids, only=key))
        except (OperationalError, DBAPIError) as error:
            if _is_unavailable(error):
                raise
            _mark_failed(rt, channel, address_hash, error)
            continue
        except Exception as error:  # noqa: BLE001 - one respondent's bug must not stop the others
            _mark_failed(rt, channel, address_hash, error)
            continue
        total.processed += result.processed
        total.outbound_ids.extend(result.outbound_ids)
        total.incentive_ids.extend(result.incentive_ids)
    return total


def _mark_failed(rt: Runtime, channel: str, address_hash: str, error: BaseException) -> None:
    log.error("messages of one contact failed and were set aside: %s", type(error).__name__, exc_info=error)
    with rt.sessions() as session, session.begin():
        session.execute(
            update(InboundMessage)
            .where(
                InboundMessage.channel == channel,
                InboundMessage.address_hash == address_hash,
                InboundMessage.status == InboundStatus.PENDING,
            )
            .values(
                status=InboundStatus.FAILED,
                attempts=InboundMessage.attempts + 1,
                error=scrub(f"{type(error).__name__}: {error}")[:2000],  # no number or token kept
            )
        )


@dataclass
class _Result:
    processed: int = 0
    outbound_ids: list[int] = field(default_factory=list)
    incentive_ids: list[int] = field(default_factory=list)
    deferred_ids: list[int] = field(default_factory=list)
    """Messages of contacts another worker was processing: pushed back, for after its commit."""


class _Batch:
    """One transaction's worth of messages."""

    def __init__(self, rt: Runtime, strict: bool = False):
        self.rt = rt
        self.strict = strict
        """Hold incentive credit at each consent (else once, at the end of the batch)."""
        self.catalog = rt.catalog
        self.now = rt.now()
        self.outbound: list[dict[str, Any]] = []
        """Rows of outgoing messages, written in one statement at the end of the batch."""
        self.handled: list[dict[str, Any]] = []
        """(id, status, contact) of each inbound message handled, written in one statement at the end."""
        self.answers: dict[tuple[int, str], dict[str, Any]] = {}
        self.postgres = rt.engine.dialect.name == "postgresql"
        self.session_ids: list[int] = []
        """Ids taken from the sessions' sequence in advance, so new sessions need no INSERT of their own."""
        self.created: dict[tuple[int, str], SessionRow] = {}
        self.touched: dict[int, SessionRow] = {}
        """Sessions the batch changed, by id: written in two statements at the end (new ones, changed ones)."""
        self.incentive_ids: list[int] = []
        self.sealed: list[int] = []
        """Messages that held a number (sealed at the webhook): the batch drops it once they are processed."""
        self.siblings: dict[int, list[int]] = {}
        """The same person's contacts on the other kind of phone channel, by contact id (see `_siblings`)."""
        self.dropped: dict[int, set[str]] = {}
        """Sessions of respondents screened out (by id): only these answers of theirs are kept."""

    def run(self, ids: Sequence[int], only: tuple[str, str] | None = None) -> _Result:
        with self.rt.sessions() as session, session.begin():
            result = self.prepare(session, ids, only)
            self.write(session, result)
        return result

    def prepare(self, session: Session, ids: Sequence[int], only: tuple[str, str] | None = None) -> _Result:
        """Lock the contacts, run the engine on each pending message and settle the budget (or raise BudgetShort);
        `write` then writes the rest."""
        result = _Result()
        self.catalog.ensure_published()
        self.tally = incentives.tally(session, self.strict, lambda: self._write_sessions(session, new_only=True))
        keys, by_key = self._keys(session, ids, only)
        if not keys:
            return result
        contacts = self._lock_contacts(session, keys, wait=only is not None)
        if len(contacts) < len(keys):
            result.deferred_ids = sorted(i for key in keys if key not in contacts for i in by_key[key])
            keys = {key: enc for key, enc in keys.items() if key in contacts}
        messages = self._pending(session, keys)
        latest = self._latest_sessions(session, [c.id for c in contacts.values()], self.siblings)
        with session.no_autoflush:
            for key, queue in messages.items():
                contact = contacts[key]
                for message in queue:
                    latest[contact.id] = self._handle(session, contact, latest.get(contact.id), message)
                    result.processed += 1
        self._write_sessions(session, new_only=True)
        incentives.close_tally(self.tally)
        self.incentive_ids.extend(self.tally.due)
        session.flush()
        return result

    def write(self, session: Session, result: _Result) -> None:
        """Write what `prepare` worked out: the sessions' changes, the messages' statuses, answers, replies."""
        self._write_sessions(session)
        self._write_handled(session)
        self._drop_sealed(session)
        self._write_answers(session)
        self._drop_answers(session)
        result.outbound_ids = self._write_outbound(session)
        result.incentive_ids = list(self.incentive_ids)

    # -- loading ------------------------------------------------------------------------------------------------

    def _keys(
        self, session: Session, ids: Sequence[int], only: tuple[str, str] | None
    ) -> tuple[dict[tuple[str, str], str], dict[tuple[str, str], list[int]]]:
        """The (channel, address hash) of each pending message among `ids`: with its encrypted address, and with
        the message ids."""
        rows = session.connection().execute(_READ_KEYS, {"ids": list(ids)}).all()
        keys: dict[tuple[str, str], str] = {}
        by_key: dict[tuple[str, str], list[int]] = defaultdict(list)
        for id_, channel, hashed, enc, status in rows:  # by primary key alone: pending is checked here
            if status == InboundStatus.PENDING and (only is None or (channel, hashed) == only):
                keys[(channel, hashed)] = enc
                by_key[(channel, hashed)].append(id_)
        return keys, by_key

    def _lock_contacts(
        self, session: Session, keys: dict[tuple[str, str], str], wait: bool = False
    ) -> dict[tuple[str, str], Contact]:
        """Find or create each contact, then lock them in id order (no deadlocks between workers).

        Contacts another worker has locked are left out (it is processing their messages), unless that is all of
        them, or `wait`: then this batch waits for their locks.
        """
        ids, phones = self._contact_ids(session, keys)
        missing = [k for k in keys if k not in ids]
        if missing:
            self._create_contacts(session, missing, keys)
            ids, phones = self._contact_ids(session, keys)
        self.siblings = self._siblings(session, phones)
        wanted = {"ids": sorted({*ids.values(), *(s for found in self.siblings.values() for s in found)})}
        locked = {} if wait else self._usable(session.scalars(_LOCK_CONTACTS_SKIPPING, wanted).all(), keys)
        return locked or self._usable(session.scalars(_LOCK_CONTACTS, wanted).all(), keys)

    def _usable(self, locked: Sequence[Contact], keys: dict) -> dict[tuple[str, str], Contact]:
        """The batch's contacts among those locked whose siblings are locked too."""
        held = {c.id for c in locked}
        return {(c.channel, c.address_hash): c for c in locked if (c.channel, c.address_hash) in keys
                and all(s in held for s in self.siblings.get(c.id, ()))}

    def _siblings(self, session: Session, phones: dict[int, tuple[str, str]]) -> dict[int, list[int]]:
        """The same person's contacts on the other kind of phone channel (a caller's SMS or WhatsApp contact, an
        SMS or WhatsApp contact's voice contact): they share one session, so the batch locks them too.

        `phones`: the batch's phone contacts, id -> (channel, phone hash). One read by phone hash, paired here: a
        self-join planned on a young table's statistics compared every contact with every other."""
        found: dict[int, list[int]] = defaultdict(list)
        if not phones:
            return found
        same_phone: dict[str, list[tuple[int, str]]] = defaultdict(list)
        rows = session.connection().execute(_READ_SAME_PHONE, {"hashes": sorted({h for _, h in phones.values()})})
        for id_, channel, phone_hash in rows:
            same_phone[phone_hash].append((id_, channel))
        for contact_id, (channel, phone_hash) in phones.items():
            for other_id, other_channel in same_phone.get(phone_hash, ()):
                if other_id != contact_id and (channel == "voice") != (other_channel == "voice"):
                    found[contact_id].append(other_id)
        return found

    def _contact_ids(
        self, session: Session, keys: Iterable[tuple[str, str]]
    ) -> tuple[dict[tuple[str, str], int], dict[int, tuple[str, str]]]:
        """The ids of the contacts of `keys` that exist, and (channel, phone hash) of those on a phone channel."""
        wanted = set(keys)
        ids: dict[tuple[str, str], int] = {}
        phones: dict[int, tuple[str, str]] = {}
        for channel, hashed, id_, phone_hash in session.connection().execute(_READ_CONTACT_IDS, _by_key(wanted)):
            if (channel, hashed) in wanted:
                ids[(channel, hashed)] = id_
                if phone_hash and channel in _SIBLING_CHANNELS:
                    phones[id_] = (channel, phone_hash)
        return ids, phones

    def _create_contacts(self, session: Session, missing: list[tuple[str, str]], keys: dict) -> None:
        statement = postgresql.insert if self.postgres else sqlite.insert
        vault = self.rt.vault
        rows = []
        for channel, hashed in sorted(missing):
            row: dict[str, Any] = {
                "public_id": secrets.token_hex(8),
                "channel": channel,
                "address_hash": hashed,
                "address_enc": keys[(channel, hashed)],
                "phone_hash": None,
                "tags": [],
                "opted_out": False,
                "unreachable": False,
                "test": channel in TEST_CHANNELS,
                "created_at": self.now,
                "updated_at": self.now,
            }
            if channel in PHONE_CHANNELS:
                from service.addresses import identity

                phone = identity(channel, vault.decrypt(keys[(channel, hashed)]), self.rt.settings.default_region)
                row["phone_hash"] = vault.hash("phone", phone)
            rows.append(row)
        table = Contact.__table__
        session.execute(statement(table).on_conflict_do_nothing(index_elements=["channel", "address_hash"]), rows)

    def _pending(self, session: Session, keys: dict[tuple[str, str], str]) -> dict[tuple[str, str], list]:
        """Each contact's pending messages in order, as plain rows (the batch writes their new status itself)."""
        rows = session.connection().execute(_READ_PENDING, _by_key(keys)).all()
        grouped: dict[tuple[str, str], list[Row]] = defaultdict(list)
        for row in rows:
            key = (row.channel, row.address_hash)
            if key in keys:
                grouped[key].append(row)
        for key, queue in grouped.items():
            if key[0] == "telegram":
                queue.sort(key=_telegram_order)
        return grouped

    def _latest_sessions(
        self, session: Session, contact_ids: list[int], siblings: dict[int, list[int]] | None = None
    ) -> dict[int, SessionRow]:
        """Each contact's latest session; where the person has a sibling contact (see `_siblings`), the one of
        theirs that is under way (else the newest), so a call goes on where the SMS stopped and back."""
        siblings = siblings or {}
        wanted = sorted({*contact_ids, *(s for found in siblings.values() for s in found)})
        rows = session.connection().execute(_READ_LATEST_SESSIONS, {"contacts": wanted}).all()
        latest: dict[int, SessionRow] = {}
        for row in rows:
            if row.contact_id not in latest:
                latest[row.contact_id] = SessionRow(*row)
        for contact_id in contact_ids:
            candidates = [latest[c] for c in (contact_id, *siblings.get(contact_id, ())) if c in latest]
            if candidates:
                latest[contact_id] = max(candidates, key=lambda r: (r.status in _UNDER_WAY, r.id))
        return {c: latest[c] for c in contact_ids if c in latest}

    # -- one message ----------------------------------------------------------------------------------------

    def _handle(
        self, session: Session, contact: Contact, current: SessionRow | None, message: Row
    ) -> SessionRow | None:
        payload = message.payload or {}
        handled = {"id": message.id, "status": InboundStatus.DONE, "contact_id": contact.id}
        self.handled.append(handled)
        received = Received.of(payload)
        if received.callback_query_id:
            self._send(session, contact, None, "", {"callback_query_id": received.callback_query_id}, "ack")
        text, shared = opened(self.rt.vault, message.body or "", payload)
        if SEALED_FIELDS[0] in payload or SEALED_FIELDS[1] in payload:
            self.sealed.append(message.id)  # a number that served its purpose: dropped when the batch writes
        inbound = Inbound(
            text=text,
            button=received.button,
            kind=received.kind,
            at=aware(message.received_at),
            language_hint=received.language_hint,
            contact=shared,
            channel=contact.channel,
        )
        answers_template = False
        if contact.channel == "whatsapp":
            inbound, answers_template = whatsapp.read_reply(contact, inbound, received.button_payload)
        found = engine.keyword(inbound.text) if inbound.button is None else None
        if contact.opted_out and not (found and found[0] in ("opt_in", "erase")):
            handled["status"] = InboundStatus.IGNORED
            return current
        definition, state, row = self._conversation(session, contact, current, inbound)
        if answers_template and state is not None and state.status == engine.IN_PROGRESS:
            step = whatsapp.ask_again(definition, state, inbound)  # the template did not show the question
        else:
            payout = incentives.Payout(self.rt, session, contact, row, definition, self.now, self.tally)
            step = payout.step(state, lambda available: engine.handle(
                definition, state, inbound, incentive_available=available, ask_phone=payout.ask_phone,
                phone_region=self.rt.settings.default_region,
            ))
            self.incentive_ids.extend(payout.due)
        row = self._save(session, contact, row, definition, step, message)
        self._apply_events(session, contact, step)
        self._screened_out(row, step)
        for reply in step.replies:
            body, extra = render(contact.channel, reply)
            kind = "optout" if any(e.kind in TO_OPTED_OUT for e in step.events) else "reply"
            self._send(session, contact, row, body, extra, kind)
        return row

    def _conversation(
        self, session: Session, contact: Contact, current: SessionRow | None, inbound: Inbound
    ) -> tuple[Definition, State | None, SessionRow | None]:
        """The survey, state and session row this message belongs to (a new survey on a start keyword)."""
        wanted = self.catalog.for_keyword(inbound.text, session) if inbound.button is None else None
        if current is not None:
            finished = current.status in (engine.COMPLETED, engine.DECLINED, engine.EXPIRED, engine.INELIGIBLE)
            if not (finished and wanted is not None and wanted.id != current.survey_id):
                definition = self.catalog.get(current.survey_id, current.version, session)
                return definition, current.engine_state(), current
            existing = self.created.get((contact.id, wanted.id)) or self._touched(session.connection().execute(
                select(*_SESSION_COLUMNS).where(
                    SurveySession.contact_id == contact.id, SurveySession.survey_id == wanted.id
                ).order_by(SurveySession.id.desc()).limit(1)
            ).first())
            if existing is not None:
                definition = self.catalog.get(existing.survey_id, existing.version, session)
                return definition, existing.engine_state(), existing
        definition = wanted or self.catalog.default(session)
        state = engine.new_state(definition, inbound)
        if contact.language in definition.languages:
            state.language = contact.language
        return definition, state, None

    def _save(
        self,
        session: Session,
        contact: Contact,
        row: SessionRow | None,
        definition: Definition,
        step: Step,
        message: Row,
    ) -> SessionRow:
        state = step.state
        if row is None:
            row = self._new_session(session, contact, definition, state)
        self.touched[row.id] = row
        row.status = state.status if state.status != engine.NEW else engine.IN_PROGRESS
        row.question = state.question
        row.language = state.language
        row.live = state
        kinds = {e.kind for e in step.events}
        if EventKind.CONSENTED in kinds:
            row.consented_at = self.now
        if EventKind.COMPLETED in kinds:
            row.completed_at = self.now
        if step.answers:
            for answer in step.answers:
                self._store_answer(session, row, definition, answer, message.id)
        return row

    def _new_session(self, session: Session, contact: Contact, definition: Definition, state: State) -> SessionRow:
        """A new session row; on PostgreSQL its id comes from the sequence and it is written with the batch."""
        row = SessionRow(
            id=0, contact_id=contact.id, survey_id=definition.id, version=definition.version, wave=1,
            status=engine.IN_PROGRESS, question=None, language=state.language, region=None, state={},
            consented_at=None, completed_at=None, unwritten=self.postgres,
        )
        if self.postgres:
            row.id = self._session_id(session)
        else:
            row.id = session.scalar(insert(SurveySession).values(
                **row.columns(), started_at=self.now, last_activity_at=self.now, reminders_sent=0,
                updated_at=self.now,
            ).returning(SurveySession.id))
        self.created[(contact.id, definition.id)] = row
        return row

    def _touched(self, found: Row | None) -> SessionRow | None:
        """An earlier session read again: the batch's own copy when it has changed it already."""
        if found is None:
            return None
        return self.touched.get(found.id) or SessionRow(*found)

    def _store_answer(self, session, row: SessionRow, definition: Definition, answer, inbound_id: int) -> None:
        question = definition.question(answer.question_id)
        in_gap = None
        if question.is_indicator and not answer.skipped and answer.value is not None:
            values = answer.value if isinstance(answer.value, list) else [answer.value]
            in_gap = any(v in question.gap for v in values)
        if question.type == "region" and answer.value is not None:
            row.region = answer.value
        self.answers[(row.id, answer.question_id)] = {
            "session_id": row.id,
            "question_id": answer.question_id,
            "value": answer.value,
            "skipped": answer.skipped,
            "in_gap": in_gap,
            "inbound_id": inbound_id,
            "answered_at": self.now,
        }

    def _write_answers(self, session: Session) -> None:
        """Every answer of the batch in one upsert (a later answer to the same question replaces the earlier)."""
        if not self.answers:
            return
        if self.postgres:
            rows = [{**answer, "value": json.dumps(answer["value"], ensure_ascii=False)}
                    for answer in self.answers.values()]
            session.execute(_ANSWERS_JSON, {"rows": json_rows(rows)})
            return
        query = sqlite.insert(Answer)
        query = query.on_conflict_do_update(
            index_elements=["session_id", "question_id"],
            set_={k: query.excluded[k] for k in ("value", "skipped", "in_gap", "inbound_id", "answered_at")},
        )
        session.execute(query, list(self.answers.values()))

    def _screened_out(self, row: SessionRow, step: Step) -> None:
        """A respondent the survey is not for keeps only the screening answer: the others go at the write."""
        for event in step.events:
            if event.kind == EventKind.INELIGIBLE:
                kept = set(event.detail.get("kept", ()))
                self.dropped[row.id] = kept
                for key in [k for k in self.answers if k[0] == row.id and k[1] not in kept]:
                    del self.answers[key]

    def _drop_answers(self, session: Session) -> None:
        for session_id, kept in self.dropped.items():
            session.execute(
                delete(Answer).where(Answer.session_id == session_id, Answer.question_id.not_in(sorted(kept)))
            )

    def _apply_events(self, session: Session, contact: Contact, step: Step) -> None:
        for event in step.events:
            if event.kind == EventKind.OPTED_OUT:
                contact.opted_out = True
                contact.opted_out_at = self.now
                whatsapp.withdraw_opt_in(session, contact, self.now)
                session.execute(
                    update(OutboundMessage)
                    .where(OutboundMessage.contact_id == contact.id, OutboundMessage.status == OutboundStatus.QUEUED)
                    .values(status=OutboundStatus.CANCELLED, error="opted out")
                )
                for message in self.outbound:
                    if message["contact_id"] == contact.id and message["kind"] != "ack":
                        message["status"], message["error"] = OutboundStatus.CANCELLED, "opted out"
                self._siblings_follow(session, contact, opted_out=True, opted_out_at=self.now)
            elif event.kind == EventKind.OPTED_IN:
                contact.opted_out = False
                contact.opted_out_at = None
                self._siblings_follow(session, contact, opted_out=False, opted_out_at=None)
            elif event.kind == EventKind.LANGUAGE_CHANGED:
                contact.language = event.detail.get("language")
            elif event.kind == EventKind.ERASE_CONFIRMED:
                self._erase_later(session, contact)
        if contact.language is None:
            contact.language = step.state.language

    def _siblings_follow(self, session: Session, contact: Contact, **values: Any) -> None:
        """A STOP (or a START) said on a call holds for the same number's SMS and WhatsApp, and the other way round:
        they share the session it stopped."""
        siblings = self.siblings.get(contact.id)
        if siblings:
            session.execute(update(Contact).where(Contact.id.in_(siblings)).values(**values))
            if values.get("opted_out"):
                session.execute(update(OutboundMessage).where(
                    OutboundMessage.contact_id.in_(siblings), OutboundMessage.status == "queued",
                ).values(status="cancelled", error="opted out"))

    def _erase_later(self, session: Session, contact: Contact) -> None:
        """The respondent confirmed BORRAR: nothing but the confirmation goes out, and the privacy job erases them
        (workers.privacy) once it has."""
        contact.opted_out, contact.opted_out_at, contact.erase_requested_at = True, self.now, self.now
        session.execute(
            update(OutboundMessage)
            .where(OutboundMessage.contact_id == contact.id, OutboundMessage.status == OutboundStatus.QUEUED)
            .values(status=OutboundStatus.CANCELLED, error="erasure requested")
        )
        for message in self.outbound:
            if message["contact_id"] == contact.id and message["kind"] != "ack":
                message["status"], message["error"] = OutboundStatus.CANCELLED, "erasure requested"

    def _send(
        self,
        session: Session,
        contact: Contact,
        row: SessionRow | None,
        body: str,
        payload: dict,
        kind: str,
    ) -> None:
        self.outbound.append({
            "contact_id": contact.id,
            "session_id": row.id if row is not None else None,
            "channel": contact.channel,
            "kind": kind,
            "body": body,
            "payload": payload,
            "status": OutboundStatus.SENT if contact.channel in SPOKEN else OutboundStatus.QUEUED,
            "error": None,
            "attempts": 0,
            "created_at": self.now,
        })

    def _session_id(self, session: Session) -> int:
        if not self.session_ids:
            self.session_ids = list(session.scalars(_SESSION_IDS, {"n": SESSION_IDS_AT_ONCE}))
        return self.session_ids.pop()

    # -- writing ----------------------------------------------------------------------------------------------

    def _write_sessions(self, session: Session, new_only: bool = False) -> None:
        """Insert the batch's new sessions in one statement, then (unless `new_only`) update the changed ones in
        another. `new_only` is for what must refer to a new session before the batch ends (an incentive record)."""
        fresh = [row for row in self.touched.values() if row.unwritten]
        if fresh:
            columns = [{**row.columns(), "started_at": self.now, "last_activity_at": self.now,
                        "updated_at": self.now} for row in fresh]
            session.execute(_NEW_SESSIONS_JSON, {"rows": json_rows(columns)})
            for row in fresh:
                row.unwritten = False
        if new_only:
            return
        written = {id(row) for row in fresh}
        changed = [row.changes() for row in self.touched.values() if id(row) not in written]
        self.touched.clear()
        if not changed:
            return
        if self.postgres:
            session.execute(_SESSIONS_JSON, {"rows": json_rows(changed), "now": self.now})
            return
        table = SurveySession.__table__
        session.execute(
            update(table)
            .where(table.c.id == bindparam("row_id"))
            .values(**{name: bindparam(f"new_{name}") for name in SESSION_CHANGING},
                    last_activity_at=self.now, updated_at=self.now),
            [{"row_id": c["id"], **{f"new_{name}": c[name] for name in SESSION_CHANGING}} for c in changed],
        )

    def _write_handled(self, session: Session) -> None:
        """The new status of every message handled, in one statement."""
        if not self.handled:
            return
        if self.postgres:
            session.execute(_HANDLED_JSON, {"rows": json_rows(self.handled), "now": self.now})
            return
        table = InboundMessage.__table__
        session.execute(
            update(table)
            .where(table.c.id == bindparam("message_id"))
            .values(status=bindparam("new_status"), contact_id=bindparam("contact"), processed_at=self.now),
            [{"message_id": h["id"], "new_status": h["status"], "contact": h["contact_id"]} for h in self.handled],
        )

    def _drop_sealed(self, session: Session) -> None:
        """Processed messages keep no number: their sealed body and shared contact go (see service.inbox)."""
        if not self.sealed:
            return
        rows = session.execute(select(InboundMessage.id, InboundMessage.payload)
                               .where(InboundMessage.id.in_(self.sealed))).all()
        for id_, payload in rows:
            kept = {k: v for k, v in (payload or {}).items() if k not in SEALED_FIELDS}
            session.execute(update(InboundMessage).where(InboundMessage.id == id_).values(payload=kept, body=""))

    def _write_outbound(self, session: Session) -> list[int]:
        """Insert the batch's outgoing messages in one statement; the ids of those to send."""
        if not self.outbound:
            return []
        if self.postgres:
            rows = session.execute(_OUTBOUND_JSON, {"rows": json_rows(self.outbound)}).all()
        else:
            table = OutboundMessage.__table__
            statement = insert(table).returning(table.c.id, table.c.status, sort_by_parameter_order=True)
            rows = session.execute(statement, self.outbound).all()
        return sorted(id_ for id_, status in rows if status == OutboundStatus.QUEUED)


def _by_key(keys: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    """The parameters of a read by (channel, address hash) keys: each column's values, so an index on both serves it."""
    return {"channels": sorted({c for c, _ in keys}), "hashes": sorted({h for _, h in keys})}


_SESSION_COLUMNS = table_columns(SurveySession, SESSION_READ)
"""What the batch reads of a session, in SessionRow's order."""


_READ_KEYS = select(
    InboundMessage.id, InboundMessage.channel, InboundMessage.address_hash, InboundMessage.address_enc,
    InboundMessage.status,
).where(among(InboundMessage.id, "ids"))
"""The batch's reads, built once: a statement built per batch costs more CPU than its round trip in small batches."""
_READ_CONTACT_IDS = select(Contact.channel, Contact.address_hash, Contact.id, Contact.phone_hash).where(
    among(Contact.channel, "channels"), among(Contact.address_hash, "hashes")
)
"""By channel and hash, the unique index's two columns: by hash alone PostgreSQL read every contact, each batch."""
_LOCK_CONTACTS = select(Contact).where(among(Contact.id, "ids")).order_by(Contact.id).with_for_update()
_LOCK_CONTACTS_SKIPPING = _LOCK_CONTACTS.with_for_update(skip_locked=True)
_READ_PENDING = (
    select(
        InboundMessage.id, InboundMessage.channel, InboundMessage.address_hash, InboundMessage.provider_id,
        InboundMessage.body, InboundMessage.payload, InboundMessage.received_at,
    )
    .where(
        among(InboundMessage.channel, "channels"),
        among(InboundMessage.address_hash, "hashes"),
        InboundMessage.status == InboundStatus.PENDING,
    )
    .order_by(InboundMessage.id)
)
_READ_LATEST_SESSIONS = (
    select(*_SESSION_COLUMNS)
    .where(among(SurveySession.contact_id, "contacts"))
    .order_by(SurveySession.contact_id, SurveySession.id.desc())
)

_UNDER_WAY = (engine.NEW, engine.IN_PROGRESS)
_SIBLING_CHANNELS = ("sms", "whatsapp", "voice")
_READ_SAME_PHONE = select(Contact.id, Contact.channel, Contact.phone_hash).where(
    among(Contact.phone_hash, "hashes"), Contact.channel.in_(_SIBLING_CHANNELS)
)
"""Every phone contact of the batch's phone numbers (by hash): the batch pairs voice with SMS/WhatsApp ones."""

SESSION_IDS_AT_ONCE = 100
_SESSION_IDS = text("SELECT nextval(pg_get_serial_sequence('survey_sessions', 'id')) FROM generate_series(1, :n)")
_NEW_SESSIONS_JSON = text(insert_from_json(
    SurveySession, [*SESSION_READ, *SESSION_STAMPS], constants={"reminders_sent": "0"}, tail="ORDER BY id"
))
_SESSIONS_JSON = text(update_from_json(
    SurveySession, SESSION_CHANGING, constants={"last_activity_at": ":now", "updated_at": ":now"}
))
_OUTBOUND_JSON = text(insert_from_json(OutboundMessage, OUTBOUND_NEW, tail="RETURNING id, status"))
_HANDLED_JSON = text(update_from_json(InboundMessage, ("status", "contact_id"), constants={"processed_at": ":now"}))
_ANSWERS_JSON = text(insert_from_json(
    Answer, ANSWER_COLUMNS, as_text={"value": "CAST(value AS jsonb)"},
    tail=upsert(("session_id", "question_id"), ANSWER_COLUMNS[2:]),
))
"""The batch's answers (each value its own JSON text, so a JSON null stays a JSON null as the ORM stores it)."""


def _telegram_order(message: Row) -> tuple[int, int]:
    try:
        return (int(message.provider_id), message.id)
    except ValueError:
        return (0, message.id)
