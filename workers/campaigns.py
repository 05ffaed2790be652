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
import threading
import time
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import requests
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from bots import make_sender, render
from bots.base import Outgoing, SendResult
from service import runtime as runtimes
from service.campaigns import FINISHED, PAUSED, RUNNING
from service.campaigns.lease import Lease
from service.campaigns.timing import QuietHours, aware
from service.models import Campaign, CampaignMessage, Contact, OutboundMessage, SurveySession
from service.queue import EmbeddedDispatcher
from service.runtime import Runtime, system_clock
from service.throttle import Throttle, sender_for
from surveys import engine
from surveys.definition import Definition
from surveys.engine import State

log = logging.getLogger(__name__)

BUDGET = 5.0
"""Real seconds one tick job sends before handing over to the next (so queued inbound jobs get their turn)."""
EMBEDDED_BUDGET = 1.0
GROUP = 200
"""At most this many messages are claimed (and sent concurrently) at once."""
CONCURRENCY = 16
QUIET_MARGIN = timedelta(seconds=2)
BUSY = timedelta(hours=1)
"""A contact who answered another survey within this time is invited later, not in the middle of it."""
STUCK = timedelta(minutes=2)
MAX_ATTEMPTS = 3
RETRY_AFTER = timedelta(seconds=30)
PLAN_LIMIT = 5000
EXPIRE_BATCH = 500
_http = threading.local()


# -- tick: sending ---------------------------------------------------------------------------------------------


def tick(max_seconds: float | None = None) -> int:
    """RQ job (every 2 s, and chained while busy): send what is due; returns how many messages went out."""
    rt = runtimes.current()
    if not _running_ids(rt):
        return 0
    rt.catalog.ensure_published()
    if max_seconds is None:
        max_seconds = EMBEDDED_BUDGET if isinstance(rt.dispatcher, EmbeddedDispatcher) else BUDGET
    lease = Lease(rt)
    if not lease.acquire():
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
    session: SurveySession | None = field(default=None, repr=False)


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
                    .where(CampaignMessage.campaign_id == campaign.id, CampaignMessage.status == "pending")
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
                    self._send(jobs)
                if next_at is not None:
                    waiting.append(next_at)
                if not more:
                    break
        return min(waiting) if waiting else None

    # -- 1. claim ---------------------------------------------------------------------------------------------

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
            still = session.scalar(select(Campaign.status).where(Campaign.id == campaign.id))
            if still != RUNNING:
                return [], None, False
            throttle = Throttle(session, limits, now.timestamp())
            room = min(throttle.available, GROUP)
            if room == 0:
                return [], throttle.next_free(), False
            rows = session.scalars(
                select(CampaignMessage)
                .where(
                    CampaignMessage.campaign_id == campaign.id,
                    CampaignMessage.status == "pending",
                    CampaignMessage.channel.in_(group.channels),
                    CampaignMessage.timezone.in_(zones),
                    CampaignMessage.due_at <= now,
                )
                .order_by(CampaignMessage.due_at, CampaignMessage.id)
                .limit(room)
                .with_for_update(skip_locked=True)
            ).all()
            if not rows:
                return [], None, False
            jobs = _Preparation(self.rt, session, campaign, now).prepare(rows)
            throttle.take(len(jobs))
            session.flush()
            by_id = {row.id: row for row in rows}
            for job in jobs:
                if job.session is not None:
                    job.session_id = job.session.id
                    job.session = None
                row = by_id[job.message_id]
                row.status, row.sending_at, row.attempts, row.session_id = "sending", now, job.attempts, job.session_id
            full = len(rows) == room
            return jobs, throttle.next_free() if full and len(jobs) == room else None, full and len(jobs) < room

    # -- 2. send ----------------------------------------------------------------------------------------------

    def _send(self, jobs: list[_Job]) -> None:
        if len(jobs) == 1:
            results = [_send_one(self.rt, jobs[0])]
        else:
            if self.pool is None:
                self.pool = ThreadPoolExecutor(CONCURRENCY, thread_name_prefix="campaign-send")
            results = list(self.pool.map(lambda job: _send_one(self.rt, job), jobs))
        _record(self.rt, jobs, results)
        self.sent += sum(1 for r in results if r.ok)


