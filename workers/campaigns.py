"""Campaign jobs: `tick` sends due invitations and reminders; `maintain` plans reminders and expires sessions.

Sending, per sender and campaign, in a loop that lasts a few seconds (then the next job takes over):

1. claim, in one transaction: check this worker still holds the sender lease, take sending moments from the
   shared rate limiter, pick due messages outside quiet hours, lock their contacts (in id order, like the inbound
   worker), skip the opted out, create each invitation's survey session, and mark the messages `sending`;
2. call the provider, concurrently;
3. record what happened, in one transaction.

A message is claimed right before it goes and never claimed again once `sending`, so a worker killed during the
provider call leaves it `interrupted` (found by `maintain`), never sent twice. STOP is honoured at the claim:
the contact row is locked and checked there, after any STOP already processed.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import requests
from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from bots import make_sender, render
from bots._http import PerThread
from bots.base import Outgoing, SendResult
from bots.twilio.whatsapp import WINDOW_CLOSED, template, window_open
from bots.twilio.whatsapp import is_template as whatsapp_template
from service import early_reports, whatsapp
from service import runtime as runtimes
from service.campaigns import FINISHED, PAUSED, RUNNING
from service.campaigns.lease import Lease
from service.campaigns.timing import QuietHours
from service.db import aware
from service.incentives.budget import room
from service.models import Campaign, CampaignMessage, Contact, OutboundMessage, SurveySession
from service.queue import EmbeddedDispatcher
from service.runtime import Runtime, system_clock
from service.throttle import Throttle, sender_for
from service.vocabulary import CampaignMessageStatus, OutboundStatus
from surveys import engine
from surveys.definition import CONSENT_ID, Definition
from surveys.engine import State
from workers import deliveries

log = logging.getLogger(__name__)

BUDGET = 5.0
"""Real seconds one tick job sends before handing over to the next (so queued inbound jobs get their turn)."""
EMBEDDED_BUDGET = 1.0
GROUP = 200
"""At most this many messages are claimed (and sent concurrently) at once."""
CONCURRENCY = 16
PROVIDER_LATENCY = 0.3
"""Seconds a provider call is expected to take: a sender calls at most rate x this many at once (threads cost CPU)."""
QUIET_MARGIN = timedelta(seconds=2)
"""A message is not claimed this close to the start of someone's quiet hours (it waits for the morning)."""
BUSY = timedelta(hours=1)
"""A contact who answered another survey within this time is invited later, not in the middle of it."""
STUCK = timedelta(minutes=2)
"""A message `sending` this long belongs to a worker that died during the provider call: `interrupted`."""
MAX_ATTEMPTS = 3
RETRY_AFTER = timedelta(seconds=30)
PLAN_LIMIT = 5000
EXPIRE_BATCH = 500


# -- tick: sending ---------------------------------------------------------------------------------------------


def tick(max_seconds: float | None = None, wait: bool = False) -> int:
    """RQ job (every 2 s, and chained while busy): send what is due; returns how many messages went out.

    `wait`: when another worker holds the sender's lease, wait for it to expire before giving up (a job enqueued
    on purpose, like `campaigns start` after a crash, takes over within the lease's TTL).
    """
    rt = runtimes.current()
    if not _running_ids(rt):
        return 0
    rt.catalog.ensure_published()
    if max_seconds is None:
        max_seconds = EMBEDDED_BUDGET if isinstance(rt.dispatcher, EmbeddedDispatcher) else BUDGET
    lease = Lease(rt)
    if not lease.acquire(wait=wait):
        return 0
    sender = _Sender(rt, lease)
    try:
        chain = sender.run(max_seconds)
    finally:
        sender.close()
        lease.release()
    if chain:
        rt.dispatcher.enqueue("workers.campaigns.tick")
    return sender.sent


@dataclass
class _Job:
    message_id: int
    campaign_id: int
    contact_id: int
    session_id: int | None
    kind: str
    channel: str
    address: str
    body: str
    payload: dict[str, Any]
    attempts: int


@dataclass
class _Group:
    """The pending messages of one campaign that one sender sends."""

    campaign: Campaign
    sender_key: str
    sender_rate: float
    channels: tuple[str, ...]
    timezones: tuple[str, ...]


class _LostLease(Exception):
    pass


