"""How far a campaign got: invited, delivered, started, consented, completed, opted out, expired, ineligible
(screened out, e.g. a minor), and where unfinished respondents stopped. Counts only; no one is named."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, case, func, or_, select

from bots.twilio import errors
from service.campaigns import UnknownCampaign, moment, senders
from service.campaigns.timing import QuietHours, format_duration
from service.models import Campaign, CampaignMessage, OutboundMessage, SurveySession

COUNTS = ("invited", "delivered", "started", "consented", "completed", "opted_out", "expired", "ineligible")
UNFINISHED = ("in_progress", "expired", "opted_out")


def report(rt, campaign_id: int) -> dict[str, Any]:
    """The campaign's funnel as the API and `retorno campaigns status --json` give it."""
    with rt.sessions() as session:
        campaign = session.get(Campaign, campaign_id)
        if campaign is None:
            raise UnknownCampaign(campaign_id)
        instead = CampaignMessage.fallback_of.is_not(None)
        messages = session.execute(
            select(CampaignMessage.kind, CampaignMessage.status, CampaignMessage.reason, instead, func.count())
            .where(CampaignMessage.campaign_id == campaign_id)
            .group_by(CampaignMessage.kind, CampaignMessage.status, CampaignMessage.reason, instead)
        ).all()
        failures = _failures(session, campaign)
        delivered = session.scalar(
            select(func.count()).select_from(OutboundMessage).where(
                OutboundMessage.campaign_id == campaign_id,
                OutboundMessage.kind == "invite",
                OutboundMessage.status.in_(("delivered", "read")),
            )
        )
        replied = or_(
            SurveySession.consented_at.is_not(None),
            SurveySession.status.in_(("completed", "declined", "opted_out", "ineligible")),
            SurveySession.last_activity_at > SurveySession.started_at,
        )
        sessions = session.execute(
            select(
                func.count(case((replied, 1))),
                func.count(SurveySession.consented_at),
                func.count(case((SurveySession.status == "completed", 1))),
                func.count(case((SurveySession.status == "opted_out", 1))),
                func.count(case((SurveySession.status == "expired", 1))),
                func.count(case((SurveySession.status == "ineligible", 1))),
            ).where(SurveySession.campaign_id == campaign_id)
        ).one()
        stops = session.execute(
            select(SurveySession.question, SurveySession.status, func.count())
            .where(and_(SurveySession.campaign_id == campaign_id, SurveySession.status.in_(UNFINISHED)))
            .group_by(SurveySession.question, SurveySession.status)
        ).all()
    invites: dict[tuple[str, str | None], int] = {}
    reminders: dict[str, int] = {}
    by_sms: dict[str, int] = {}
    for kind, status, reason, fallback, n in messages:
        if kind == "invite":
            invites[(status, reason)] = invites.get((status, reason), 0) + n
            if fallback:
                by_sms[status] = by_sms.get(status, 0) + n
        elif kind == "reminder":
            reminders[status] = reminders.get(status, 0) + n
    counts = dict(zip(COUNTS, [_sum(invites, "sent"), delivered, *sessions], strict=True))
    not_invited: dict[str, int] = {}
    for (status, reason), n in invites.items():
        if status in ("skipped", "failed", "interrupted"):
            key = reason if status == "skipped" and reason else status
            not_invited[key] = not_invited.get(key, 0) + n
    quiet = QuietHours.of(campaign.quiet_start, campaign.quiet_end)
    return {
        "id": campaign.id,
        "survey_id": campaign.survey_id,
        "wave": campaign.wave,
        "status": campaign.status,
        "counts": counts,
        "tag": campaign.tag,
        "survey_version": campaign.version,
        "audience": sum(invites.values()) - sum(by_sms.values()),
        "pending": _sum(invites, "pending") + _sum(invites, "sending"),
        "not_invited": dict(sorted(not_invited.items())),
        "reminders_sent": reminders.get("sent", 0),
        "reminders_pending": reminders.get("pending", 0) + reminders.get("sending", 0),
        "drop_off": _drop_off(rt, campaign, stops),
        "errors": failures,
        "fallback_sms": {
            "invited": by_sms.get("sent", 0),
            "pending": by_sms.get("pending", 0) + by_sms.get("sending", 0),
            "not_invited": sum(n for status, n in by_sms.items() if status not in ("sent", "pending", "sending")),
        },
        "settings": {
            "rate": campaign.rate,
            "quiet_hours": str(quiet) if quiet else None,
            "timezone": campaign.timezone,
            "remind_after": format_duration(campaign.remind_after) if campaign.remind_after else None,
            "max_reminders": campaign.max_reminders,
            "expire_after": format_duration(campaign.expire_after) if campaign.expire_after else None,
            "channel": campaign.channel,
            "whatsapp_templates": campaign.templates or {},
            "fallback": campaign.fallback,
            "opt_in_required": campaign.opt_in_required,
        },
        "senders": senders(rt, campaign),
        "created_at": moment(campaign.created_at),
        "started_at": moment(campaign.started_at),
        "finished_at": moment(campaign.finished_at),
    }


