"""The staff console's pages: login, simulator, surveys, tokens, contacts, campaigns, incentives.

Each page calls the same functions as the CLI (service.campaigns, service.contacts, service.rights,
service.incentives.ledger, service.auth tokens, surveys.loader); every action is written to the audit log.
"""

from __future__ import annotations

import csv
import difflib
import io
from collections import Counter
from typing import Any

from flask import Response, g, jsonify, redirect, request, url_for
from sqlalchemy import func, select

from service import audit
from service.auth import TokenError, authenticate, create_token, duration, list_tokens, revoke_token
from service.catalog import UnknownSurvey
from service.dashboard import COOKIE, SESSION_TTL, _open_session, _secure
from service.models import Contact, SurveySession
from service.staff.access import (
    STAFF_COOKIE_PATH,
    language,
    login_page,
    page,
    runtime,
    same_origin,
    secured,
    staff_only,
)
from service.staff.blueprint import staff
from service.staff.simulate import CHANNELS, SimulationError, read_messages, simulate
from service.staff.words import WORDS
from surveys.definition import CONSENT_ID
from surveys.loader import SurveyError, load_text, review_text

MAX_SOURCE = 512 * 1024


@staff.get("/staff/login")
def login_form():
    return login_page(200)


@staff.post("/staff/login")
def login():
    rt = runtime()
    if not same_origin():
        return login_page(403, WORDS[language()]["stale_form"])
    caller = authenticate(rt, (request.form.get("token") or "").strip())
    if caller is None:
        return login_page(401, WORDS[language()]["bad_token"])
    if caller.role != "staff":
        return login_page(403, WORDS[language()]["forbidden"])
    response = redirect(url_for("staff.home"), code=303)
    session_id = _open_session(rt, caller)
    for path in (STAFF_COOKIE_PATH, "/dashboard"):  # one session for both: the analysts' pages need no new login
        response.set_cookie(COOKIE, session_id, httponly=True, samesite="Strict", secure=_secure(rt), path=path,
                            max_age=int(SESSION_TTL.total_seconds()))
    return secured(response)


@staff.post("/staff/logout")
@staff_only
def logout():
    from service.dashboard import _session_hash
    from service.models import DashboardSession

    rt = runtime()
    now = rt.now()
    with rt.sessions() as session, session.begin():
        row = session.get(DashboardSession, _session_hash(request.cookies.get(COOKIE, "")))
        if row is not None and row.revoked_at is None:
            row.revoked_at = now
            audit.add(session, now, g.caller.actor, "dashboard.logout", f"token #{g.caller.token_id}", via="staff")
    response = redirect(url_for("staff.login_form"), code=303)
    for path in (STAFF_COOKIE_PATH, "/dashboard"):
        response.delete_cookie(COOKIE, path=path, secure=_secure(rt), httponly=True, samesite="Strict")
    return response


@staff.get("/staff")
@staff_only
def home():
    return page("home.html")


# -- simulator -------------------------------------------------------------------------------------------------


@staff.route("/staff/simulator", methods=["GET", "POST"])
@staff_only
def simulator():
    rt = runtime()
    draft = request.form.get("source", "")[:MAX_SOURCE] if request.method == "POST" else ""
    surveys = rt.catalog.all_current()
    versions = rt.catalog.versions()
    chosen = request.values.get("survey") or rt.settings.default_survey
    definition = next((d for d in surveys if d.id == chosen), surveys[0] if surveys else None)
    if draft:
        try:
            definition = load_text(draft)
        except SurveyError:
            definition = None
    wanted_version = request.values.get("version", "")
    if definition is not None and not draft and _digits(wanted_version, 9):
        try:
            definition = rt.catalog.get(definition.id, int(wanted_version))
        except UnknownSurvey:
            pass
    channel = request.values.get("channel") if request.values.get("channel") in CHANNELS else "sms"
    survey_language = request.values.get("survey_language") or language()
    if definition is not None and survey_language not in definition.languages:
        survey_language = definition.default_language
    return page("simulator.html", surveys=surveys, versions=versions, definition=definition, draft=draft,
                channel=channel, channels=CHANNELS, survey_language=survey_language)