class _Sender:
    def __init__(self, rt: Runtime, lease: Lease):
        self.rt = rt
        self.lease = lease
        self.sent = 0
        self.pool: ThreadPoolExecutor | None = None
        self.running: dict[int, tuple[float, bool]] = {}
        self.incentives: dict[tuple[str, int, int], bool] = {}

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True)

    def run(self, budget: float) -> bool:
        """Send until the budget is spent; True when work is still waiting on the rate (chain another job)."""
        deadline = time.monotonic() + budget
        groups = self._groups()
        while groups:
            try:
                next_at = self._pass(groups)
            except _LostLease:
                log.warning("campaign sender lost its lease; another worker took over")
                return False
            if next_at is None:
                return False
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return True
            if next_at > self.rt.now().timestamp() and not _wait(self.rt, next_at, remaining):
                return False
        return False

    def _groups(self) -> list[_Group]:
        groups: list[_Group] = []
        with self.rt.sessions() as session:
            campaigns = session.scalars(select(Campaign).where(Campaign.status == RUNNING).order_by(Campaign.id)).all()
            for campaign in campaigns:
                pending = session.execute(
                    select(CampaignMessage.channel, CampaignMessage.timezone)
                    .where(CampaignMessage.campaign_id == campaign.id,
                           CampaignMessage.status == CampaignMessageStatus.PENDING)
                    .distinct()
                ).all()
                by_sender: dict[str, tuple[float, set[str], set[str]]] = {}
                for channel, timezone in pending:
                    sender = sender_for(self.rt.settings, channel)
                    if sender is None:
                        continue
                    rate, channels, zones = by_sender.setdefault(sender.key, (sender.rate, set(), set()))
                    channels.add(channel)
                    zones.add(timezone)
                for key, (rate, channels, zones) in sorted(by_sender.items()):
                    groups.append(_Group(campaign, key, rate, tuple(sorted(channels)), tuple(sorted(zones))))
        return groups

    def _pass(self, groups: list[_Group]) -> float | None:
        """Send what is due in every group now; the earliest moment more could go, None if nothing waits."""
        waiting: list[float] = []
        for group in groups:
            while True:
                jobs, next_at, more = self._claim(group)
                if jobs:
                    self._send(jobs, min(group.sender_rate, group.campaign.rate or group.sender_rate))
                if next_at is not None:
                    waiting.append(next_at)
                if not more:
                    break
        return min(waiting) if waiting else None

    # -- 1. claim ---------------------------------------------------------------------------------------------

    def _still_running(self, session: Session, campaign_id: int) -> bool:
        """Whether the campaign was not paused; read at most once a second (a pause takes effect within it)."""
        checked, running = self.running.get(campaign_id, (0.0, True))
        if time.monotonic() - checked > 1.0:
            running = session.scalar(select(Campaign.status).where(Campaign.id == campaign_id)) == RUNNING
            self.running[campaign_id] = (time.monotonic(), running)
        return running

    def _claim(self, group: _Group) -> tuple[list[_Job], float | None, bool]:
        """(jobs to send now, when more may go because of the rate, whether to claim again at once)."""
        now = self.rt.now()
        campaign = group.campaign
        quiet = QuietHours.of(campaign.quiet_start, campaign.quiet_end)
        zones = [z for z in group.timezones if quiet is None or not (
            quiet.contains(now, z) or quiet.contains(now + QUIET_MARGIN, z))]
        if not zones:
            return [], None, False
        limits = [(group.sender_key, group.sender_rate)]
        if campaign.rate:
            limits.append((f"campaign:{campaign.id}", campaign.rate))
        with self.rt.sessions() as session, session.begin():
            if not self.lease.check(session):
                raise _LostLease
            if not self._still_running(session, campaign.id):
                return [], None, False
            throttle = Throttle(session, limits, now.timestamp())
            room = min(throttle.available, GROUP)
            if room == 0:
                return [], throttle.next_free(), False
            message = CampaignMessage.__table__.c
            rows = session.execute(
                select(message.id, message.contact_id, message.session_id, message.kind, message.attempts,
                       message.reason)
                .where(
                    message.campaign_id == campaign.id,
                    message.status == CampaignMessageStatus.PENDING,
                    message.channel.in_(group.channels),
                    message.timezone.in_(zones),
                    message.due_at <= now,
                )
                .order_by(message.due_at, message.id)
                .limit(room)
                .with_for_update(skip_locked=True)
            ).all()
            if not rows:
                return [], None, False
            jobs = _Preparation(self.rt, session, campaign, now, self.incentives).prepare(rows)
            throttle.take(len(jobs))
            if jobs:
                session.execute(
                    update(CampaignMessage.__table__).where(message.id == bindparam("key")).values(
                        status=CampaignMessageStatus.SENDING, sending_at=now, attempts=bindparam("attempts"),
                        session_id=bindparam("session"),
                    ),
                    [{"key": j.message_id, "attempts": j.attempts, "session": j.session_id} for j in jobs],
                )
            full = len(rows) == room
            return jobs, throttle.next_free() if full and len(jobs) == room else None, full and len(jobs) < room

    # -- 2. send ----------------------------------------------------------------------------------------------

    def _send(self, jobs: list[_Job], rate: float) -> None:
        threads = max(1, min(CONCURRENCY, len(jobs), math.ceil(rate * PROVIDER_LATENCY)))
        if threads == 1:
            results = [_send_one(self.rt, job) for job in jobs]
        else:
            if self.pool is None:
                self.pool = ThreadPoolExecutor(CONCURRENCY, thread_name_prefix="campaign-send")
            results = _in_parallel(self.pool, threads, lambda job: _send_one(self.rt, job), jobs)
        _record(self.rt, jobs, results)
        self.sent += sum(1 for r in results if r.ok)


