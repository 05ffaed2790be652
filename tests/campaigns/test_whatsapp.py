"""WhatsApp campaigns through the real code, with a fake Twilio that holds Retorno to WhatsApp's 24-hour rule:
templates outside the window, free text inside it, template buttons, Twilio's WhatsApp errors, the SMS fallback,
opt-in, and the credit-sent notice."""

from __future__ import annotations

from dataclasses import replace

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from service import campaigns
from service import runtime as runtimes
from service.cli import main
from service.models import CampaignMessage, Contact, OutboundMessage, SurveySession
from tests.campaigns.test_campaigns import AGE, CONSENT, _people, _phones, _report, _statuses
from workers import campaigns as sender

INVITE_ES, INVITE_EN, REMINDER, CREDIT = ("HX" + c * 32 for c in "abcd")
TEMPLATES = {"invite": {"es": INVITE_ES, "en": INVITE_EN}, "reminder": {"es": REMINDER}}
OPTED_OUT = "Listo, ya no le escribiremos. Para volver, escriba ALTA."
postgresql_only = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


@pytest.fixture(autouse=True)
def _fast_sender(harness):
    harness.rt.settings = replace(harness.rt.settings, sender_rate=100.0)


def _whatsapp(harness, phones: list[str], opt_in: str = "2026-01-15 registro en el albergue", language: str = "es",
              tag: str = "returnee") -> None:
    _people(harness, [f"{p},whatsapp,{opt_in},{language},{tag}" for p in phones],
            header="celular,canal,consentimiento,idioma,etiquetas")


def _campaign(harness, start: bool = True, **plan) -> int:
    plan.setdefault("quiet_hours", None)
    plan.setdefault("rate", 50.0)
    plan.setdefault("templates", TEMPLATES)
    campaign = campaigns.create(harness.rt, campaigns.Plan(survey_id="reintegracion-mx", tag="returnee", **plan))
    if start:
        campaigns.start(harness.rt, campaign.id)
    return campaign.id


def _run(harness, **advance) -> None:
    """Move the clock; Twilio's delivery reports come in; the periodic jobs run once, as the scheduler would."""
    if advance:
        harness.clock.advance(**advance)
    for _ in range(3):
        _deliver_reports(harness)
        sender.maintain()
        sender.tick(0)
        harness.settle()
        harness.clock.advance(seconds=1)
    _deliver_reports(harness)


def _deliver_reports(harness) -> None:
    for sid, _, status, code in harness.providers.take_reports():
        assert harness.status(sid, status, code).status_code == 200


def _to(harness, phone: str):
    return harness.providers.to(phone)


def _button(harness, phone: str, payload: str, label: str) -> None:
    harness.sms(f"whatsapp:{phone}", label, MessageType="button", ButtonText=label, ButtonPayload=payload)
    harness.settle()


def _say(harness, phone: str, text: str) -> None:
    harness.sms(f"whatsapp:{phone}", text)
    harness.settle()


def _session(harness, phone_index: int = 0) -> SurveySession:
    with harness.rt.sessions() as session:
        return session.scalars(select(SurveySession).order_by(SurveySession.id)).all()[phone_index]


def test_outside_the_window_invitations_are_templates_and_the_reply_is_asked_for_consent(harness):
    ana, beto, carla, diego = _phones(4)
    _whatsapp(harness, [ana, beto, diego])
    _whatsapp(harness, [carla], language="en")
    campaign_id = _campaign(harness)
    _run(harness)
    assert harness.providers.refused == [], "no free text outside the window"
    [invitation] = _to(harness, ana)
    assert (invitation.channel, invitation.text, invitation.template) == ("whatsapp", "", INVITE_ES)
    assert invitation.variables == {"1": "Reintegración en México", "2": "30 MXN"}
    [english] = _to(harness, carla)
    assert english.template == INVITE_EN and english.variables == {"1": "Reintegration in Mexico", "2": "30 MXN"}
    request = harness.providers.requests[0][1]
    assert "ContentSid=HX" in request and "ContentVariables=" in request and "Body=" not in request

    harness.clock.advance(minutes=5)
    _say(harness, ana, "sí")  # agreeing to the template is not consent: the consent question comes first
    assert CONSENT in _to(harness, ana)[-1].text and _session(harness).consented_at is None
    _say(harness, ana, "sí")
    assert AGE in _to(harness, ana)[-1].text and _session(harness).consented_at is not None
    _button(harness, beto, "start", "Sí, participar")
    assert CONSENT in _to(harness, beto)[-1].text and _to(harness, beto)[-1].template is None
    _button(harness, diego, "stop", "No, gracias")
    assert _to(harness, diego)[-1].text == OPTED_OUT
    with harness.rt.sessions() as session:
        diego_contact = session.scalars(select(Contact).where(Contact.opted_out)).one()
    assert diego_contact.opt_in_withdrawn_at is not None, "STOP withdraws the opt-in"
    assert harness.providers.refused == []
    counts = _report(harness, campaign_id)["counts"]
    assert (counts["invited"], counts["started"], counts["consented"], counts["opted_out"]) == (4, 3, 1, 1)