@staff.post("/staff/simulator/run")
@staff_only
def simulator_run():
    body = request.get_json(silent=True)
    try:
        if not isinstance(body, dict):
            raise SimulationError('send JSON: {"survey", "language", "channel", "messages": [...]}')
        result = run_simulation(body, allow_draft=True)
        if len(result["turns"]) == 1:  # a conversation begins (not each of its messages)
            audit.record(runtime(), g.caller.actor, "survey.simulated", f"{result['survey_id']} v{result['version']}",
                         channel=result["channel"], draft=bool(body.get("source")))
    except SimulationError as error:
        return jsonify({"error": {"code": "bad_request", "message": str(error)}}), 400
    except UnknownSurvey as error:
        return jsonify({"error": {"code": "unknown_survey", "message": f"no survey {error.args[0]}"}}), 404
    return jsonify(result)


def run_simulation(body: dict[str, Any], survey_id: str | None = None, allow_draft: bool = False) -> dict[str, Any]:
    """A simulation from a request body: `{survey, version?, source?, language, channel, messages}`."""
    rt = runtime()
    source = body.get("source") if allow_draft else None
    if isinstance(source, str) and source.strip():
        try:
            definition = load_text(source[:MAX_SOURCE])
        except SurveyError as error:
            first = error.problems[0]
            raise SimulationError(f"the draft is not a valid survey (line {first.line}: {first.message})") from None
    else:
        survey_id = survey_id or str(body.get("survey") or "")
        version = body.get("version")
        if version not in (None, ""):
            if not _digits(str(version), 9):
                raise SimulationError("version must be a version number (1, 2, ...)")
            definition = rt.catalog.get(survey_id, int(version))
        else:
            definition = rt.catalog.current(survey_id)
    language = body.get("language") or definition.default_language
    channel = body.get("channel") or "sms"
    if not isinstance(language, str) or not isinstance(channel, str):
        raise SimulationError("language and channel must be texts")
    messages = read_messages(body.get("messages", []))
    return simulate(definition, language, channel, messages, rt.now(), rt.settings.default_region)


# -- audit log ---------------------------------------------------------------------------------------------------


@staff.get("/staff/audit")
@staff_only
def audit_log():
    """The latest entries of the audit log, newest first (never a phone number: the log holds none)."""
    from sqlalchemy import desc

    from service.models import AuditEntry

    rt = runtime()
    with rt.sessions() as session:
        rows = session.scalars(select(AuditEntry).order_by(desc(AuditEntry.at), desc(AuditEntry.id)).limit(300)).all()
    entries = [{"at": audit.aware(row.at).isoformat()[:19].replace("T", " "), "actor": row.actor,
                "action": row.action, "target": row.target or "",
                "detail": ", ".join(f"{k}={v}" for k, v in (row.detail or {}).items())} for row in rows]
    return page("audit.html", entries=entries)


# -- surveys -----------------------------------------------------------------------------------------------------


def _respondents() -> dict[tuple[str, int], dict[str, int]]:
    """(survey, version) -> sessions and completed ones, test contacts (the console) left out."""
    rt = runtime()
    with rt.sessions() as session:
        rows = session.execute(
            select(SurveySession.survey_id, SurveySession.version, SurveySession.status, func.count())
            .join(Contact, Contact.id == SurveySession.contact_id).where(Contact.test.is_(False))
            .group_by(SurveySession.survey_id, SurveySession.version, SurveySession.status)
        ).all()
    found: dict[tuple[str, int], dict[str, int]] = {}
    for survey_id, version, status, n in rows:
        entry = found.setdefault((survey_id, version), {"sessions": 0, "completed": 0})
        entry["sessions"] += n
        entry["completed"] += n if status == "completed" else 0
    return found


@staff.get("/staff/surveys")
@staff_only
def surveys():
    return _surveys_page()