class _Preparation:
    """Within a claim's transaction: decide each message's fate and build what to send (Core statements: this
    runs for every message a campaign sends)."""

    def __init__(self, rt: Runtime, session: Session, campaign: Campaign, now: datetime,
                 incentives: dict[tuple[str, int, int], bool]):
        self.rt = rt
        self.session = session
        self.campaign = campaign
        self.now = now
        self.incentives = incentives
        self.invitations: dict[tuple[str, str], tuple[dict[str, Any], str | None, str, dict[str, Any]] | None] = {}
        self.skipped: list[dict[str, Any]] = []
        self.deferred: list[dict[str, Any]] = []
        self.templated: list[int] = []
        """Contacts a WhatsApp template goes to (their next message answers it)."""

    def prepare(self, rows: Sequence[Any]) -> list[_Job]:
        session = self.session
        ids = sorted({row.contact_id for row in rows})
        contact = Contact.__table__.c
        contacts = {c.id: c for c in session.execute(
            select(contact.id, contact.channel, contact.address_enc, contact.language, contact.opted_out,
                   contact.unreachable, contact.last_inbound_at, contact.opt_in_at, contact.opt_in_withdrawn_at)
            .where(contact.id.in_(ids)).order_by(contact.id).with_for_update()
        )}
        sessions = self._sessions(ids)
        jobs: list[_Job] = []
        new_sessions: list[tuple[_Job, dict[str, Any]]] = []
        for row in rows:
            person = contacts[row.contact_id]
            if person.opted_out or person.unreachable:
                self._skip(row, "opted_out" if person.opted_out else "unreachable")
                continue
            if person.channel == "whatsapp" and whatsapp.withdrew(person.opt_in_at, person.opt_in_withdrawn_at):
                self._skip(row, "opt_in_withdrawn")
                continue
            if (person.channel == "whatsapp" and self.campaign.opt_in_required
                    and not whatsapp.has_opt_in(person.opt_in_at, person.opt_in_withdrawn_at)):
                self._skip(row, "no_opt_in")
                continue
            if row.kind == "invite":
                job = self._invite(row, person, sessions, new_sessions)
            else:
                job = self._remind(row, person, sessions)
            if job is not None:
                jobs.append(job)
        self._write(new_sessions)
        return jobs

    def _sessions(self, contact_ids: list[int]) -> dict[Any, Any]:
        """Sessions by id, each contact's latest under ('latest', id) and this wave's under ('wave', id)."""
        table = SurveySession.__table__.c
        rows = self.session.execute(
            select(table.id, table.contact_id, table.survey_id, table.version, table.wave, table.campaign_id,
                   table.status, table.question, table.consented_at, table.started_at, table.last_activity_at,
                   table.reminders_sent, table.state)
            .where(table.contact_id.in_(contact_ids))
            .order_by(table.contact_id, table.id.desc())
        ).all()
        found: dict[Any, Any] = {}
        for row in rows:
            found[row.id] = row
            found.setdefault(("latest", row.contact_id), row)
            if (row.survey_id, row.wave) == (self.campaign.survey_id, self.campaign.wave):
                found[("wave", row.contact_id)] = row
        return found

    def _invite(self, row, person, sessions: dict, new_sessions: list) -> _Job | None:
        existing = sessions.get(("wave", person.id))
        reuse = existing is not None and existing.campaign_id == self.campaign.id and _untouched(existing)
        if existing is not None and not reuse:
            self._skip(row, "has_session")
            return None
        latest = sessions.get(("latest", person.id))
        if latest is not None and (latest.state or {}).get("stop_asked"):
            self._skip(row, "asked_to_stop")
            return None
        if latest is not None and latest is not existing and latest.status == engine.IN_PROGRESS:
            active_until = aware(latest.last_activity_at) + BUSY
            if active_until > self.now:
                self.deferred.append({"key": row.id, "due_at": active_until})
                return None
        invitation = self._invitation(person.language, person.channel)
        if invitation is None:
            self._skip(row, "nothing_to_ask")
            return None
        state, question, body, payload = invitation
        values = {"status": engine.IN_PROGRESS, "question": question, "language": state["language"], "state": state,
                  "started_at": self.now, "last_activity_at": self.now, "updated_at": self.now}
        if self._needs_template(row, person):
            body, payload = self._template("invite", state["language"], person)
            if payload is None:
                self._skip(row, "no_template")
                return None
        job = self._job(row, person, existing.id if reuse else None, body, payload)
        if reuse:
            self.session.execute(update(SurveySession).where(SurveySession.id == existing.id).values(**values))
        else:
            new_sessions.append((job, values))
        return job

    def _invitation(self, language: str | None, channel: str):
        """The first state and the rendered consent question, the same for everyone with this language."""
        key = (language or "", channel)
        if key not in self.invitations:
            definition = self.rt.catalog.get(self.campaign.survey_id, self.campaign.version, self.session)
            state = engine.new_state(definition)
            if language in definition.languages:
                state.language = language
            budget = (definition.id, definition.version, self.campaign.wave)
            if budget not in self.incentives:
                self.incentives[budget] = _incentive_available(self.session, definition, self.campaign)
            step = engine.invite(definition, state, incentive_available=self.incentives[budget])
            if not step.replies:
                self.invitations[key] = None
            else:
                body, payload = render(channel, step.replies[0])
                self.invitations[key] = (step.state.to_dict(), step.state.question, body, payload)
        return self.invitations[key]

    def _remind(self, row, person, sessions: dict) -> _Job | None:
        campaign = self.campaign
        target = sessions.get(row.session_id)
        if target is None or target.status != engine.IN_PROGRESS:
            self._skip(row, "finished")
            return None
        if campaign.expire_after and aware(target.started_at) + timedelta(seconds=campaign.expire_after) <= self.now:
            self._skip(row, "expired")
            return None
        if target.reminders_sent >= campaign.max_reminders or not campaign.remind_after:
            self._skip(row, "limit")
            return None
        if aware(target.last_activity_at) + timedelta(seconds=campaign.remind_after) > self.now:
            self._skip(row, "answered")
            return None
        definition = self.rt.catalog.get(target.survey_id, target.version, self.session)
        state = State.from_dict(target.state)
        if state.stop_asked:
            self._held(row, target)
            return None
        step = engine.remind(definition, state)
        if not step.replies:
            self._skip(row, "nothing_to_ask")
            return None
        body, payload = render(person.channel, step.replies[0])
        if self._needs_template(row, person):
            body, payload = self._template("reminder", step.state.language, person)
            if payload is None:
                self._skip(row, "no_template")
                return None
        self.session.execute(
            update(SurveySession).where(SurveySession.id == target.id)
            .values(reminders_sent=SurveySession.reminders_sent + 1)
        )
        return self._job(row, person, target.id, body, payload)

    def _held(self, row, target) -> None:
        """A respondent who asked in plain words to stop is not reminded (their remaining reminders are spent, so
        none is planned again); they were asked to confirm and nothing more goes until they write."""
        self._skip(row, "asked_to_stop")
        self.session.execute(
            update(SurveySession).where(SurveySession.id == target.id)
            .values(reminders_sent=max(target.reminders_sent, self.campaign.max_reminders))
        )

    def _needs_template(self, row, person) -> bool:
        """WhatsApp outside the person's 24-hour window (or after Twilio said so: 63016) takes a template."""
        if person.channel != "whatsapp":
            return False
        return row.reason == WINDOW_CLOSED or not window_open(person.last_inbound_at, self.now)

    def _template(self, kind: str, language: str, person) -> tuple[str, dict[str, Any] | None]:
        """(body, payload) of the campaign's template for `kind` in the person's language; no payload if none."""
        definition = self.rt.catalog.get(self.campaign.survey_id, self.campaign.version, self.session)
        sid = whatsapp.template_for(self.campaign.templates, kind, language, definition.default_language)
        if sid is None:
            return "", None
        self.templated.append(person.id)
        credit = self.incentives.get((definition.id, definition.version, self.campaign.wave), True)
        return "", template(sid, whatsapp.variables(definition, language, credit))

    def _job(self, row, person, session_id: int | None, body: str, payload: dict[str, Any]) -> _Job:
        return _Job(
            message_id=row.id, campaign_id=self.campaign.id, contact_id=person.id, session_id=session_id,
            kind=row.kind, channel=person.channel, address=self.rt.vault.decrypt(person.address_enc),
            body=body, payload=payload, attempts=row.attempts + 1,
        )

    def _skip(self, row, reason: str) -> None:
        self.skipped.append({"key": row.id, "reason": reason})

    def _write(self, new_sessions: list[tuple[_Job, dict[str, Any]]]) -> None:
        """The new sessions (their ids go to the jobs), skipped and deferred messages."""
        campaign = self.campaign
        if new_sessions:
            ids = self.session.scalars(
                insert(SurveySession).returning(SurveySession.id, sort_by_parameter_order=True),
                [{"contact_id": job.contact_id, "survey_id": campaign.survey_id, "version": campaign.version,
                  "wave": campaign.wave, "campaign_id": campaign.id, "reminders_sent": 0, **values}
                 for job, values in new_sessions],
            ).all()
            for (job, _), session_id in zip(new_sessions, ids, strict=True):
                job.session_id = session_id
        table = CampaignMessage.__table__
        if self.skipped:
            self.session.execute(
                update(table).where(table.c.id == bindparam("key"))
                .values(status=CampaignMessageStatus.SKIPPED, reason=bindparam("reason")),
                self.skipped,
            )
        if self.templated:
            self.session.execute(
                update(Contact).where(Contact.id.in_(sorted(set(self.templated)))).values(last_template_at=self.now)
            )
        if self.deferred:
            self.session.execute(
                update(table).where(table.c.id == bindparam("key")).values(due_at=bindparam("due_at")), self.deferred
            )