def test_a_typed_request_to_stop_after_a_template_asks_to_confirm_and_opts_out_as_on_sms(harness):
    ana, beto = _phones(2)
    _whatsapp(harness, [ana, beto])
    campaign_id = _campaign(harness, remind_after=24 * 3600, max_reminders=2)
    _run(harness)
    harness.clock.advance(minutes=5)
    _say(harness, ana, "ya no me escriban")  # typed after the invitation template, not a button
    assert _to(harness, ana)[-1].text == "¿Quiere dejar de recibir mensajes? Responda BAJA."
    _button(harness, beto, "later", "Ya no me escriban")  # a button whose label asks to stop
    assert _to(harness, beto)[-1].text == "¿Quiere dejar de recibir mensajes? Responda BAJA."
    _run(harness, hours=25)
    assert [len(_to(harness, p)) for p in (ana, beto)] == [2, 2], "no reminder after a request to stop"
    _say(harness, ana, "ya no me escriban")
    assert _to(harness, ana)[-1].text == OPTED_OUT
    _say(harness, beto, "BAJA")
    assert _to(harness, beto)[-1].text == OPTED_OUT
    assert _report(harness, campaign_id)["counts"]["opted_out"] == 2
    assert harness.providers.refused == []


def test_inside_the_window_the_invitation_is_free_text(harness):
    ana, beto = _phones(2)
    _whatsapp(harness, [ana, beto])
    _say(harness, ana, "hola")  # ana wrote in: the default survey asked for consent, wave 1
    harness.clock.advance(hours=2)
    _campaign(harness, wave=2)
    _run(harness)
    assert CONSENT in _to(harness, ana)[-1].text and _to(harness, ana)[-1].template is None
    assert _to(harness, beto)[-1].template == INVITE_ES
    _say(harness, ana, "si")
    assert AGE in _to(harness, ana)[-1].text, "an answer to free text is an answer"
    assert harness.providers.refused == []


def test_reminders_after_24_hours_are_templates_and_the_answer_gets_the_question_again(harness):
    quiet, talker, answers_reminder = _phones(3)
    _whatsapp(harness, [quiet, talker, answers_reminder])
    campaign_id = _campaign(harness, remind_after=24 * 3600, max_reminders=2)
    _run(harness)
    harness.clock.advance(minutes=10)
    for phone in (talker, answers_reminder):
        _say(harness, phone, "hola")
        _say(harness, phone, "si")
    assert AGE in _to(harness, talker)[-1].text
    _run(harness, hours=23)
    assert [len(_to(harness, p)) for p in (quiet, talker)] == [1, 3], "no reminder before 24 hours"
    _run(harness, hours=1, minutes=11)
    reminders = [_to(harness, p)[-1] for p in (quiet, talker, answers_reminder)]
    assert [m.template for m in reminders] == [REMINDER] * 3, "outside the window: the reminder template"
    _say(harness, answers_reminder, "30")  # they do not see the question in the template: it is asked again
    assert AGE in _to(harness, answers_reminder)[-1].text and _to(harness, answers_reminder)[-1].template is None
    _say(harness, answers_reminder, "30")
    with harness.rt.sessions() as session:
        questions = sorted(session.scalars(select(SurveySession.question)).all())
    assert questions == ["age_band", "consent", "returned"], "the answer after the question counts"
    assert harness.providers.refused == []
    assert _report(harness, campaign_id)["reminders_sent"] == 3


def test_a_reminder_inside_the_window_is_free_text(harness):
    ana = _phones(1)[0]
    _whatsapp(harness, [ana])
    _campaign(harness, remind_after=2 * 3600, max_reminders=1)
    _run(harness)
    harness.clock.advance(minutes=5)
    _say(harness, ana, "hola")
    _say(harness, ana, "si")
    _run(harness, hours=2, minutes=1)
    assert AGE in _to(harness, ana)[-1].text and _to(harness, ana)[-1].template is None
    assert len(_to(harness, ana)) == 4 and harness.providers.refused == []