def _surveys_page(status: int = 200, **context: Any) -> Response:
    rt = runtime()
    listed = rt.catalog.all_current()
    return page("surveys.html", status, surveys=listed, versions=rt.catalog.versions(), respondents=_respondents(),
                published=request.args.get("published"), **context)


def _posted_source() -> str:
    upload = request.files.get("file")
    if upload is not None and upload.filename:
        return upload.read(MAX_SOURCE).decode("utf-8", errors="replace")
    return (request.form.get("source") or "")[:MAX_SOURCE]


@staff.post("/staff/surveys/check")
@staff_only
def surveys_check():
    source = _posted_source()
    if not source.strip():
        return _surveys_page(400, error=WORDS[language()]["file_or_paste"])
    review = review_text(source)
    cost = None
    if review.definition is not None:
        from surveys.costs import survey_cost

        cost = survey_cost(review.definition, review.lines)
    lines = source.splitlines()
    bad = {p.line for p in review.problems}
    audit.record(runtime(), g.caller.actor, "survey.checked", review.definition.id if review.definition else None,
                 problems=len(review.problems))
    return _surveys_page(200 if review.definition else 422, review=review, source=source, numbered=lines,
                         bad_lines=bad, cost=cost)


@staff.post("/staff/surveys/publish")
@staff_only
def surveys_publish():
    source = _posted_source()
    try:
        definition = runtime().catalog.publish_source(source, g.caller.actor)
    except SurveyError as error:
        review = review_text(source)
        return _surveys_page(422, review=review, source=source, numbered=source.splitlines(),
                             bad_lines={p.line for p in error.problems}, cost=None)
    return redirect(url_for("staff.surveys", published=f"{definition.id} v{definition.version}"), code=303)


@staff.get("/staff/surveys/<survey_id>/diff")
@staff_only
def surveys_diff(survey_id: str):
    rt = runtime()
    versions = rt.catalog.versions().get(survey_id)
    if not versions:
        return page("message.html", 404, message=f"no survey {survey_id}")
    newest = versions[0]
    older = versions[1] if len(versions) > 1 else newest
    first = _whole(request.args.get("from"), older)
    second = _whole(request.args.get("to"), newest)
    try:
        before, after = rt.catalog.source(survey_id, first), rt.catalog.source(survey_id, second)
    except UnknownSurvey:
        return page("message.html", 404, message=f"no survey {survey_id} v{first} or v{second}")
    lines = list(difflib.unified_diff(before.splitlines(), after.splitlines(), f"v{first}", f"v{second}",
                                      lineterm="", n=3))
    rows = [{"text": line, "kind": "added" if line.startswith("+") and not line.startswith("+++")
             else "removed" if line.startswith("-") and not line.startswith("---")
             else "hunk" if line.startswith("@@") else "same"} for line in lines]
    return page("diff.html", survey_id=survey_id, versions=versions, first=first, second=second, rows=rows)


def _digits(value: str | None, most: int) -> bool:
    """ASCII digits only ('²' and '٣' are digits to str.isdigit), at most `most` of them."""
    return bool(value) and len(value) <= most and value.isascii() and value.isdigit()


def _whole(value: str | None, default: int) -> int:
    return int(value) if _digits(value, 9) else default


# -- tokens ------------------------------------------------------------------------------------------------------


@staff.get("/staff/tokens")
@staff_only
def tokens():
    return page("tokens.html", tokens=list_tokens(runtime()), created=None, message=None)


@staff.post("/staff/tokens")
@staff_only
def tokens_create():
    rt = runtime()
    role = request.form.get("role", "")
    name = (request.form.get("name") or "").strip()
    expires = (request.form.get("expires") or "").strip()
    try:
        token = create_token(rt, role, name, duration(expires) if expires else None, actor=g.caller.actor)
    except (TokenError, ValueError) as error:
        return page("tokens.html", 400, tokens=list_tokens(rt), created=None, message=str(error))
    return page("tokens.html", tokens=list_tokens(rt), created=token, message=None)