def _incentive_available(session: Session, definition: Definition, campaign: Campaign) -> bool:
    """Whether this wave's incentive budget can still promise the credit (each wave has its own budget)."""
    return room(session, definition, campaign.wave)


def _untouched(row: SurveySession) -> bool:
    """A campaign session whose invitation never reached the respondent (no reply, nothing answered)."""
    return row.status == engine.IN_PROGRESS and row.question == CONSENT_ID and row.consented_at is None and (
        aware(row.last_activity_at) <= aware(row.started_at)
    )


def _in_parallel(pool: ThreadPoolExecutor, threads: int, work, jobs: list[_Job]) -> list[SendResult]:
    """work(job) for every job, at most `threads` at a time; results in the jobs' order."""
    results: dict[int, SendResult] = {}

    def run(indexes: range) -> None:
        for i in indexes:
            results[i] = work(jobs[i])

    list(pool.map(run, [range(start, len(jobs), threads) for start in range(threads)]))
    return [results[i] for i in range(len(jobs))]


def _send_one(rt: Runtime, job: _Job) -> SendResult:
    try:
        sender = make_sender(job.channel, rt.settings, _session())
        return sender.send(Outgoing(id=job.message_id, channel=job.channel, address=job.address, body=job.body,
                                    payload=dict(job.payload)))
    except Exception as error:  # noqa: BLE001 - a sender bug must not lose track of the message
        log.exception("campaign sender for %s failed", job.channel)
        return SendResult(ok=False, error_code="request", error=f"{type(error).__name__}: {error}")


