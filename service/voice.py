"""The voice channel behind its webhook: each step of a call goes into the same inbox and engine as a text message,
and the engine's replies come back as the TwiML the call says.

A call is answered while the caller waits, so a step is stored (as every webhook stores), then processed at once in
the request by the inbound worker's own code (same locks, same order, once). The step is not queued for the
workers (they would only wait on the request's locks); one the request could not process is pending, and the
sweeper hands it to a worker. Replies on the voice channel are stored as
sent: the TwiML is their delivery. Whatever goes wrong after the step is kept, the caller hears a short apology and
the call ends (never a 5xx, which Twilio would read out as an application error); the next call goes on from there.

With RETORNO_VOICE_CALLBACK=on an incoming call is rejected before it is answered (free for the caller) and Retorno
calls the number back: once per number within CALLBACK_ONCE_WITHIN, outside quiet hours (RETORNO_VOICE_QUIET_HOURS,
in RETORNO_VOICE_TIMEZONE), within the calls' sending rate that campaigns inviting by call share (service.throttle).
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import parse_qsl

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from bots import voice
from bots.voice import twiml
from service.campaigns.timing import QuietHours, zone
from service.inbox import identity, store, store_status
from service.models import Contact, InboundMessage, OutboundMessage, SurveySession
from service.queue import OUTBOX
from service.rights import marked
from service.runtime import Runtime
from service.throttle import Throttle, sender_for
from surveys.definition import Definition

log = logging.getLogger(__name__)

CALLBACK_ONCE_WITHIN = timedelta(hours=24)
"""A number that calls again and again gets one call back in this time."""
SPOKEN_KINDS = ("reply", "optout")


@dataclass(frozen=True)
class Replies:
    """What the engine answered a step: the texts in order, the last question's payload, and where it stands."""

    texts: list[str]
    question: dict | None
    definition: Definition | None
    language: str


def call_step(rt: Runtime, params: list[tuple[str, str]], query_string: bytes) -> str:
    """The TwiML that answers one verified request of a call (its first, or a `<Gather>` action)."""
    settings = rt.settings
    call = voice.parse_call(params, settings.twilio_account_sid)
    prompt = voice.parse_prompt(dict(parse_qsl(query_string.decode("utf-8", "replace"), keep_blank_values=True)))
    if call.address is None:
        return twiml.ended("no_caller_id")
    try:
        if prompt.question is None and not call.placed and settings.voice_callback:
            schedule_callback(rt, call.address)
            return twiml.reject()
        return _step(rt, call, prompt)
    except Exception as error:  # noqa: BLE001 - the caller hears why, Twilio gets TwiML, never a 5xx
        log.warning("a call step could not be answered (%s); the caller is asked to call later", type(error).__name__)
        return twiml.ended("unavailable")


def _step(rt: Runtime, call: voice.Call, prompt: voice.Prompt) -> str:
    settings = rt.settings
    address_hash = rt.vault.hash(voice.CHANNEL, identity(voice.CHANNEL, call.address or "", settings.default_region))
    language, before = _before(rt, address_hash)
    incoming = voice.step_input(call, prompt, language or "es")
    ids = store(rt, [incoming])
    if ids[0] is not None:
        from workers.inbound import process

        try:
            process([ids[0]])
        except Exception as error:  # noqa: BLE001 - kept in the inbox; a worker processes it, the caller hears why
            log.warning("a call step was stored but not processed (%s); it waits for a worker", type(error).__name__)
            return twiml.ended("unavailable", language or "es")
    replies = _replies(rt, address_hash, before)
    if not replies.texts and ids[0] is not None and _failed(rt, ids[0]):
        return twiml.ended("unavailable", replies.language)
    if incoming.extra.get("silence") and replies.definition is not None:
        said = replies.definition.message("error_empty", replies.language)
        replies.texts[:] = [t.replace(said, twiml.message("no_input", replies.language)) for t in replies.texts]
    if not replies.texts:
        return twiml.ended("goodbye", replies.language)
    ask = _ask(replies) if replies.question is not None else None
    action = twiml.action_url(settings.public_url + voice.PATH, prompt.step + 1, ask) if ask else None
    return twiml.document(replies.texts, replies.language, ask, action, keys_help=prompt.question is None)


