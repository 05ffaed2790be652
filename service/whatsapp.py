"""WhatsApp contacts: their session window and opt-in, the templates that start conversations, and what a reply to
a template means.

A WhatsApp contact's `last_inbound_at` says whether free text may reach them (24 hours after they last wrote);
outside that window Retorno sends the campaign's template instead. `last_template_at` says a template went out
since they last wrote: their next message answers the template (a button, "hola", even "sí"), so the survey's
question is asked again in free text rather than read from it; consent is only ever given to the consent question
itself. Their opt-in (`opt_in_at`, `opt_in_source`) comes with the imported list; a STOP on any channel withdraws
it.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bots.twilio import whatsapp as rules
from service.incentives import amount
from service.models import Campaign, Contact, Incentive, OutboundMessage, SurveySession
from surveys import engine
from surveys.definition import Definition
from surveys.engine import Inbound, State, Step

STOP_WORD = "STOP"
WINDOW_CLOSED_ERROR = "window_closed"
NO_CREDIT = {"es": "sin saldo por ahora", "en": "no credit for now"}
"""{{2}} when the wave's budget cannot promise the credit any more."""
_LANGUAGE = re.compile(r"[a-z]{2,3}")


class TemplateError(ValueError):
    """A template option that cannot be used; the message says why."""


# -- replies ----------------------------------------------------------------------------------------------------


def read_reply(contact: Contact, inbound: Inbound, button_payload: str | None) -> tuple[Inbound, bool]:
    """A WhatsApp message opens the window; returns the message to run and whether it answers a template.

    A template's STOP button is a STOP whatever its label says; its other buttons, and the first message after a
    template (unless it is STOP, HELP, a language or a plain request to stop), answer the template rather than
    the survey's question.
    """
    answering = rules.awaiting_reply(contact.last_template_at, contact.last_inbound_at)
    if inbound.at is not None and (contact.last_inbound_at is None or _aware(contact.last_inbound_at) < inbound.at):
        contact.last_inbound_at = inbound.at
    if rules.button_stops(button_payload):
        return replace(inbound, text=STOP_WORD), False
    if not (answering or button_payload) or engine.keyword(inbound.text) or engine.asks_to_stop(inbound.text):
        return inbound, False  # 'ya no me escriban' after a template asks to stop, as on SMS
    return inbound, True


def ask_again(definition: Definition, state: State, inbound: Inbound) -> Step:
    """The answer to a template: the current question (the consent question, after an invitation) in free text."""
    step = engine.remind(definition, state)
    step.state.paused = False
    if not (state.pending or {}).get("minor"):  # the age confirmation is asked again as it is, with its options
        step.state.pending = None  # a "did you mean ...?" the template hid is asked afresh, not confirmed by accident
    if inbound.at is not None:
        step.state.last_at = inbound.at.isoformat()
    return step


# -- opt-in -----------------------------------------------------------------------------------------------------


def has_opt_in(opt_in_at: datetime | None, withdrawn_at: datetime | None) -> bool:
    """An opt-in is recorded and was not withdrawn since."""
    return opt_in_at is not None and (withdrawn_at is None or _aware(withdrawn_at) < _aware(opt_in_at))


def withdrew(opt_in_at: datetime | None, withdrawn_at: datetime | None) -> bool:
    """The person said STOP since their last opt-in (a campaign --without-opt-in still leaves them out)."""
    return withdrawn_at is not None and (opt_in_at is None or _aware(withdrawn_at) >= _aware(opt_in_at))


def withdraw_opt_in(session: Session, contact: Contact, now: datetime) -> None:
    """A STOP: the person's opt-in is withdrawn on every channel their number is on."""
    contact.opt_in_withdrawn_at = now
    if contact.phone_hash:
        session.execute(
            update(Contact)
            .where(Contact.phone_hash == contact.phone_hash, Contact.id != contact.id, Contact.opt_in_at.is_not(None))
            .values(opt_in_withdrawn_at=now)
            .execution_options(synchronize_session=False)
        )


# -- templates --------------------------------------------------------------------------------------------------


def parse_templates(spec: str | None, option: str = "--whatsapp-template") -> dict[str, str]:
    """`es=HX...,en=HX...` (or one `HX...` for every language) as {language: content SID}."""
    text = (spec or "").strip()
    if not text:
        return {}
    found: dict[str, str] = {}
    for part in (p.strip() for p in re.split(r"[,;\s]+", text) if p.strip()):
        language, _, sid = part.rpartition("=")
        language = language.strip().lower() or "*"
        sid = sid.strip()
        if not rules.CONTENT_SID.fullmatch(sid):
            raise TemplateError(f"{option}: {sid!r} is not a Content SID (HX and 32 hex digits, from Twilio's "
                                "Content Template Builder)")
        if language != "*" and not _LANGUAGE.fullmatch(language):
            raise TemplateError(f"{option}: {language!r} is not a language code (write es=HX...,en=HX...)")
        if language in found:
            raise TemplateError(f"{option}: two templates for {'every language' if language == '*' else language}")
        found[language] = sid
    return found