def _pooled() -> requests.Session:
    session = requests.Session()
    adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=CONCURRENCY)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


_session = PerThread(_pooled)


# -- 3. record -------------------------------------------------------------------------------------------------


def _not_sent(result: SendResult) -> bool:
    """The provider certainly did not take the message: it answered 429/5xx, or the connection never opened."""
    if result.ok or not result.retry:
        return False
    if result.error_code != "connection":
        return True
    error = result.error or ""
    return error.startswith("ConnectTimeout") or "NewConnectionError" in error or "Connection refused" in error


def _record(rt: Runtime, jobs: list[_Job], results: list[SendResult]) -> None:
    now = rt.now()
    outcomes = list(zip(jobs, results, strict=True))
    with rt.sessions() as session, session.begin():
        sent = [(job, result) for job, result in outcomes if result.ok]
        if sent:
            ids = session.scalars(
                insert(OutboundMessage).returning(OutboundMessage.id, sort_by_parameter_order=True),
                [{
                    "contact_id": job.contact_id, "session_id": job.session_id, "campaign_id": job.campaign_id,
                    "channel": job.channel, "kind": job.kind, "body": job.body, "payload": job.payload,
                    "status": OutboundStatus.SENT, "provider_id": result.provider_id, "attempts": job.attempts,
                    "created_at": now, "sent_at": now,
                } for job, result in sent],
            ).all()
            table = CampaignMessage.__table__
            session.execute(
                update(table).where(table.c.id == bindparam("key"))
                .values(status=CampaignMessageStatus.SENT, sent_at=now, outbound_id=bindparam("outbound"), error=None,
                        reason=None),
                [{"key": job.message_id, "outbound": outbound_id}
                 for (job, _), outbound_id in zip(sent, ids, strict=True)],
            )
        failed = [(job, result) for job, result in outcomes if not result.ok]
        if failed:
            _record_failures(rt, session, failed, now)