@staff.post("/staff/tokens/<id:token_id>/revoke")
@staff_only
def tokens_revoke(token_id: int):
    rt = runtime()
    try:
        revoke_token(rt, str(token_id), actor=g.caller.actor)
    except TokenError as error:
        return page("tokens.html", 400, tokens=list_tokens(rt), created=None, message=str(error))
    if token_id == g.caller.token_id:
        return redirect(url_for("staff.login_form"), code=303)
    return page("tokens.html", tokens=list_tokens(rt), created=None,
                message=WORDS[language()]["revoked"].format(id=token_id))


# -- contacts ----------------------------------------------------------------------------------------------------


@staff.get("/staff/contacts")
@staff_only
def contacts():
    return _contacts_page()


def _contacts_page(status: int = 200, **context: Any) -> Response:
    from service.contacts import tally

    return page("contacts.html", status, counts=tally(runtime()), **context)


@staff.post("/staff/contacts/import")
@staff_only
def contacts_import():
    from service.campaigns import CampaignError
    from service.contacts import Report, UnreadableFile, merge, read, store

    rt = runtime()
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return _contacts_page(400, error=WORDS[language()]["upload_csv"])
    tags = [t.strip() for t in (request.form.get("tags") or "").split(",") if t.strip()]
    report = Report()
    try:
        text = io.TextIOWrapper(upload.stream, encoding="utf-8-sig", errors="strict", newline="")
        payout = _payout(rt)
        people = merge(rt, read(text, rt.settings.default_region, tags, report, payout), report)
        if people:
            store(rt, people, report)
    except (UnreadableFile, CampaignError) as error:
        return _contacts_page(400, error=str(error))
    except (UnicodeError, ValueError, OSError) as error:
        return _contacts_page(400, error=f"cannot read it as CSV ({error})")
    audit.record(rt, g.caller.actor, "contacts.imported", upload.filename[:100], rows=report.rows,
                 created=report.created, updated=report.updated, problems=len(report.problems), tags=tags)
    return _contacts_page(200, report=report)


def _payout(rt):
    """The default survey's credit, which imported numbers are checked against (as `contacts import` does)."""
    from service.contacts import Payout

    try:
        definition = rt.catalog.current(rt.settings.default_survey)
    except UnknownSurvey:
        return None
    incentive = definition.incentive
    return Payout(definition.id, incentive.currency) if incentive else None


@staff.post("/staff/contacts/lookup")
@staff_only
def contacts_lookup():
    from service.rights import NobodyFound, find

    rt = runtime()
    who = {key: (request.form.get(key) or "").strip() or None for key in ("phone", "telegram_chat", "respondent")}
    try:
        with rt.sessions() as session:
            found = find(rt, session, who["phone"], who["telegram_chat"], who["respondent"])
            people = [_person(session, contact) for contact in found]
    except NobodyFound as error:
        return _contacts_page(400, error=str(error))
    audit.record(rt, g.caller.actor, "contact.looked_up", ", ".join(p["public_id"] for p in people) or None,
                 by=next(key for key, value in who.items() if value), found=len(people))
    return _contacts_page(200, people=people, looked_up=True, who=who)


def _person(session, contact: Contact) -> dict[str, Any]:
    """What the look-up shows: never an address or an answer."""
    statuses = session.execute(select(SurveySession.survey_id, SurveySession.wave, SurveySession.status)
                               .where(SurveySession.contact_id == contact.id).order_by(SurveySession.id)).all()
    return {"public_id": contact.public_id, "channel": contact.channel, "language": contact.language or "",
            "tags": list(contact.tags or []), "opted_out": bool(contact.opted_out),
            "unreachable": bool(contact.unreachable),
            "sessions": [f"{s.survey_id} ({s.wave}): {s.status}" for s in statuses]}