class _Preparation:
    """Within a claim's transaction: decide each message's fate and build what to send."""

    def __init__(self, rt: Runtime, session: Session, campaign: Campaign, now: datetime):
        self.rt = rt
        self.session = session
        self.campaign = campaign
        self.now = now

    def prepare(self, rows: Sequence[CampaignMessage]) -> list[_Job]:
        session = self.session
        ids = sorted({row.contact_id for row in rows})
        contacts = {
            c.id: c
            for c in session.scalars(select(Contact).where(Contact.id.in_(ids)).order_by(Contact.id).with_for_update())
        }
        sessions = self._sessions(ids, [row.session_id for row in rows if row.kind == "reminder" and row.session_id])
        jobs: list[_Job] = []
        for row in rows:
            contact = contacts[row.contact_id]
            if contact.opted_out or contact.unreachable:
                _skip(row, "opted_out" if contact.opted_out else "unreachable")
                continue
            job = self._invite(row, contact, sessions) if row.kind == "invite" else self._remind(row, contact, sessions)
            if job is not None:
                jobs.append(job)
        return jobs

    def _sessions(self, contact_ids: list[int], reminder_ids: list[int]) -> dict[Any, SurveySession]:
        """Sessions by id, and each contact's latest one under ('latest', contact_id)."""
        rows = self.session.scalars(
            select(SurveySession)
            .where(SurveySession.contact_id.in_(contact_ids))
            .order_by(SurveySession.contact_id, SurveySession.id.desc())
        ).all()
        found: dict[Any, SurveySession] = {}
        for row in rows:
            found[row.id] = row
            found.setdefault(("latest", row.contact_id), row)
            if (row.survey_id, row.wave) == (self.campaign.survey_id, self.campaign.wave):
                found[("wave", row.contact_id)] = row
        return found

    def _invite(self, row: CampaignMessage, contact: Contact, sessions: dict) -> _Job | None:
        campaign = self.campaign
        existing: SurveySession | None = sessions.get(("wave", contact.id))
        reuse = existing is not None and existing.campaign_id == campaign.id and _untouched(existing)
        if existing is not None and not reuse:
            _skip(row, "has_session")
            return None
        latest: SurveySession | None = sessions.get(("latest", contact.id))
        if latest is not None and latest is not existing and latest.status == engine.IN_PROGRESS:
            active_until = aware(latest.last_activity_at) + BUSY
            if active_until > self.now:
                row.due_at = active_until
                return None
        definition = self.rt.catalog.get(campaign.survey_id, campaign.version, self.session)
        state = engine.new_state(definition)
        if contact.language in definition.languages:
            state.language = contact.language
        step = engine.invite(definition, state, incentive_available=_incentive_available(self.session, definition, campaign))
        if not step.replies:
            _skip(row, "nothing_to_ask")
            return None
        if reuse and existing is not None:
            target = existing
        else:
            target = SurveySession(
                contact_id=contact.id, survey_id=campaign.survey_id, version=campaign.version, wave=campaign.wave,
                campaign_id=campaign.id, reminders_sent=0,
            )
            self.session.add(target)
        target.status = engine.IN_PROGRESS
        target.question = step.state.question
        target.language = step.state.language
        target.state = step.state.to_dict()
        target.started_at = self.now
        target.last_activity_at = self.now
        return self._job(row, contact, target, step.replies[0])

    def _remind(self, row: CampaignMessage, contact: Contact, sessions: dict) -> _Job | None:
        campaign = self.campaign
        target: SurveySession | None = sessions.get(row.session_id)
        if target is None or target.status != engine.IN_PROGRESS:
            _skip(row, "finished")
            return None
        if target.reminders_sent >= campaign.max_reminders or not campaign.remind_after:
            _skip(row, "limit")
            return None
        if aware(target.last_activity_at) + timedelta(seconds=campaign.remind_after) > self.now:
            _skip(row, "answered")
            return None
        definition = self.rt.catalog.get(target.survey_id, target.version, self.session)
        step = engine.remind(definition, State.from_dict(target.state))
        if not step.replies:
            _skip(row, "nothing_to_ask")
            return None
        target.reminders_sent += 1
        return self._job(row, contact, target, step.replies[0])

    def _job(self, row: CampaignMessage, contact: Contact, target: SurveySession, reply) -> _Job:
        body, payload = render(contact.channel, reply)
        return _Job(
            message_id=row.id, campaign_id=row.campaign_id, contact_id=contact.id, session_id=target.id,
            kind=row.kind, channel=contact.channel, address=self.rt.vault.decrypt(contact.address_enc),
            body=body, payload=payload, attempts=row.attempts + 1, session=target,
        )


def _incentive_available(session: Session, definition: Definition, campaign: Campaign) -> bool:
    """Whether this wave's incentive budget can still promise the credit (each wave has its own budget)."""
    try:
        from service.incentives.budget import room
    except ImportError:
        return True
    return room(session, definition, campaign.wave)


def _untouched(row: SurveySession) -> bool:
    """A campaign session whose invitation never reached the respondent (no reply, nothing answered)."""
    return row.status == engine.IN_PROGRESS and row.question == "consent" and row.consented_at is None and (
        aware(row.last_activity_at) <= aware(row.started_at)
    )


def _skip(row: CampaignMessage, reason: str) -> None:
    row.status = "skipped"
    row.reason = reason