def invited_counts(rt) -> dict[int, tuple[int, int]]:
    """campaign id -> (invited, audience): what `retorno campaigns list` shows, in one query."""
    sent = func.count(case((CampaignMessage.status == "sent", 1)))
    people = func.count(case((CampaignMessage.fallback_of.is_(None), 1)))  # an SMS fallback is the same person
    with rt.sessions() as session:
        rows = session.execute(
            select(CampaignMessage.campaign_id, sent, people)
            .where(CampaignMessage.kind == "invite")
            .group_by(CampaignMessage.campaign_id)
        ).all()
    return {campaign_id: (invited, audience) for campaign_id, invited, audience in rows}


def _failures(session, campaign: Campaign) -> list[dict[str, Any]]:
    """Every error code the provider gave this campaign's messages, with its meaning and what came of it: those
    it reported after taking the message (delivery reports) and those it refused at once."""
    counted: dict[tuple[str, str], int] = {}
    reported = session.execute(
        select(OutboundMessage.kind, OutboundMessage.error_code, func.count())
        .where(OutboundMessage.campaign_id == campaign.id, OutboundMessage.error_code.is_not(None))
        .group_by(OutboundMessage.kind, OutboundMessage.error_code)
    ).all()
    refused = session.execute(
        select(CampaignMessage.kind, CampaignMessage.reason, func.count())
        .where(CampaignMessage.campaign_id == campaign.id, CampaignMessage.outbound_id.is_(None),
               CampaignMessage.status.in_(("failed", "fallback")), CampaignMessage.reason.is_not(None))
        .group_by(CampaignMessage.kind, CampaignMessage.reason)
    ).all()
    for kind, code, n in [*reported, *refused]:
        counted[(code, kind)] = counted.get((code, kind), 0) + n
    rows: dict[str, dict[str, Any]] = {}
    for (code, kind), n in counted.items():
        known = errors.lookup(code)
        if known is None and not code.isdigit():
            meaning, outcome = code.replace("_", " "), "not sent"
        else:
            meaning = errors.meaning(code)
            outcome = known.outcome if known else "not sent"
            if known and known.fallback and campaign.fallback == "sms" and kind == "invite":
                outcome = "invited by SMS instead"
        row = rows.setdefault(code, {"code": code, "meaning": meaning, "count": 0, "outcomes": {}})
        row["count"] += n
        row["outcomes"][outcome] = row["outcomes"].get(outcome, 0) + n
    return sorted(rows.values(), key=lambda row: (-row["count"], row["code"]))


def _sum(invites: dict[tuple[str, str | None], int], status: str) -> int:
    return sum(n for (s, _), n in invites.items() if s == status)


def _drop_off(rt, campaign: Campaign, stops) -> list[dict[str, Any]]:
    """Per question, in survey order: how many unfinished respondents wait there, expired there, left there."""
    by_question: dict[str, dict[str, int]] = {}
    for question, status, n in stops:
        if question is None:
            continue
        entry = by_question.setdefault(question, {"waiting": 0, "expired": 0, "opted_out": 0})
        entry["waiting" if status == "in_progress" else status] += n
    order: list[str] = []
    if campaign.version is not None:
        definition = rt.catalog.get(campaign.survey_id, campaign.version)
        order = [q.id for q in definition.questions]
    ranked = sorted(by_question, key=lambda q: (order.index(q) if q in order else len(order), q))
    return [{"question": q, **by_question[q]} for q in ranked]
