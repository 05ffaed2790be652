"""The rights of the people asked (Mexico's ARCO rights, IOM's data protection principles): access and erasure.

A person is found by phone number (their SMS and WhatsApp contacts, a console address written as that number,
and any Telegram contact that gave it as payout number), by Telegram chat id, or by respondent id.

Erasure deletes, in one transaction, the contacts, their sessions, answers, messages in and out, campaign entries,
reservations and incentive records (a paid or in-flight record stays as an anonymous ledger line: amount, survey,
wave, reference, no person, no number); the budget gets back what was promised and not paid. What remains is an
opt-out marker per keyed hash of the person's addresses, so that no campaign reaches them again, and an audit
entry. The gap snapshots of the surveys they answered are recomputed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from service import audit
from service.incentives import SUBMITTED, SUCCEEDED, amount, budget
from service.models import (
    Answer,
    CampaignMessage,
    Contact,
    InboundMessage,
    Incentive,
    IncentiveReservation,
    OptOutMarker,
    OutboundMessage,
    SurveySession,
)
from service.privacy import InvalidAddress, normalize_phone

log = logging.getLogger(__name__)
PHONE_CHANNELS = ("sms", "whatsapp", "voice")
KEPT_LEDGER = (SUCCEEDED, SUBMITTED)
"""Incentive records that stay, anonymous: paid, or with the provider now (its outcome must still be recorded)."""


class NobodyFound(LookupError):
    """No contact matches; the message says what was looked for (never the number itself)."""


@dataclass
class Erased:
    records: int = 0
    respondents: list[str] = field(default_factory=list)
    surveys: set[tuple[str, int]] = field(default_factory=set)


def find(rt, session: Session, phone: str | None = None, telegram_chat: str | None = None,
         respondent: str | None = None) -> list[Contact]:
    """The contacts of one person, by one of: phone number, Telegram chat id, respondent id."""
    vault = rt.vault
    conditions = []
    if phone:
        raw = phone.strip()
        try:
            e164 = normalize_phone(raw, rt.settings.default_region)
        except InvalidAddress as error:
            raise NobodyFound(f"the phone number is not valid: {error}") from None
        conditions += [
            and_(Contact.channel == channel, Contact.address_hash == vault.hash(channel, e164))
            for channel in PHONE_CHANNELS
        ]
        conditions.append(Contact.phone_hash == vault.hash("phone", e164))
        conditions.append(and_(Contact.channel == "console",
                               Contact.address_hash.in_({vault.hash("console", raw), vault.hash("console", e164)})))
    if telegram_chat:
        conditions.append(and_(Contact.channel == "telegram",
                               Contact.address_hash == vault.hash("telegram", telegram_chat.strip())))
    if respondent:
        conditions.append(Contact.public_id == respondent.strip())
    if not conditions:
        raise NobodyFound("say who: a phone number, a Telegram chat id or a respondent id")
    return list(session.scalars(select(Contact).where(or_(*conditions)).order_by(Contact.id)))


def erase(rt, contacts: Iterable[Contact], actor: str, how: str) -> Erased:
    """Erase these contacts (see the module's docstring); returns how many records went."""
    ids = [c.id for c in contacts]
    result = Erased()
    if not ids:
        return result
    now = rt.now()
    with rt.sessions() as session, session.begin():
        people = session.scalars(select(Contact).where(Contact.id.in_(ids)).order_by(Contact.id)
                                 .with_for_update()).all()
        result.respondents = [c.public_id for c in people]
        sessions = session.execute(
            select(SurveySession.id, SurveySession.survey_id, SurveySession.wave, SurveySession.status)
            .where(SurveySession.contact_id.in_(ids))
        ).all()
        session_ids = [s.id for s in sessions]
        result.surveys = {(s.survey_id, s.wave) for s in sessions if s.status == "completed"}
        result.records += _incentives(session, ids, session_ids)
        for reservation in session.scalars(select(IncentiveReservation.session_id)
                                           .where(IncentiveReservation.session_id.in_(session_ids))).all():
            result.records += int(budget.release(session, reservation))
        keys = [(c.channel, c.address_hash) for c in people]
        deletions = [
            delete(Answer).where(Answer.session_id.in_(session_ids)),
            delete(CampaignMessage).where(CampaignMessage.contact_id.in_(ids)),
            delete(OutboundMessage).where(OutboundMessage.contact_id.in_(ids)),
            delete(InboundMessage).where(or_(
                InboundMessage.contact_id.in_(ids),
                *(and_(InboundMessage.channel == channel, InboundMessage.address_hash == hashed)
                  for channel, hashed in keys),
            )),
            delete(SurveySession).where(SurveySession.id.in_(session_ids)),
            delete(Contact).where(Contact.id.in_(ids)),
        ]
        for statement in deletions:
            result.records += session.execute(statement.execution_options(synchronize_session=False)).rowcount
        markers = {(channel, hashed) for channel, hashed in keys}
        markers |= {("phone", c.phone_hash) for c in people if c.phone_hash and c.channel in PHONE_CHANNELS}
        _mark(session, markers, now)
        audit.add(session, now, actor, "contact.erased", None, records=result.records, contacts=len(people),
                  channels=sorted({c.channel for c in people}), how=how)  # nothing that leads back to them
    _recompute(rt, result.surveys)
    log.info("erased %d contacts (%d records) on request (%s)", len(ids), result.records, how)
    return result


def _incentives(session: Session, ids: list[int], session_ids: list[int]) -> int:
    """Delete the person's incentive records, giving unpaid promises back to their budget; paid and in-flight
    records become anonymous ledger lines. Returns how many records went or were made anonymous."""
    records = session.scalars(
        select(Incentive).where(or_(Incentive.contact_id.in_(ids), Incentive.session_id.in_(session_ids)))
        .with_for_update()
    ).all()
    for record in records:
        if record.status in KEPT_LEDGER:
            record.contact_id = None
            record.session_id = None
            record.phone_hash = None
            record.phone_enc = None
            record.error = None
            continue
        if record.status != "duplicate":
            budget.give_back(session, record.survey_id, record.wave, record.amount_cents)
        session.delete(record)
    session.flush()
    return len(records)


def _mark(session: Session, markers: set[tuple[str, str]], now) -> None:
    if not markers:
        return
    statement = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}[session.get_bind().dialect.name]
    session.execute(
        statement(OptOutMarker).on_conflict_do_nothing(index_elements=["kind", "hash"]),
        [{"kind": kind, "hash": hashed, "created_at": now} for kind, hashed in sorted(markers)],
    )