def _send_one(rt: Runtime, job: _Job) -> SendResult:
    try:
        sender = make_sender(job.channel, rt.settings, _session())
        return sender.send(Outgoing(id=job.message_id, channel=job.channel, address=job.address, body=job.body,
                                    payload=dict(job.payload)))
    except Exception as error:  # noqa: BLE001 - a sender bug must not lose track of the message
        log.exception("campaign sender for %s failed", job.channel)
        return SendResult(ok=False, error_code="request", error=f"{type(error).__name__}: {error}")


def _session() -> requests.Session:
    session = getattr(_http, "session", None)
    if session is None:
        session = requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=CONCURRENCY)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        _http.session = session
    return session


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
                    "status": "sent", "provider_id": result.provider_id, "attempts": job.attempts,
                    "created_at": now, "sent_at": now,
                } for job, result in sent],
            ).all()
            session.execute(update(CampaignMessage), [
                {"id": job.message_id, "status": "sent", "sent_at": now, "outbound_id": outbound_id, "error": None}
                for (job, _), outbound_id in zip(sent, ids, strict=True)
            ])
        failed = [(job, result) for job, result in outcomes if not result.ok]
        if failed:
            _record_failures(session, failed, now)


def _record_failures(session: Session, failed: list[tuple[_Job, SendResult]], now: datetime) -> None:
    ids = sorted({job.contact_id for job, _ in failed})
    session.scalars(select(Contact.id).where(Contact.id.in_(ids)).order_by(Contact.id).with_for_update()).all()
    for job, result in failed:
        error = f"{result.error_code or ''} {result.error or ''}".strip()[:2000]
        values: dict[str, Any] = {"error": error}
        if _not_sent(result) and job.attempts < MAX_ATTEMPTS:
            values.update(status="pending", due_at=now + RETRY_AFTER * job.attempts)
            _undo(session, job)
        elif result.retry and not _not_sent(result):
            values.update(status="interrupted")
        else:
            values.update(status="failed", reason=(result.error_code or "failed")[:32])
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
    done = {"interrupted": _interrupted(rt, now), "reminders": 0, "expired": 0, "finished": 0}
    for campaign in campaigns:
        if campaign.status == RUNNING and campaign.max_reminders and campaign.remind_after:
            done["reminders"] += _plan_reminders(rt, campaign, now)
        if campaign.expire_after:
            done["expired"] += _expire(rt, campaign, now)
        if campaign.status == RUNNING:
            done["finished"] += _finish(rt, campaign, now)
    if done["reminders"]:
        rt.dispatcher.enqueue("workers.campaigns.tick")
    if any(done.values()):
        log.info("campaigns: %s", ", ".join(f"{n} {what}" for what, n in done.items() if n))
    return done


def _interrupted(rt: Runtime, now: datetime) -> int:
    with rt.sessions() as session, session.begin():
        return session.execute(
            update(CampaignMessage)
            .where(CampaignMessage.status == "sending", CampaignMessage.sending_at < now - STUCK)
            .values(status="interrupted", error="the worker stopped during the provider call; not sent again")
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
            CampaignMessage.status.in_(("pending", "sending")) | (CampaignMessage.sending_at > now - after),
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
                invite.c.status.in_(("sent", "interrupted")),
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
                select(CampaignMessage.session_id, func.max(CampaignMessage.sending_at), func.max(CampaignMessage.number))
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
                "number": (number or 0) + 1, "channel": channel, "timezone": timezone, "status": "pending",
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
            rows = session.scalars(
                select(SurveySession).where(SurveySession.id.in_([i for i, _ in due]),
                                            SurveySession.status == engine.IN_PROGRESS)
            ).all()
            ended = []
            for row in rows:
                definition = rt.catalog.get(row.survey_id, row.version, session)
                step = engine.expire(definition, State.from_dict(row.state))
                row.status = step.state.status
                row.state = step.state.to_dict()
                ended.append(row.id)
            expired += len(ended)
        if ended:
            with rt.sessions() as session, session.begin():
                session.execute(
                    update(CampaignMessage)
                    .where(CampaignMessage.session_id.in_(ended), CampaignMessage.kind == "reminder",
                           CampaignMessage.status == "pending")
                    .values(status="skipped", reason="expired")
                )
    return expired


def _finish(rt: Runtime, campaign: Campaign, now: datetime) -> int:
    """A running campaign with nothing left to send and nobody in the middle is finished."""
    with rt.sessions() as session, session.begin():
        waiting = session.scalar(
            select(func.count()).select_from(CampaignMessage).where(
                CampaignMessage.campaign_id == campaign.id, CampaignMessage.status.in_(("pending", "sending"))
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


def by_status(rt: Runtime, campaign_id: int) -> dict[str, int]:
    """campaign_messages counted by status (for tests and benchmarks)."""
    counts: dict[str, int] = defaultdict(int)
    with rt.sessions() as session:
        for status, n in session.execute(
            select(CampaignMessage.status, func.count())
            .where(CampaignMessage.campaign_id == campaign_id)
            .group_by(CampaignMessage.status)
        ):
            counts[status] = n
    return dict(counts)