def check_templates(templates: dict[str, dict[str, str]], languages: tuple[str, ...] | list[str],
                    option_of: dict[str, str]) -> None:
    """Every language a template names is one the survey speaks."""
    for kind, by_language in templates.items():
        for language in by_language:
            if language != "*" and language not in languages:
                raise TemplateError(f"{option_of[kind]}: the survey has no language {language!r} "
                                    f"(its languages: {', '.join(languages)})")


def template_for(templates: dict[str, Any] | None, kind: str, language: str | None,
                 default_language: str) -> str | None:
    """The Content SID for `kind` in `language`: the language's own, else every language's, else the default
    language's; reminders without their own use the invitation's."""
    templates = templates or {}
    for wanted in (kind, "invite") if kind == "reminder" else (kind,):
        by_language = templates.get(wanted) or {}
        for key in (language, "*", default_language):
            if key and by_language.get(key):
                return by_language[key]
        if by_language:
            return next(iter(by_language.values()))
    return None


def variables(definition: Definition, language: str, credit: bool = True) -> dict[str, str]:
    """The values a campaign template is sent with: {{1}} the survey's title, {{2}} its credit ("50 MXN", or
    "sin saldo por ahora" once the wave's budget cannot promise it).

    A survey without credit sends {{1}} only (WhatsApp refuses empty values), so its template has no {{2}}.
    """
    title = definition.title.get(language) or definition.title.get(definition.default_language) or definition.id
    values = {"1": title}
    incentive = definition.incentive
    if incentive is not None:
        values["2"] = f"{incentive.amount:g} {incentive.currency}" if credit else NO_CREDIT.get(language, NO_CREDIT["es"])
    return values


# -- replies and notices outside the window ------------------------------------------------------------------------


def outside_window(rt, session: Session, rows: list[Any], now: datetime) -> tuple[dict[int, dict[str, Any]], set[int]]:
    """Queued WhatsApp messages (rows with id, kind, payload, contact_id, session_id, last_inbound_at) that the
    window no longer allows as free text: ({id: template payload} for credit notices whose campaign has a credit
    template, {ids} of the others, which are not sent: failed with `window_closed`)."""
    templates: dict[int, dict[str, Any]] = {}
    closed: set[int] = set()
    for row in rows:
        if rules.window_open(row.last_inbound_at, now) or rules.is_template(row.payload):
            continue
        payload = _credit_template(rt, session, row.session_id) if row.kind == "incentive" else None
        if payload is not None:
            templates[row.id] = payload
        else:
            closed.add(row.id)
    if templates:
        for message_id, payload in templates.items():
            session.execute(update(OutboundMessage).where(OutboundMessage.id == message_id)
                            .values(payload=payload, body=""))
        contact_ids = sorted({row.contact_id for row in rows if row.id in templates})
        session.execute(update(Contact).where(Contact.id.in_(contact_ids)).values(last_template_at=now))
    if closed:
        session.execute(update(OutboundMessage).where(OutboundMessage.id.in_(sorted(closed))).values(
            status="failed", error_code=WINDOW_CLOSED_ERROR,
            error="not sent: outside WhatsApp's 24-hour window, and no template for it (a campaign's "
                  "--whatsapp-credit-template sends the credit notice)"))
    return templates, closed


def _credit_template(rt, session: Session, session_id: int | None) -> dict[str, Any] | None:
    """The credit-sent notice as its campaign's credit template, with the survey's title and the credit."""
    if session_id is None:
        return None
    found = session.execute(
        select(Campaign.templates, SurveySession.survey_id, SurveySession.version, SurveySession.language,
               Incentive.amount_cents, Incentive.currency)
        .join(Campaign, Campaign.id == SurveySession.campaign_id)
        .join(Incentive, Incentive.session_id == SurveySession.id)
        .where(SurveySession.id == session_id)
    ).first()
    if found is None:
        return None
    templates, survey_id, version, language, cents, currency = found
    definition = rt.catalog.get(survey_id, version, session)
    sid = template_for(templates, "credit", language, definition.default_language)
    if sid is None:
        return None
    values = variables(definition, language)
    values["2"] = f"{amount(cents):g} {currency}"
    return rules.template(sid, values)


def _aware(moment: datetime) -> datetime:
    """SQLite gives naive UTC datetimes back."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