def _recompute(rt, surveys: set[tuple[str, int]]) -> None:
    """A new release of every survey the person had completed (all its tables; service.gaps.snapshot.recompute)."""
    from service.catalog import UnknownSurvey
    from service.gaps import snapshot

    for survey_id in sorted({survey for survey, _ in surveys}):
        try:
            snapshot.recompute(rt, survey_id)
        except UnknownSurvey:
            continue
        except Exception:  # noqa: BLE001 - the erasure is done; the next release leaves the person out
            log.exception("gap release of %s after an erasure failed", survey_id)


def marked(session: Session, channel: str, address_hash: str, phone_hash: str | None = None) -> bool:
    """Whether an erased person had this address (or this phone number)."""
    wanted = [and_(OptOutMarker.kind == channel, OptOutMarker.hash == address_hash)]
    if phone_hash:
        wanted.append(and_(OptOutMarker.kind == "phone", OptOutMarker.hash == phone_hash))
    return session.scalar(select(OptOutMarker.hash).where(or_(*wanted)).limit(1)) is not None


def request_erasure(session: Session, contact_id: int, now) -> None:
    """The respondent confirmed BORRAR: nothing more is sent to them but the confirmation, and the privacy job
    erases them once it has gone out."""
    session.execute(update(Contact).where(Contact.id == contact_id)
                    .values(erase_requested_at=now, opted_out=True, opted_out_at=now))