def _record_failures(rt: Runtime, session: Session, failed: list[tuple[_Job, SendResult]], now: datetime) -> None:
    ids = sorted({job.contact_id for job, _ in failed})
    session.scalars(select(Contact.id).where(Contact.id.in_(ids)).order_by(Contact.id).with_for_update()).all()
    campaigns: dict[int, Campaign | None] = {}
    for job, result in failed:
        error = f"{result.error_code or ''} {result.error or ''}".strip()[:2000]
        values: dict[str, Any] = {"error": error}
        settled = None
        if result.error_code and not result.retry:  # what Twilio's code calls for (a template, SMS, an opt-out)
            if job.campaign_id not in campaigns:
                campaigns[job.campaign_id] = session.get(Campaign, job.campaign_id)
            campaign = campaigns[job.campaign_id]
            failure = deliveries.Failure(job.message_id, job.kind, job.channel, job.contact_id, job.session_id,
                                         job.attempts, result.error_code, whatsapp_template(job.payload))
            settled = deliveries.settle(rt, session, campaign, failure, now) if campaign else None
        if settled:
            changes, undone = settled
            values.update(changes)
            if undone:
                _undo(session, job)
        elif _not_sent(result) and job.attempts < MAX_ATTEMPTS:
            wait = max(RETRY_AFTER * job.attempts, timedelta(seconds=result.retry_after or 0))
            values.update(status=CampaignMessageStatus.PENDING, due_at=now + wait)
            _undo(session, job)
        elif result.retry and not _not_sent(result):
            values.update(status=CampaignMessageStatus.INTERRUPTED)
        else:
            values.update(status=CampaignMessageStatus.FAILED, reason=(result.error_code or "failed")[:32])
            _undo(session, job)
        if result.unreachable:
            session.execute(update(Contact).where(Contact.id == job.contact_id).values(unreachable=True))
        session.execute(update(CampaignMessage).where(CampaignMessage.id == job.message_id).values(**values))
        log.warning("campaign message %s to contact %s: %s", job.message_id, job.contact_id, values["status"])


def _undo(session: Session, job: _Job) -> None:
    """What the claim prepared for a message that did not go: the untouched session, the reminder count."""
    row = session.get(SurveySession, job.session_id) if job.session_id else None
    if row is None:
        return
    if job.kind == "reminder":
        row.reminders_sent = max(0, row.reminders_sent - 1)
    elif _untouched(row):
        session.execute(
            update(CampaignMessage).where(CampaignMessage.id == job.message_id).values(session_id=None)
        )
        session.execute(delete(SurveySession).where(SurveySession.id == row.id))


