"""Campaigns: invite the contacts with a tag to a survey wave, at a rate, outside quiet hours, with reminders.

`create` stores the plan (a draft), `start` takes the audience (one invitation row per tagged contact; starting
again adds contacts tagged since) and lets the sender (workers/campaigns.py) work. Sending, reminders and expiry
run in RQ jobs; this module holds what staff do.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import DateTime, bindparam, exists, func, or_, select, text, update

from service import audit
from service.campaigns.timing import QuietHours, TimingError, check_zone
from service.db import aware
from service.models import Campaign, CampaignMessage, Contact, OptOutMarker
from service.throttle import sender_for
from service.vocabulary import CampaignMessageStatus, CampaignState

DEFAULT_TIMEZONE = "America/Mexico_City"
DEFAULT_REMIND_AFTER = 24 * 3600
DEFAULT_MAX_REMINDERS = 1
DEFAULT_EXPIRE_AFTER = 7 * 86400
TAG = re.compile(r"^[\w.-]{1,64}$")
DRAFT, RUNNING, PAUSED, FINISHED = CampaignState
CHANNELS = ("sms", "whatsapp", "telegram", "voice")
"""The channels a campaign can be limited to (--channel)."""
FALLBACKS = ("sms",)
TEMPLATE_OPTIONS = {"invite": "--whatsapp-template", "reminder": "--whatsapp-reminder-template",
                    "credit": "--whatsapp-credit-template"}


class CampaignError(ValueError):
    """Something staff asked that cannot be done; the message says why."""


class UnknownCampaign(LookupError):
    pass


def normalize_tag(tag: str) -> str:
    """Tags are compared in lowercase; letters, digits, '_', '-' and '.'."""
    value = (tag or "").strip().lower()
    if not TAG.match(value):
        raise CampaignError(f"{tag!r} is not a tag: use letters, digits, _ - or . (no spaces), at most 64")
    return value


@dataclass(frozen=True)
class Plan:
    """What `retorno campaigns create` was asked, validated."""

    survey_id: str
    tag: str
    wave: int = 1
    rate: float | None = None
    quiet_hours: QuietHours | None = None
    timezone: str = DEFAULT_TIMEZONE
    remind_after: int | None = DEFAULT_REMIND_AFTER
    max_reminders: int = DEFAULT_MAX_REMINDERS
    expire_after: int | None = DEFAULT_EXPIRE_AFTER
    channel: str | None = None
    templates: dict[str, dict[str, str]] = field(default_factory=dict)
    """WhatsApp templates by use ('invite', 'reminder', 'credit'), each {language: Content SID}."""
    fallback: str | None = None
    opt_in_required: bool = True

    def __post_init__(self) -> None:
        if self.channel is not None and self.channel not in CHANNELS:
            raise CampaignError(f"--channel {self.channel}: not a channel; use sms, whatsapp, telegram or voice")
        if self.fallback is not None and self.fallback not in FALLBACKS:
            raise CampaignError(f"--fallback {self.fallback}: the only fallback is sms")
        if self.fallback and self.channel not in (None, "whatsapp"):
            raise CampaignError(f"--fallback sms is for WhatsApp contacts; this campaign is --channel {self.channel}")
        if self.templates and self.channel not in (None, "whatsapp"):
            raise CampaignError(f"WhatsApp templates are for WhatsApp contacts; this campaign is --channel "
                                f"{self.channel}")
        if self.wave < 1:
            raise CampaignError("--wave must be 1 or more")
        if self.rate is not None and not 0 < self.rate <= 1000:
            raise CampaignError("--rate must be more than 0 and at most 1000 messages per second")
        if self.max_reminders < 0 or self.max_reminders > 10:
            raise CampaignError("--max-reminders must be between 0 and 10")
        if self.max_reminders and not self.remind_after:
            raise CampaignError("reminders need --remind-after")
        try:
            check_zone(self.timezone)
        except TimingError as error:
            raise CampaignError(str(error)) from None


def create(rt, plan: Plan, allow_empty: bool = True) -> Campaign:
    """A draft campaign; its survey must exist, and unless `allow_empty`, a contact must have its tag."""
    from service.catalog import UnknownSurvey

    try:
        definition = rt.catalog.current(plan.survey_id)
    except UnknownSurvey:
        known = ", ".join(d.id for d in rt.catalog.all_current())
        raise CampaignError(f"there is no survey {plan.survey_id!r} (known: {known})") from None
    _check_whatsapp(rt, plan, definition)
    if not allow_empty and audience_size(rt, plan.tag, plan.channel) == 0:
        tag = normalize_tag(plan.tag)
        on = f" on {plan.channel}" if plan.channel else ""
        raise CampaignError(f"no contact{on} has the tag {tag!r}: import them first (retorno contacts import FILE "
                            f"--tag {tag}), or create it anyway with --allow-empty")
    quiet = plan.quiet_hours
    campaign = Campaign(
        survey_id=plan.survey_id,
        tag=normalize_tag(plan.tag),
        wave=plan.wave,
        status=DRAFT,
        rate=plan.rate,
        quiet_start=f"{quiet.start:%H:%M}" if quiet else None,
        quiet_end=f"{quiet.end:%H:%M}" if quiet else None,
        timezone=plan.timezone,
        remind_after=plan.remind_after if plan.max_reminders else None,
        max_reminders=plan.max_reminders,
        expire_after=plan.expire_after,
        channel=plan.channel,
        templates={kind: dict(sids) for kind, sids in plan.templates.items() if sids} or None,
        fallback=plan.fallback,
        opt_in_required=plan.opt_in_required,
        created_at=rt.now(),
    )
    with rt.sessions() as session, session.begin():
        session.add(campaign)
    return campaign


def get(rt, campaign_id: int) -> Campaign:
    with rt.sessions() as session:
        campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise UnknownCampaign(campaign_id)
    return campaign


def all_campaigns(rt) -> list[Campaign]:
    with rt.sessions() as session:
        return list(session.scalars(select(Campaign).order_by(Campaign.id)))


def audience_size(rt, tag: str, channel: str | None = None) -> int:
    """How many contacts carry `tag` now (on `channel`, when given)."""
    with rt.sessions() as session:
        query = select(func.count()).select_from(Contact).where(_has_tag(session, normalize_tag(tag)))
        if channel:
            query = query.where(Contact.channel == channel)
        return session.scalar(query)


def _check_whatsapp(rt, plan: Plan, definition) -> None:
    """A campaign that reaches WhatsApp contacts names its invitation template, in the survey's languages."""
    from service.whatsapp import TemplateError, check_templates

    try:
        check_templates(plan.templates, definition.languages, TEMPLATE_OPTIONS)
    except TemplateError as error:
        raise CampaignError(str(error)) from None
    invite = plan.templates.get("invite") or {}
    if invite and not ({"*", definition.default_language} & set(invite)):
        raise CampaignError(f"--whatsapp-template: add the survey's default language, "
                            f"{definition.default_language}=HX... (others without their own get it)")
    if invite or plan.channel not in (None, "whatsapp"):
        return
    on_whatsapp = audience_size(rt, plan.tag, "whatsapp")
    if plan.channel == "whatsapp" or on_whatsapp:
        who = f"{on_whatsapp:,} contact{'' if on_whatsapp == 1 else 's'} tagged {normalize_tag(plan.tag)} " \
            f"{'is' if on_whatsapp == 1 else 'are'} on WhatsApp, which" if on_whatsapp else "WhatsApp"
        raise CampaignError(f"{who} needs an approved template to start a conversation: add --whatsapp-template "
                            f"{definition.default_language}=HX... (see the README, WhatsApp templates)"
                            + ("" if plan.channel else ", or limit the campaign with --channel sms"))