# -- access -------------------------------------------------------------------------------------------------


def show(rt, contacts: Iterable[Contact], actor: str) -> dict[str, Any]:
    """Everything stored about a person, to answer an access request (audited)."""
    vault = rt.vault
    people = []
    with rt.sessions() as session, session.begin():
        for contact in contacts:
            people.append(_person(session, vault, contact))
        audit.add(session, rt.now(), actor, "contact.shown", None, contacts=len(people))  # not who: see erase
    return {"generated_at": rt.now().isoformat(), "contacts": people}


def _person(session: Session, vault, contact: Contact) -> dict[str, Any]:
    sessions = session.scalars(select(SurveySession).where(SurveySession.contact_id == contact.id)
                               .order_by(SurveySession.id)).all()
    answers: dict[int, dict[str, Any]] = {s.id: {} for s in sessions}
    for row in session.execute(select(Answer.session_id, Answer.question_id, Answer.value, Answer.skipped)
                               .where(Answer.session_id.in_(list(answers))).order_by(Answer.id)):
        answers[row.session_id][row.question_id] = None if row.skipped else row.value
    inbound = session.scalars(select(InboundMessage).where(InboundMessage.contact_id == contact.id)
                              .order_by(InboundMessage.id)).all()
    outbound = session.scalars(select(OutboundMessage).where(OutboundMessage.contact_id == contact.id)
                               .order_by(OutboundMessage.id)).all()
    incentives = session.scalars(select(Incentive).where(Incentive.contact_id == contact.id)
                                 .order_by(Incentive.id)).all()
    campaigns = session.scalars(select(CampaignMessage).where(CampaignMessage.contact_id == contact.id)
                                .order_by(CampaignMessage.id)).all()
    return {
        "respondent_id": contact.public_id,
        "channel": contact.channel,
        "address": vault.decrypt(contact.address_enc),
        "payout_phone": vault.decrypt(contact.phone_enc) if contact.phone_enc else None,
        "language": contact.language,
        "tags": list(contact.tags or []),
        "timezone": contact.timezone,
        "opted_out": contact.opted_out,
        "test": contact.test,
        "created_at": _iso(contact.created_at),
        "sessions": [
            {"survey_id": s.survey_id, "version": s.version, "wave": s.wave, "status": s.status,
             "language": s.language, "region": s.region, "started_at": _iso(s.started_at),
             "completed_at": _iso(s.completed_at), "answers": answers[s.id]}
            for s in sessions
        ],
        "messages_received": [
            {"at": _iso(m.received_at), "text": message_text(vault, m.body, m.payload), "status": m.status}
            for m in inbound
        ],
        "messages_sent": [{"at": _iso(m.created_at), "text": m.body, "status": m.status} for m in outbound],
        "incentives": [
            {"survey_id": i.survey_id, "wave": i.wave, "amount": amount(i.amount_cents), "currency": i.currency,
             "status": i.status, "phone": vault.decrypt(i.phone_enc) if i.phone_enc else None,
             "paid_at": _iso(i.paid_at)}
            for i in incentives
        ],
        "campaign_messages": [
            {"campaign_id": c.campaign_id, "kind": c.kind, "status": c.status, "sent_at": _iso(c.sent_at)}
            for c in campaigns
        ],
    }


def message_text(vault, body: str, payload: dict[str, Any] | None) -> str:
    """What a respondent wrote: the body, or the sealed one when it held a number (see service.inbox)."""
    sealed = (payload or {}).get("body_enc")
    return vault.decrypt(sealed) if sealed else body


def _iso(moment) -> str | None:
    return audit.aware(moment).isoformat() if moment is not None else None