def _insert(session: Session, model):
    dialect = session.get_bind().dialect.name
    return {"postgresql": postgresql.insert, "sqlite": sqlite.insert}[dialect](model)


def _wait(rt: Runtime, until: float, limit: float) -> bool:
    """Wait (at most `limit` real seconds) until the runtime clock reaches `until`; False if it cannot be waited on."""
    clock = rt.clock
    if clock is system_clock:
        time.sleep(max(0.0, min(until - time.time(), limit)))
        return True
    wait_until = getattr(clock, "wait_until", None)
    if wait_until is None:
        return False
    wait_until(until, limit)
    return True


def _running_ids(rt: Runtime) -> list[int]:
    with rt.sessions() as session:
        return list(session.scalars(select(Campaign.id).where(Campaign.status == RUNNING)))


# -- maintain: reminders, expiry, interrupted sends, finished campaigns -----------------------------------------


def maintain() -> dict[str, int]:
    """RQ job (every 5 s): plan due reminders, expire old sessions, note interrupted sends, finish campaigns."""
    rt = runtimes.current()
    now = rt.now()
    with rt.sessions() as session:
        campaigns = session.scalars(select(Campaign).where(Campaign.status.in_((RUNNING, PAUSED)))).all()
    if not campaigns:
        return {}
    rt.catalog.ensure_published()
    done = {"interrupted": _interrupted(rt, now), "reminders": 0, "expired": 0, "finished": 0, "failures": 0}
    with rt.sessions() as session, session.begin():
        early_reports.apply(session, now)  # reports that came before their message was recorded
    for campaign in campaigns:
        done["failures"] += deliveries.reconcile(rt, campaign, now, _undo)
        if campaign.status == RUNNING and campaign.max_reminders and campaign.remind_after:
            done["reminders"] += _plan_reminders(rt, campaign, now)
        if campaign.expire_after:
            done["expired"] += _expire(rt, campaign, now)
        if campaign.status == RUNNING:
            done["finished"] += _finish(rt, campaign, now)
    if done["reminders"] or done["failures"]:
        rt.dispatcher.enqueue("workers.campaigns.tick")
    if any(done.values()):
        log.info("campaigns: %s", ", ".join(f"{n} {what}" for what, n in done.items() if n))
    return done


def _interrupted(rt: Runtime, now: datetime) -> int:
    with rt.sessions() as session, session.begin():
        return session.execute(
            update(CampaignMessage)
            .where(CampaignMessage.status == CampaignMessageStatus.SENDING, CampaignMessage.sending_at < now - STUCK)
            .values(status=CampaignMessageStatus.INTERRUPTED,
                    error="the worker stopped during the provider call; not sent again")
        ).rowcount


def _plan_reminders(rt: Runtime, campaign: Campaign, now: datetime) -> int:
    """A reminder row for each in-progress session silent for `remind_after` since its last reply or reminder."""
    after = timedelta(seconds=campaign.remind_after)
    invite = CampaignMessage.__table__.alias("invite")
    recent = (
        select(CampaignMessage.id)
        .where(
            CampaignMessage.session_id == SurveySession.id,
            CampaignMessage.kind == "reminder",
            CampaignMessage.status.in_((CampaignMessageStatus.PENDING, CampaignMessageStatus.SENDING))
            | (CampaignMessage.sending_at > now - after),
        )
        .exists()
    )
    with rt.sessions() as session, session.begin():
        candidates = session.execute(
            select(SurveySession.id, SurveySession.contact_id, SurveySession.last_activity_at,
                   invite.c.channel, invite.c.timezone)
            .join(invite, (invite.c.campaign_id == SurveySession.campaign_id)
                  & (invite.c.contact_id == SurveySession.contact_id) & (invite.c.kind == "invite"))
            .where(
                SurveySession.campaign_id == campaign.id,
                SurveySession.status == engine.IN_PROGRESS,
                SurveySession.reminders_sent < campaign.max_reminders,
                SurveySession.last_activity_at <= now - after,
                invite.c.status.in_((CampaignMessageStatus.SENT, CampaignMessageStatus.INTERRUPTED)),
                ~recent,
            )
            .order_by(SurveySession.id)
            .limit(PLAN_LIMIT)
        ).all()
        if not candidates:
            return 0
        history = {
            session_id: (last_sent, number)
            for session_id, last_sent, number in session.execute(
                select(CampaignMessage.session_id, func.max(CampaignMessage.sending_at),
                       func.max(CampaignMessage.number))
                .where(CampaignMessage.session_id.in_([c.id for c in candidates]),
                       CampaignMessage.kind == "reminder")
                .group_by(CampaignMessage.session_id)
            )
        }
        rows = []
        for session_id, contact_id, last_activity, channel, timezone in candidates:
            last_sent, number = history.get(session_id, (None, 0))
            due = max(aware(last_activity), aware(last_sent) or aware(last_activity)) + after
            if due > now:
                continue
            rows.append({
                "campaign_id": campaign.id, "contact_id": contact_id, "session_id": session_id, "kind": "reminder",
                "number": (number or 0) + 1, "channel": channel, "timezone": timezone,
                "status": CampaignMessageStatus.PENDING,
                "due_at": due, "attempts": 0, "created_at": now,
            })
        if rows:
            session.execute(_insert(session, CampaignMessage).on_conflict_do_nothing(
                index_elements=["campaign_id", "contact_id", "kind", "number"]), rows)
        return len(rows)