@postgresql_only
def test_whatsapp_errors_fall_back_to_sms_retry_as_templates_and_mark_contacts(harness):
    held, invalid, blocked, late = _phones(4)
    _whatsapp(harness, [held, invalid, blocked, late])
    harness.providers.whatsapp_errors.update({held: "63049", invalid: "63024", blocked: "63032"})
    _say(harness, late, "hola")  # Retorno saw late write 2 hours ago; WhatsApp's clock says otherwise
    harness.clock.advance(hours=2)
    harness.providers.last_wrote[late] = harness.clock.now.replace(year=2025)
    campaign_id = _campaign(harness, wave=2, fallback="sms")
    _run(harness)
    [refused] = harness.providers.refused
    assert refused.to == late and refused.template is None, "free text WhatsApp refused (63016) ..."
    assert _to(harness, late)[-1].template == INVITE_ES, "... went again as the template"
    for phone in (held, invalid):
        [by_sms] = [m for m in _to(harness, phone) if m.channel == "sms"]
        assert CONSENT in by_sms.text, "an invitation WhatsApp did not deliver goes by SMS"
    assert [m for m in _to(harness, blocked)] == [], "an opt-out on WhatsApp is not overridden by SMS"
    with harness.rt.sessions() as session:
        flags = {harness.rt.vault.decrypt(c.address_enc): (c.unreachable, c.opted_out)
                 for c in session.scalars(select(Contact))}
    assert flags[f"whatsapp:{invalid}"] == (True, False) and flags[f"whatsapp:{blocked}"] == (False, True)
    assert flags[f"whatsapp:{held}"] == (False, False) and flags[invalid] == (False, False)

    harness.clock.advance(minutes=3)
    harness.sms(held, "si")
    harness.settle()
    assert AGE in harness.texts_to(held)[-1], "the SMS conversation goes on in the campaign"
    report = _report(harness, campaign_id)
    assert report["audience"] == 4 and report["counts"]["invited"] == 3, "3 reached, 1 blocked the business"
    assert report["not_invited"] == {"failed": 1}
    assert report["fallback_sms"] == {"invited": 2, "pending": 0, "not_invited": 0}
    errors = {row["code"]: row for row in report["errors"]}
    assert errors["63049"]["outcomes"] == {"invited by SMS instead": 1}
    assert errors["63024"]["outcomes"] == {"invited by SMS instead": 1}
    assert errors["63032"]["outcomes"] == {"contact marked opted out": 1}
    assert errors["63016"]["outcomes"] == {"sent again as a template": 1}
    assert "Meta" in errors["63049"]["meaning"] and "24-hour" in errors["63016"]["meaning"]
    statuses = _statuses(harness, campaign_id)
    assert statuses == {("invite", "fallback:63049"): 1, ("invite", "fallback:63024"): 1, ("invite", "sent"): 3,
                        ("invite", "failed:63032"): 1}
    with harness.rt.sessions() as session:
        assert session.scalar(select(SurveySession.campaign_id).where(SurveySession.consented_at.is_not(None))) \
            == campaign_id


@postgresql_only
def test_without_fallback_an_undelivered_template_is_counted_and_the_rate_limit_is_waited_out(harness):
    held, limited = _phones(2)
    _whatsapp(harness, [held, limited])
    harness.providers.whatsapp_errors.update({held: "63049", limited: "63018"})
    campaign_id = _campaign(harness)
    _run(harness)
    assert all(m.channel == "whatsapp" for m in harness.providers.messages)
    del harness.providers.whatsapp_errors[limited]
    _run(harness, minutes=30)
    assert _to(harness, limited) == [], "WhatsApp's messaging limit: an hour at least"
    _run(harness, minutes=31)
    assert _to(harness, limited)[-1].template == INVITE_ES
    report = _report(harness, campaign_id)
    errors = {row["code"]: row for row in report["errors"]}
    assert errors["63049"]["outcomes"] == {"not sent": 1} and errors["63018"]["outcomes"] == {"tried again later": 1}
    assert report["fallback_sms"] == {"invited": 0, "pending": 0, "not_invited": 0}