@staff.post("/staff/contacts/erase")
@staff_only
def contacts_erase():
    from service.rights import erase

    rt = runtime()
    respondents = [r.strip() for r in request.form.getlist("respondent") if r.strip()][:20]
    words = WORDS[language()]
    if not respondents or request.form.get("confirm", "").strip().upper() not in ("BORRAR", "ERASE"):
        return _contacts_page(400, error=words["erase_confirm"])
    with rt.sessions() as session:
        found = list(session.scalars(select(Contact).where(Contact.public_id.in_(respondents))))
    if not found:
        return _contacts_page(404, error=words["nobody"])
    erased = erase(rt, found, g.caller.actor, "staff console")
    who = ", ".join(c.public_id for c in found)
    return _contacts_page(200, message=words["erased"].format(who=who, records=erased.records))


# -- campaigns ---------------------------------------------------------------------------------------------------


@staff.get("/staff/campaigns")
@staff_only
def campaigns():
    return _campaigns_page()


def _campaigns_page(status: int = 200, **context: Any) -> Response:
    from service.campaigns import all_campaigns
    from service.campaigns.funnel import invited_counts

    rt = runtime()
    return page("campaigns.html", status, campaigns=all_campaigns(rt), counts=invited_counts(rt),
                surveys=rt.catalog.all_current(), form=request.form, **context)


@staff.post("/staff/campaigns")
@staff_only
def campaigns_create():
    from service import campaigns as service
    from service.campaigns.timing import OFF, QuietHours, TimingError, parse_duration
    from service.whatsapp import TemplateError, parse_templates

    rt = runtime()
    form = request.form
    try:
        max_reminders = int(form.get("max_reminders") or 0)
        wave = int(form.get("wave") or 1)
        rate = float(form["rate"]) if form.get("rate") else None
        options = service.TEMPLATE_OPTIONS
        templates = {kind: parse_templates(form.get(field) or None, options[kind]) for kind, field in
                     (("invite", "whatsapp_template"), ("reminder", "reminder_template"),
                      ("credit", "credit_template"))}
        expire = form.get("expire_after") or "7d"
        channel = form.get("channel") or None
        plan = service.Plan(
            survey_id=form.get("survey", ""), tag=service.normalize_tag(form.get("tag", "")), wave=wave, rate=rate,
            quiet_hours=QuietHours.parse(form.get("quiet_hours") or "21:00-08:00"),
            timezone=(form.get("timezone") or "America/Mexico_City").strip(),
            remind_after=parse_duration(form.get("remind_after") or "24h") if max_reminders else None,
            max_reminders=max_reminders,
            expire_after=None if expire.strip().lower() in OFF else parse_duration(expire),
            channel=channel, templates={k: v for k, v in templates.items() if v},
            fallback="sms" if form.get("fallback") else None, opt_in_required=not form.get("without_opt_in"),
        )
        campaign = service.create(rt, plan, allow_empty=bool(form.get("allow_empty")))
    except (service.CampaignError, TimingError, TemplateError, ValueError) as error:
        return _campaigns_page(400, error=str(error))
    audit.record(rt, g.caller.actor, "campaign.created", f"campaign {campaign.id}", survey_id=campaign.survey_id,
                 wave=campaign.wave, tag=campaign.tag, channel=campaign.channel)
    return redirect(url_for("staff.campaign", campaign_id=campaign.id), code=303)


@staff.get("/staff/campaigns/<id:campaign_id>")
@staff_only
def campaign(campaign_id: int):
    from service.campaigns import UnknownCampaign
    from service.campaigns.funnel import report

    try:
        data = report(runtime(), campaign_id)
    except UnknownCampaign:
        return page("message.html", 404, message=f"no campaign {campaign_id}")
    done = {"start": "start_campaign", "resume": "resume", "pause": "pause", "cancel": "cancel"}.get(
        request.args.get("done", ""))
    chart = funnel_chart(data, _question_texts(data["survey_id"]))
    return page("campaign.html", data=data, chart=chart, message=WORDS[language()][done] if done else None)


def _question_texts(survey_id: str) -> dict[str, str]:
    """Question id -> its text in the UI's language (first line, shortened), for charts."""
    try:
        definition = runtime().catalog.current(survey_id)
    except UnknownSurvey:
        return {}
    lang = language()
    texts = {CONSENT_ID: WORDS[lang]["consent"]}
    for question in definition.questions:
        text = (question.text.get(lang) or question.text.get(definition.default_language) or question.id).strip()
        first = text.splitlines()[0] if text else question.id
        texts.setdefault(question.id, first if len(first) <= 60 else first[:57] + "…")
    return texts


