"""What becomes of a campaign message that Twilio refused, or accepted and then could not deliver.

Twilio answers some errors at once and most WhatsApp ones later, in a status callback. Either way the error code
decides (bots/twilio/errors.py): free text outside WhatsApp's 24-hour window goes again as the campaign's template;
an invitation WhatsApp will not carry (not on WhatsApp, not a WhatsApp recipient, a marketing template Meta held
back) goes to the same number by SMS when the campaign allows it (`--fallback sms`); WhatsApp's rate limits send
it again later; the person's opt-out on WhatsApp opts the contact out. The code stays on the campaign message
(`reason`), so the funnel counts every outcome by code.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from bots.twilio import errors
from bots.twilio.whatsapp import WINDOW_CLOSED
from service.models import Campaign, CampaignMessage, Contact, OutboundMessage
from service.privacy import InvalidAddress, normalize_phone
from service.runtime import Runtime

log = logging.getLogger(__name__)

FALLBACK, RETRIED = "fallback", "retried"
MAX_ATTEMPTS = 3
CALL_AGAIN = ("busy", "no-answer")
"""A call that was not picked up (bots.voice: the call's status is the failure's code) is placed again later."""
CALL_AGAIN_AFTER = timedelta(hours=2)
BATCH = 500


@dataclass(frozen=True)
class Failure:
    """A campaign message that did not reach the person, and why."""

    message_id: int
    kind: str
    channel: str
    contact_id: int
    session_id: int | None
    attempts: int
    code: str
    template: bool
    """It was a WhatsApp template already (a template is never "outside the window")."""


def settle(rt: Runtime, session: Session, campaign: Campaign, failure: Failure,
           now: datetime) -> tuple[dict[str, Any], bool] | None:
    """(the campaign message's new values, whether to undo what its claim prepared) when the code calls for
    something besides recording it; None when it does not (the caller records it as before)."""
    if failure.channel == "voice":
        if failure.code in CALL_AGAIN and failure.attempts < MAX_ATTEMPTS:
            return {"status": "pending", "due_at": now + CALL_AGAIN_AFTER, "reason": None}, True
        return None
    known = errors.lookup(failure.code) if failure.channel in ("sms", "whatsapp") else None
    if known is None:
        return None
    if known.action == errors.OPTED_OUT:
        _opt_out(session, failure.contact_id, now)
        return None
    whatsapp = failure.channel == "whatsapp"
    if known.action == errors.TEMPLATE and whatsapp and not failure.template and failure.kind in ("invite", "reminder"):
        return {"status": "pending", "due_at": now, "reason": WINDOW_CLOSED}, True
    if known.action == errors.RETRY and failure.attempts < MAX_ATTEMPTS:
        return {"status": "pending", "due_at": now + timedelta(seconds=known.retry_after or 60), "reason": None}, True
    if known.fallback and whatsapp and failure.kind == "invite" and campaign.fallback == "sms":
        if fall_back(rt, session, campaign, failure, now):
            return {"status": FALLBACK, "reason": failure.code[:32]}, True
    return None


def fall_back(rt: Runtime, session: Session, campaign: Campaign, failure: Failure, now: datetime) -> bool:
    """An SMS invitation to the WhatsApp contact's number, in the same campaign; False when there is no number."""
    person = session.get(Contact, failure.contact_id)
    if person is None:
        return False
    try:
        phone = normalize_phone(rt.vault.decrypt(person.address_enc), rt.settings.default_region)
    except InvalidAddress:
        return False
    sms = _sms_contact(rt, session, person, phone, now)
    table = CampaignMessage.__table__
    insert = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}[session.get_bind().dialect.name](table)
    session.execute(insert.on_conflict_do_nothing(index_elements=["campaign_id", "contact_id", "kind", "number"]), {
        "campaign_id": campaign.id, "contact_id": sms, "kind": "invite", "number": 0, "channel": "sms",
        "timezone": person.timezone or campaign.timezone, "status": "pending", "due_at": now, "attempts": 0,
        "created_at": now, "fallback_of": failure.message_id,
    })
    log.info("campaign %s: WhatsApp invitation %s not delivered (%s); invited by SMS instead", campaign.id,
             failure.message_id, failure.code)
    return True


def _sms_contact(rt: Runtime, session: Session, person: Contact, phone: str, now: datetime) -> int:
    """The number's SMS contact (made from the WhatsApp one: same language, tags and time zone, when new)."""
    vault = rt.vault
    address_hash = vault.hash("sms", phone)
    query = select(Contact.id).where(Contact.channel == "sms", Contact.address_hash == address_hash)
    found = session.scalar(query)
    if found is not None:
        return found
    insert = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}[session.get_bind().dialect.name](Contact)
    session.execute(insert.on_conflict_do_nothing(index_elements=["channel", "address_hash"]), {
        "public_id": secrets.token_hex(8), "channel": "sms", "address_hash": address_hash,
        "address_enc": vault.encrypt(phone), "phone_hash": vault.hash("phone", phone), "language": person.language,
        "tags": list(person.tags or []), "timezone": person.timezone, "opted_out": False, "unreachable": False,
        "created_at": now, "updated_at": now,
    })
    return session.scalar(query)


def _opt_out(session: Session, contact_id: int, now: datetime) -> None:
    session.execute(update(Contact).where(Contact.id == contact_id).values(
        opted_out=True, opted_out_at=now, opt_in_withdrawn_at=now))


# -- delivery reports ---------------------------------------------------------------------------------------------


def reconcile(rt: Runtime, campaign: Campaign, now: datetime, undo) -> int:
    """Campaign messages Twilio accepted and then reported failed: act on their error codes (once each).

    What no code calls for otherwise is `failed` with the code as its reason (an invitation that never arrived
    is no invitation; a reminder that did not still counts as sent, so reminders do not repeat without end).
    """
    o, m = OutboundMessage.__table__.c, CampaignMessage.__table__.c
    done = 0
    with rt.sessions() as session, session.begin():
        rows = session.execute(
            select(m.id, m.kind, m.channel, m.contact_id, m.session_id, m.attempts, o.error_code, o.payload)
            .join(OutboundMessage.__table__, o.id == m.outbound_id)
            .where(
                o.campaign_id == campaign.id,
                o.status.in_(("failed", "undelivered")),
                o.error_code.is_not(None),
                and_(m.campaign_id == campaign.id, m.status == "sent"),
            )
            .order_by(m.contact_id, m.id)
            .limit(BATCH)
        ).all()
        if not rows:
            return 0
        session.scalars(select(Contact.id).where(Contact.id.in_(sorted({r.contact_id for r in rows})))
                        .order_by(Contact.id).with_for_update()).all()
        for row in rows:
            failure = Failure(row.id, row.kind, row.channel, row.contact_id, row.session_id, row.attempts,
                              str(row.error_code), bool((row.payload or {}).get("content_sid")))
            settled = settle(rt, session, campaign, failure, now)
            values, undone = settled or ({"status": "failed", "reason": failure.code[:32]}, failure.kind == "invite")
            if undone:
                undo(session, failure)
            values.setdefault("error", f"{failure.code} {errors.meaning(failure.code)}"[:2000])
            session.execute(update(CampaignMessage).where(CampaignMessage.id == row.id).values(**values))
            done += 1
    return done