def test_a_report_that_comes_before_its_message_is_recorded_is_applied_later(harness):
    from bots.base import StatusUpdate
    from service.inbox import record_status

    sid = "SM" + "e" * 32
    assert record_status(harness.rt, StatusUpdate(sid, "undelivered", "63024")) is False
    with harness.rt.sessions() as session, session.begin():
        contact = Contact(public_id="0011223344556677", channel="whatsapp", address_hash="h", address_enc="e", tags=[])
        session.add(contact)
        session.flush()
        session.add(OutboundMessage(contact_id=contact.id, channel="whatsapp", kind="invite", body="", payload={},
                                    status="sent", provider_id=sid))
    assert harness.sweep()["reports"] == 1
    with harness.rt.sessions() as session:
        message = session.scalars(select(OutboundMessage)).one()
        assert (message.status, message.error_code) == ("undelivered", "63024")
        assert session.scalars(select(Contact)).one().unreachable
    assert harness.sweep()["reports"] == 0


def test_opt_in_is_required_unless_told_otherwise_and_stop_on_sms_withdraws_it(harness):
    with_opt_in, without, stops_by_sms = _phones(3)
    _whatsapp(harness, [with_opt_in, stops_by_sms])
    _whatsapp(harness, [without], opt_in="")
    harness.sms(stops_by_sms, "STOP")  # by SMS, from the same number
    harness.settle()
    campaign_id = _campaign(harness)
    _run(harness)
    assert [m.to for m in harness.providers.messages if m.channel == "whatsapp"] == [with_opt_in]
    assert _report(harness, campaign_id)["not_invited"] == {"no_opt_in": 1, "opt_in_withdrawn": 1}
    second = _campaign(harness, wave=2, opt_in_required=False)
    _run(harness)
    assert _to(harness, without)[-1].template == INVITE_ES
    assert _statuses(harness, second)[("invite", "skipped:opt_in_withdrawn")] == 1, "a STOP is still a STOP"


def test_a_credit_notice_outside_the_window_goes_as_the_credit_template(harness):
    from service.models import Incentive
    from service.queue import OUTBOX
    from tests.surveys.test_engine import RETURNEE_SCRIPT
    from workers.incentives import notify_paid

    paid = _phones(1)[0]
    _whatsapp(harness, [paid])
    _campaign(harness, templates={**TEMPLATES, "credit": {"es": CREDIT}})
    _run(harness)
    harness.clock.advance(minutes=1)
    _say(harness, paid, "hola")
    for reply, _, _ in RETURNEE_SCRIPT:
        _say(harness, paid, reply)
    assert "30 MXN" in _to(harness, paid)[-1].text, "completed, inside the window: free text"
    harness.clock.advance(days=2)  # the top-up took two days
    with harness.rt.sessions() as session, session.begin():
        [incentive_id] = session.scalars(select(Incentive.id)).all()
        queued = notify_paid(harness.rt, session, incentive_id)
    harness.rt.dispatcher.push(OUTBOX, queued)
    harness.settle()
    notice = _to(harness, paid)[-1]
    assert (notice.template, notice.variables) == (CREDIT, {"1": "Reintegración en México", "2": "30 MXN"})
    assert harness.providers.refused == []


def test_a_reply_outside_the_window_without_a_template_is_not_sent(harness):
    ana = _phones(1)[0]
    _say(harness, ana, "hola")
    before = len(_to(harness, ana))
    harness.clock.advance(days=2)
    with harness.rt.sessions() as session, session.begin():  # a reply held up two days (a worker was down)
        contact = session.scalars(select(Contact)).one()
        session.add(OutboundMessage(contact_id=contact.id, channel="whatsapp", kind="reply", body="¿Sigue ahí?",
                                    payload={}, status="queued", created_at=harness.clock.now))
    harness.clock.advance(minutes=1)
    harness.sweep()
    assert len(_to(harness, ana)) == before and harness.providers.refused == []
    with harness.rt.sessions() as session:
        late = session.scalars(select(OutboundMessage).where(OutboundMessage.kind == "reply")
                               .order_by(OutboundMessage.id.desc())).first()
    assert (late.status, late.error_code) == ("failed", "window_closed")


# -- creating a WhatsApp campaign -------------------------------------------------------------------------------


@pytest.fixture
def command(harness, monkeypatch):
    """`retorno ARGS...` on the harness's database; the harness's runtime is back in place afterwards."""
    monkeypatch.setenv("DATABASE_URL", harness.settings.database_url)
    monkeypatch.setenv("RETORNO_SECRET_KEY", harness.settings.secret_key)
    monkeypatch.delenv("REDIS_URL", raising=False)

    def run(*args: str):
        result = CliRunner().invoke(main, list(args))
        its_own = runtimes.current()
        if its_own is not harness.rt:
            its_own.engine.dispose()
        runtimes.install(harness.rt)
        return result

    return run