@staff.get("/staff/campaigns/<id:campaign_id>/funnel.json")
@staff_only
def campaign_funnel(campaign_id: int):
    from service.campaigns import UnknownCampaign
    from service.campaigns.funnel import report

    try:
        data = report(runtime(), campaign_id)
    except UnknownCampaign:
        return jsonify({"error": {"code": "not_found", "message": f"no campaign {campaign_id}"}}), 404
    return jsonify({"status": data["status"], "chart": funnel_chart(data, _question_texts(data["survey_id"]))})


@staff.post("/staff/campaigns/<id:campaign_id>/<action>")
@staff_only
def campaign_action(campaign_id: int, action: str):
    from service import campaigns as service

    rt = runtime()
    try:
        if action in ("start", "resume"):
            service.start(rt, campaign_id, actor=g.caller.actor)
        elif action == "pause":
            service.pause(rt, campaign_id)
            audit.record(rt, g.caller.actor, "campaign.paused", f"campaign {campaign_id}")
        elif action == "cancel":
            service.cancel(rt, campaign_id, actor=g.caller.actor)
        else:
            return page("message.html", 404, message=f"no action {action}")
    except service.UnknownCampaign:
        return page("message.html", 404, message=f"no campaign {campaign_id}")
    except service.CampaignError as error:
        return page("message.html", 400, message=str(error))
    return redirect(url_for("staff.campaign", campaign_id=campaign_id, done=action), code=303)


FUNNEL = ("invited", "delivered", "started", "consented", "completed")


def funnel_chart(data: dict[str, Any], texts: dict[str, str] | None = None) -> dict[str, Any]:
    """Bars for the funnel and the drop-off per question: label, value, share of the widest (0-100)."""
    counts = data["counts"]
    bars = [{"key": "audience", "value": data["audience"]}] + [{"key": k, "value": counts.get(k, 0)} for k in FUNNEL]
    widest = max([b["value"] for b in bars] + [1])
    for bar in bars:
        bar["share"] = round(100 * bar["value"] / widest, 1)
    texts = texts or {}
    drops = [{"question": row["question"], "text": texts.get(row["question"], row["question"]),
              "waiting": row["waiting"], "expired": row["expired"],
              "opted_out": row["opted_out"], "total": row["waiting"] + row["expired"] + row["opted_out"]}
             for row in data["drop_off"]]
    most = max([d["total"] for d in drops] + [1])
    for drop in drops:
        drop["share"] = round(100 * drop["total"] / most, 1)
    return {"bars": bars, "drops": drops, "errors": data.get("errors") or []}


# -- incentives --------------------------------------------------------------------------------------------------


@staff.get("/staff/incentives")
@staff_only
def incentives():
    return _incentives_page()


def _incentives_page(status: int = 200, **context: Any) -> Response:
    from service.incentives import FAILED, amount
    from service.models import Incentive

    rt = runtime()
    with rt.sessions() as session:
        counts = session.execute(
            select(Incentive.survey_id, Incentive.wave, Incentive.status, func.count(),
                   func.sum(Incentive.amount_cents))
            .group_by(Incentive.survey_id, Incentive.wave, Incentive.status)
            .order_by(Incentive.survey_id, Incentive.wave, Incentive.status)
        ).all()
        failed = session.execute(
            select(Incentive, Contact.public_id).join(Contact, Contact.id == Incentive.contact_id)
            .where(Incentive.status == FAILED).order_by(Incentive.id).limit(500)
        ).all()
    states = [{"survey_id": s, "wave": w, "status": st, "count": n, "amount": amount(total or 0)}
              for s, w, st, n, total in counts]
    failures = [{"id": row.id, "respondent_id": public_id, "attempts": row.attempts, "error": row.error or "",
                 "amount": amount(row.amount_cents), "currency": row.currency} for row, public_id in failed]
    return page("incentives.html", status, states=states, failures=failures, **context)