@dataclass(frozen=True)
class Started:
    campaign: Campaign
    added: int
    skipped: int
    audience: int
    reasons: dict[str, int] = field(default_factory=dict)
    """Why the skipped will not be invited: opted_out, unreachable, no_opt_in, no_template."""


def start(rt, campaign_id: int, actor: str | None = None) -> Started:
    """Take the audience (again: contacts tagged since are added) and let the sender go.

    Contacts who opted out, are unreachable, or whose address or number belonged to a person who was erased
    (an opt-out marker) are skipped. `actor` is who started it, for the audit log (default: this command's user).
    """
    now = rt.now()
    rt.catalog.ensure_published()
    with rt.sessions() as session, session.begin():
        campaign = session.get(Campaign, campaign_id, with_for_update=True)
        if campaign is None:
            raise UnknownCampaign(campaign_id)
        if campaign.version is None:
            campaign.version = rt.catalog.current(campaign.survey_id, session).version
        before = _count(session, campaign.id)
        session.execute(_audience_insert(session, campaign.channel), {
            "campaign": campaign.id, "tz": campaign.timezone, "now": now,
            "tag": campaign.tag, "tags": json.dumps([campaign.tag]), "channel": campaign.channel,
        })
        audience = _count(session, campaign.id)
        reasons: dict[str, int] = {}
        for reason, flag in _not_invited(campaign):
            reasons[reason] = session.execute(
                update(CampaignMessage)
                .where(
                    CampaignMessage.campaign_id == campaign.id,
                    CampaignMessage.status == CampaignMessageStatus.PENDING,
                    CampaignMessage.kind == "invite",
                    CampaignMessage.contact_id.in_(select(Contact.id).where(flag)),
                )
                .values(status=CampaignMessageStatus.SKIPPED, reason=reason)
            ).rowcount
        skipped = sum(reasons.values())
        campaign.status = RUNNING
        campaign.started_at = campaign.started_at or now
        campaign.finished_at = None
        audit.add(session, now, actor or audit.cli_actor(), "campaign.started", f"campaign {campaign.id}",
                  survey_id=campaign.survey_id, wave=campaign.wave, tag=campaign.tag, audience=audience)
    rt.dispatcher.enqueue("workers.campaigns.tick", None, True)
    return Started(campaign, audience - before, skipped, audience, {k: n for k, n in reasons.items() if n})