@pytest.fixture
def cli(command):
    """`retorno campaigns create` for the tag returnee, with more options."""
    return lambda *args: command("campaigns", "create", "--survey", "reintegracion-mx", "--tag", "returnee", *args)


def test_a_whatsapp_campaign_without_a_template_is_refused_in_one_line(harness, cli):
    _whatsapp(harness, _phones(2))
    _people(harness, [f"{_phones(1, start=50)[0]},returnee"])
    refused = cli()
    assert refused.exit_code == 1
    assert refused.output == (
        "Error: 2 contacts tagged returnee are on WhatsApp, which needs an approved template to start a "
        "conversation: add --whatsapp-template es=HX... (see the README, WhatsApp templates), or limit the "
        "campaign with --channel sms\n")
    assert cli("--channel", "sms").exit_code == 0, "the SMS contacts alone need no template"
    only_whatsapp = cli("--channel", "whatsapp")
    assert only_whatsapp.exit_code == 1 and only_whatsapp.output.count("\n") == 1
    created = cli("--channel", "whatsapp", "--whatsapp-template", f"es={INVITE_ES},en={INVITE_EN}",
                  "--whatsapp-reminder-template", REMINDER, "--fallback", "sms")
    assert created.exit_code == 0, created.output
    campaign = campaigns.get(harness.rt, int(created.stdout.split()[-1]))
    assert campaign.templates == {"invite": {"es": INVITE_ES, "en": INVITE_EN}, "reminder": {"*": REMINDER}}
    assert (campaign.channel, campaign.fallback, campaign.opt_in_required) == ("whatsapp", "sms", True)
    assert "2 contacts on whatsapp tagged returnee" in created.stderr


@pytest.mark.parametrize(("args", "message"), [
    (["--whatsapp-template", "es=HX123"], "Error: --whatsapp-template: 'HX123' is not a Content SID (HX and 32 hex "
                                          "digits, from Twilio's Content Template Builder)\n"),
    (["--whatsapp-template", f"fr={INVITE_ES}"], "Error: --whatsapp-template: the survey has no language 'fr' "
                                                 "(its languages: es, en)\n"),
    (["--whatsapp-template", f"en={INVITE_EN}"], "Error: --whatsapp-template: add the survey's default language, "
                                                 "es=HX... (others without their own get it)\n"),
    (["--whatsapp-template", INVITE_ES, "--channel", "sms"], "Error: WhatsApp templates are for WhatsApp contacts; "
                                                             "this campaign is --channel sms\n"),
    (["--whatsapp-template", f"es={INVITE_ES},es={INVITE_EN}"], "Error: --whatsapp-template: two templates for es\n"),
])
def test_template_options_are_checked(harness, cli, args, message):
    _whatsapp(harness, _phones(1))
    result = cli(*args)
    assert (result.exit_code, result.output) == (1, message)


def test_cli_status_shows_errors_by_code_and_the_fallback(harness, cli, command):
    phones = _phones(2)
    _whatsapp(harness, phones)
    harness.providers.whatsapp_errors[phones[0]] = "63049"
    created = cli("--whatsapp-template", INVITE_ES, "--fallback", "sms", "--quiet-hours", "none", "--rate", "50")
    campaign_id = int(created.stdout.split()[-1])
    started = campaigns.start(harness.rt, campaign_id)
    assert started.reasons == {}
    _run(harness)
    result = command("campaigns", "status", str(campaign_id))
    assert result.exit_code == 0, result.output
    assert "by SMS instead of WhatsApp: 1 invited, 0 waiting, 0 not invited" in result.output
    assert " 63049       1  Meta chose not to deliver this marketing template" in result.output
    assert "invited by SMS instead" in result.output
    assert "WhatsApp templates for invite, SMS when WhatsApp does not deliver" in result.output
    assert "2 invited of 2 contacts" in command("campaigns", "list").output, "the SMS fallback is the same person"
    with harness.rt.sessions() as session:
        rows = session.scalars(select(CampaignMessage).where(CampaignMessage.fallback_of.is_not(None))).all()
    assert len(rows) == 1 and rows[0].channel == "sms"


def test_start_says_why_whatsapp_contacts_are_not_invited(harness, cli, command):
    _whatsapp(harness, _phones(2), opt_in="")
    created = cli("--whatsapp-template", INVITE_ES)
    result = command("campaigns", "start", created.stdout.split()[-1])
    assert "2 will not be invited: 2 have no WhatsApp opt-in (import it, or --without-opt-in)" in result.output