def _expire(rt: Runtime, campaign: Campaign, now: datetime) -> int:
    """Sessions unfinished `expire_after` after their invitation become `expired` (engine.expire)."""
    cutoff = now - timedelta(seconds=campaign.expire_after)
    expired = 0
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with rt.sessions() as session, session.begin():
            due = session.execute(
                select(SurveySession.id, SurveySession.contact_id)
                .where(SurveySession.campaign_id == campaign.id, SurveySession.status == engine.IN_PROGRESS,
                       SurveySession.started_at <= cutoff)
                .order_by(SurveySession.id)
                .limit(EXPIRE_BATCH)
            ).all()
            if not due:
                break
            contact_ids = sorted({contact_id for _, contact_id in due})
            session.scalars(
                select(Contact.id).where(Contact.id.in_(contact_ids)).order_by(Contact.id).with_for_update()
            ).all()
            rows = session.execute(
                select(SurveySession.id, SurveySession.survey_id, SurveySession.version, SurveySession.state)
                .where(SurveySession.id.in_([i for i, _ in due]), SurveySession.status == engine.IN_PROGRESS)
            ).all()
            changes = []
            for session_id, survey_id, version, state in rows:
                step = engine.expire(rt.catalog.get(survey_id, version, session), State.from_dict(state))
                changes.append({"key": session_id, "status": step.state.status, "state": step.state.to_dict(),
                                "updated_at": now})
            if changes:
                table = SurveySession.__table__
                session.execute(
                    update(table).where(table.c.id == bindparam("key"))
                    .values(status=bindparam("status"), state=bindparam("state"), updated_at=bindparam("updated_at")),
                    changes,
                )
            ended = [change["key"] for change in changes]
            expired += len(ended)
        if ended:
            with rt.sessions() as session, session.begin():
                session.execute(
                    update(CampaignMessage)
                    .where(CampaignMessage.session_id.in_(ended), CampaignMessage.kind == "reminder",
                           CampaignMessage.status == CampaignMessageStatus.PENDING)
                    .values(status=CampaignMessageStatus.SKIPPED, reason="expired")
                )
    return expired


def _finish(rt: Runtime, campaign: Campaign, now: datetime) -> int:
    """A running campaign with nothing left to send and nobody in the middle is finished."""
    with rt.sessions() as session, session.begin():
        waiting = session.scalar(
            select(func.count()).select_from(CampaignMessage).where(
                CampaignMessage.campaign_id == campaign.id,
                CampaignMessage.status.in_((CampaignMessageStatus.PENDING, CampaignMessageStatus.SENDING)),
            )
        )
        open_sessions = session.scalar(
            select(func.count()).select_from(SurveySession).where(
                SurveySession.campaign_id == campaign.id, SurveySession.status == engine.IN_PROGRESS
            )
        )
        if waiting or open_sessions:
            return 0
        return session.execute(
            update(Campaign).where(Campaign.id == campaign.id, Campaign.status == RUNNING)
            .values(status=FINISHED, finished_at=now)
        ).rowcount