@staff.post("/staff/incentives/retry")
@staff_only
def incentives_retry():
    from service.incentives import FAILED, ledger
    from service.models import Incentive

    rt = runtime()
    wanted = [int(i) for i in request.form.getlist("incentive") if _digits(i, 18)]
    with rt.sessions() as session, session.begin():
        if request.form.get("all"):
            wanted = list(session.scalars(select(Incentive.id).where(Incentive.status == FAILED)))
        retried = [i for i in wanted if ledger.retry(session, i, rt.now())]
        audit.add(session, rt.now(), g.caller.actor, "incentives.retried", None, ids=retried)
    from service.incentives.payments import wake

    wake(rt, retried)
    return _incentives_page(message=WORDS[language()]["retried"].format(n=len(retried)))


@staff.get("/staff/incentives/owed.csv")
@staff_only
def incentives_owed():
    from service.incentives import EXPORT_COLUMNS, FAILED, PENDING, amount
    from service.models import Incentive
    from service.spreadsheet import inert_row

    rt = runtime()
    automatic = rt.settings.incentive_provider != "ledger"
    wanted = (FAILED,) if automatic else (PENDING, FAILED)
    query = (select(Incentive, Contact.public_id).join(Contact, Contact.id == Incentive.contact_id)
             .where(Incentive.status.in_(wanted)).order_by(Incentive.id))
    if automatic:
        query = query.where(Incentive.next_attempt_at.is_(None))
    with rt.sessions() as session, session.begin():
        rows = session.execute(query).all()
        audit.add(session, rt.now(), g.caller.actor, "incentives.exported", None, statuses=list(wanted),
                  records=len(rows), with_numbers=True, via="staff console")
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(EXPORT_COLUMNS)
    for row, public_id in rows:
        writer.writerow(inert_row([
            row.id, row.idempotency_key, public_id, row.survey_id, row.wave,
            rt.vault.decrypt(row.phone_enc) if row.phone_enc else "", f"{amount(row.amount_cents):g}", row.currency,
            row.status, row.attempts, row.error or "", row.created_at.isoformat()]))
    response = Response(buffer.getvalue(), mimetype="text/csv")
    response.headers["Content-Disposition"] = 'attachment; filename="incentives-owed.csv"'
    return response


@staff.post("/staff/incentives/paid")
@staff_only
def incentives_paid():
    from service.incentives import ledger
    from service.incentives.payments import notify_paid
    from service.queue import OUTBOX

    rt = runtime()
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return _incentives_page(400, error=WORDS[language()]["mark_paid_help"])
    outcomes: Counter[str] = Counter()
    problems = []
    outbound: list[int] = []
    reader = csv.DictReader(io.TextIOWrapper(upload.stream, encoding="utf-8-sig", errors="replace", newline=""))
    if "incentive_id" not in (reader.fieldnames or []):
        return _incentives_page(400, error=WORDS[language()]["mark_paid_help"])
    for row in reader:
        value = (row.get("incentive_id") or "").strip()
        if not _digits(value, 18):
            problems.append(f"line {reader.line_num}: incentive_id {value!r} is not a number")
            continue
        with rt.sessions() as session, session.begin():
            outcome = ledger.mark_paid(session, int(value), rt.now(), (row.get("reference") or "").strip() or None)
            if outcome == "paid":
                outbound.extend(notify_paid(rt, session, int(value)))
        outcomes[outcome] += 1
        if outcome not in ("paid", "already paid"):
            problems.append(f"line {reader.line_num}: {outcome}")
    rt.dispatcher.push(OUTBOX, outbound)
    audit.record(rt, g.caller.actor, "incentives.marked_paid", upload.filename[:100], outcomes=dict(outcomes))
    words = WORDS[language()]
    summary = ", ".join(f"{n} {what}" for what, n in outcomes.items()) or "0"
    return _incentives_page(message=words["marked"].format(outcomes=summary), problems=problems)