def _not_invited(campaign: Campaign):
    """(reason, which contacts) for those of the audience who are not invited at all."""
    yield "erased", _erased_before()
    yield "opted_out", Contact.opted_out.is_(True)
    yield "unreachable", Contact.unreachable.is_(True)
    whatsapp = Contact.channel == "whatsapp"
    if not (campaign.templates or {}).get("invite"):
        yield "no_template", whatsapp
    withdrawn = Contact.opt_in_withdrawn_at.is_not(None) & (
        Contact.opt_in_at.is_(None) | (Contact.opt_in_withdrawn_at >= Contact.opt_in_at))
    yield "opt_in_withdrawn", whatsapp & withdrawn
    if campaign.opt_in_required:
        yield "no_opt_in", whatsapp & Contact.opt_in_at.is_(None)


def _erased_before():
    """SQL: the contact's address (or phone number) has an opt-out marker: its person was erased."""
    return or_(
        exists().where(OptOutMarker.kind == Contact.channel, OptOutMarker.hash == Contact.address_hash),
        exists().where(OptOutMarker.kind == "phone", OptOutMarker.hash == Contact.phone_hash),
    )


def pause(rt, campaign_id: int) -> Campaign:
    """Stop sending (what is being sent finishes); `start` resumes. Expiry goes on."""
    with rt.sessions() as session, session.begin():
        campaign = session.get(Campaign, campaign_id, with_for_update=True)
        if campaign is None:
            raise UnknownCampaign(campaign_id)
        if campaign.status not in (RUNNING, PAUSED):
            raise CampaignError(f"campaign {campaign_id} is {campaign.status}; only a running campaign can be paused")
        campaign.status = PAUSED
    return campaign


def cancel(rt, campaign_id: int, actor: str | None = None) -> Campaign:
    """Stop for good: invitations not yet sent are skipped (reason "cancelled"); sessions already started go on
    and expire as planned. A finished campaign stays as it is."""
    now = rt.now()
    with rt.sessions() as session, session.begin():
        campaign = session.get(Campaign, campaign_id, with_for_update=True)
        if campaign is None:
            raise UnknownCampaign(campaign_id)
        if campaign.status == FINISHED:
            raise CampaignError(f"campaign {campaign_id} is already finished")
        skipped = session.execute(
            update(CampaignMessage)
            .where(CampaignMessage.campaign_id == campaign.id, CampaignMessage.status == "pending")
            .values(status="skipped", reason="cancelled")
        ).rowcount
        campaign.status = FINISHED
        campaign.finished_at = now
        audit.add(session, now, actor or audit.cli_actor(), "campaign.cancelled", f"campaign {campaign.id}",
                  skipped=skipped)
    return campaign


def senders(rt, campaign: Campaign) -> dict[str, str]:
    """channel -> what sends it and how fast, for the channels of the campaign's contacts ('' when none can)."""
    with rt.sessions() as session:
        channels = session.scalars(
            select(CampaignMessage.channel).where(CampaignMessage.campaign_id == campaign.id).distinct()
        ).all()
    described = {}
    for channel in sorted(channels):
        sender = sender_for(rt.settings, channel)
        if sender is None:
            described[channel] = ""
            continue
        rate = min(sender.rate, campaign.rate or sender.rate)
        described[channel] = f"{rate:g}/s via {sender.key.split(':')[0]}"
    return described


def _count(session, campaign_id: int) -> int:
    return session.scalar(
        select(func.count()).select_from(CampaignMessage).where(
            CampaignMessage.campaign_id == campaign_id, CampaignMessage.kind == "invite"
        )
    )


def _has_tag(session, tag: str):
    if session.get_bind().dialect.name == "postgresql":
        return text("contacts.tags @> CAST(:tags AS jsonb)").bindparams(tags=json.dumps([tag]))
    return text("EXISTS (SELECT 1 FROM json_each(contacts.tags) WHERE json_each.value = :tag)").bindparams(tag=tag)


def _audience_insert(session, channel: str | None = None):
    """INSERT one pending invitation per tagged contact (on `channel`), skipping those already in the campaign."""
    if session.get_bind().dialect.name == "postgresql":
        condition = "c.tags @> CAST(:tags AS jsonb)"
    else:
        condition = "EXISTS (SELECT 1 FROM json_each(c.tags) WHERE json_each.value = :tag)"
    if channel:
        condition += " AND c.channel = :channel"
    return text(
        "INSERT INTO campaign_messages (campaign_id, contact_id, kind, number, channel, timezone, status, due_at, "
        "attempts, created_at) "
        "SELECT :campaign, c.id, 'invite', 0, c.channel, COALESCE(c.timezone, :tz), 'pending', :now, 0, :now "
        f"FROM contacts c WHERE {condition} ORDER BY c.id "
        "ON CONFLICT (campaign_id, contact_id, kind, number) DO NOTHING"
    ).bindparams(bindparam("now", type_=DateTime(timezone=True)))


def moment(value: datetime | None) -> str | None:
    """ISO 8601 in UTC (SQLite returns naive UTC datetimes)."""
    return aware(value).isoformat() if value is not None else None