def call_status(rt: Runtime, params: list[tuple[str, str]]) -> None:
    """A call status callback: the status of the outbound message (invitation, call back) that placed the call."""
    form = dict(params)
    if (form.get("Direction") or "").strip().lower() == "inbound":
        voice.parse_status(params, rt.settings.twilio_account_sid)  # checked, then left: nothing was placed
        return
    store_status(rt, voice.parse_status(params, rt.settings.twilio_account_sid))


def schedule_callback(rt: Runtime, address: str) -> int | None:
    """Queue a call back to a missed caller; the id of its outbound message, or None when none is due (called back
    already within CALLBACK_ONCE_WITHIN, opted out, erased)."""
    settings = rt.settings
    now = rt.now()
    number = identity(voice.CHANNEL, address, settings.default_region)
    address_hash = rt.vault.hash(voice.CHANNEL, number)
    phone_hash = rt.vault.hash("phone", number)
    with rt.sessions() as session, session.begin():
        if marked(session, voice.CHANNEL, address_hash, phone_hash) or session.scalar(
            select(Contact.id).where(Contact.phone_hash == phone_hash, Contact.opted_out.is_(True)).limit(1)
        ) is not None:
            return None
        contact_id = _ensure_contact(session, rt, address_hash, number, phone_hash, now)
        called = session.scalar(
            select(OutboundMessage.id).where(
                OutboundMessage.contact_id == contact_id,
                OutboundMessage.kind == "callback",
                OutboundMessage.created_at >= now - CALLBACK_ONCE_WITHIN,
            ).limit(1)
        )
        if called is not None:
            return None
        moment = now
        sender = sender_for(settings, voice.CHANNEL)
        if sender is not None:  # the calls' rate, shared with campaigns that invite by call
            throttle = Throttle(session, [(sender.key, sender.rate)], now.timestamp())
            moment = datetime.fromtimestamp(max(now.timestamp(), throttle.starts[sender.key]), now.tzinfo)
            throttle.take(1)
        moment = after_quiet_hours(moment, settings.voice_quiet_hours, settings.voice_timezone)
        message = OutboundMessage(
            contact_id=contact_id, channel=voice.CHANNEL, kind="callback", body="", payload={"callback": True},
            status="queued", attempts=0, created_at=now, next_attempt_at=moment if moment > now else None,
        )
        session.add(message)
        session.flush()
        message_id = message.id
    if moment <= now:
        rt.dispatcher.push(OUTBOX, [message_id])
    log.info("call back queued message=%s at=%s", message_id, moment.isoformat())
    return message_id


def after_quiet_hours(moment: datetime, quiet_hours: str | None, timezone: str) -> datetime:
    """`moment`, or the end of the quiet hours it falls in (local time in `timezone`)."""
    quiet = QuietHours.parse(quiet_hours)
    if quiet is None or not quiet.contains(moment, timezone):
        return moment
    local = moment.astimezone(zone(timezone))
    end = local.replace(hour=quiet.end.hour, minute=quiet.end.minute, second=0, microsecond=0)
    if end <= local:
        end += timedelta(days=1)
    return end.astimezone(moment.tzinfo)


# -- helpers ----------------------------------------------------------------------------------------------


def _before(rt: Runtime, address_hash: str) -> tuple[str | None, int]:
    """The caller's language, and the id of the last message said to them so far (the step's replies come after)."""
    last = (select(OutboundMessage.id).where(OutboundMessage.contact_id == Contact.id)
            .order_by(OutboundMessage.id.desc()).limit(1).scalar_subquery())
    with rt.sessions() as session:
        row = session.execute(select(Contact.language, last).where(
            Contact.channel == voice.CHANNEL, Contact.address_hash == address_hash)).first()
    return (row[0], row[1] or 0) if row is not None else (None, 0)


def _failed(rt: Runtime, message_id: int) -> bool:
    """Whether the step could not be processed (set aside as failed, or still pending for a worker)."""
    with rt.sessions() as session:
        status = session.scalar(select(InboundMessage.status).where(InboundMessage.id == message_id))
    return status in ("failed", "pending")


def _replies(rt: Runtime, address_hash: str, after: int) -> Replies:
    with rt.sessions() as session:
        contact = session.execute(select(Contact.id, Contact.language).where(
            Contact.channel == voice.CHANNEL, Contact.address_hash == address_hash)).first()
        if contact is None:
            return Replies([], None, None, "es")
        rows = session.execute(
            select(OutboundMessage.body, OutboundMessage.payload, OutboundMessage.session_id)
            .where(OutboundMessage.contact_id == contact.id, OutboundMessage.id > after,
                   OutboundMessage.status == "sent", OutboundMessage.kind.in_(SPOKEN_KINDS))
            .order_by(OutboundMessage.id)
        ).all()
        language = contact.language or "es"
        definition = None
        session_id = next((r.session_id for r in reversed(rows) if r.session_id is not None), None)
        if session_id is not None:
            found = session.execute(select(SurveySession.survey_id, SurveySession.version, SurveySession.language)
                                    .where(SurveySession.id == session_id)).first()
            if found is not None:
                definition = rt.catalog.get(found.survey_id, found.version, session)
                language = found.language or language
    last = rows[-1].payload if rows else {}
    question = last if (last or {}).get("question_id") else None
    return Replies([r.body for r in rows], question, definition, language)


def _ask(replies: Replies) -> twiml.Ask:
    """How the last question of a step is asked by phone: its keys, its choices, the words to listen for."""
    payload = replies.question or {}
    question_id = payload["question_id"]
    choices = payload.get("choices") or []
    values = tuple(c["value"] for c in choices)
    labels = tuple(c["label"] for c in choices)
    definition, language = replies.definition, replies.language
    if payload.get("confirm"):
        return twiml.Ask(question_id, "confirm", values, labels, hints=labels)
    question = definition.question(question_id) if definition and definition.has_question(question_id) else None
    kind = question.type if question is not None else ("choice" if choices else "text")
    mode = {"choice": "choice", "yes_no": "yes_no", "multi": "multi", "integer": "number",
            "decimal": "number"}.get(kind, "speech")
    hints: list[str] = list(labels)
    if question is not None:
        for choice in question.choices:
            hints.extend(choice.synonyms.get(language, ()))
        hints.extend(region.name for region in question.regions)
    hints = [h[:100] for h in dict.fromkeys(h.strip() for h in hints if h.strip())][: twiml.MAX_HINTS]
    audio = question.audio.get(language) if question is not None else None
    text = question.text.get(language, "") if question is not None else ""
    return twiml.Ask(question_id, mode, values, labels, hints=tuple(hints), audio=audio, text=text)


def _ensure_contact(session: Session, rt: Runtime, address_hash: str, number: str, phone_hash: str,
                    now: datetime) -> int:
    """The caller's voice contact, created when this is their first call."""
    found = session.scalar(select(Contact.id).where(Contact.channel == voice.CHANNEL,
                                                    Contact.address_hash == address_hash))
    if found is not None:
        return found
    statement = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    session.execute(statement(Contact).on_conflict_do_nothing(index_elements=["channel", "address_hash"]), [{
        "public_id": secrets.token_hex(8), "channel": voice.CHANNEL, "address_hash": address_hash,
        "address_enc": rt.vault.encrypt(number), "phone_hash": phone_hash, "tags": [], "opted_out": False,
        "unreachable": False, "test": False, "created_at": now, "updated_at": now,
    }])
    return session.scalar(select(Contact.id).where(Contact.channel == voice.CHANNEL,
                                                   Contact.address_hash == address_hash))

