"""Campaigns through the real code, on SQLite and PostgreSQL, with fake providers and a clock the test moves."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from service import campaigns
from service import runtime as runtimes
from service.campaigns.timing import QuietHours
from service.cli import main
from service.contacts import Report, load, read
from service.models import CampaignMessage, SurveySession
from tests.surveys.test_engine import RETURNEE_SCRIPT
from workers import campaigns as sender

CONSENT = "¿Acepta? (SI/NO)"
AGE = "¿Qué edad tiene?"
NOON_MX = datetime(2026, 3, 2, 18, 0, tzinfo=UTC)
postgresql_only = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
"""The dialect-specific statements are covered on SQLite by the tests that run on both."""


@pytest.fixture(autouse=True)
def _sender_allows_100_per_second(request):
    """The campaigns' own rates apply (the harness's Twilio long code would allow only 1 per second)."""
    if "harness" in request.fixturenames:
        harness = request.getfixturevalue("harness")
        harness.rt.settings = replace(harness.rt.settings, sender_rate=100.0)


def _people(harness, rows: list[str], header: str = "phone,tags") -> None:
    report = Report()
    load(harness.rt, read(io.StringIO("\n".join([header, *rows]) + "\n"), "MX", (), report), report)
    assert not report.problems, report.problems


def _phones(n: int, start: int = 0) -> list[str]:
    return [f"+5255{10000000 + start + i:08d}" for i in range(n)]


def _campaign(harness, tag: str = "returnee", start: bool = True, **plan) -> int:
    plan.setdefault("quiet_hours", QuietHours.parse("21:00-08:00"))
    plan.setdefault("rate", 10.0)
    campaign = campaigns.create(harness.rt, campaigns.Plan(survey_id="reintegracion-mx", tag=tag, **plan))
    if start:
        campaigns.start(harness.rt, campaign.id)
    return campaign.id


def _run(harness, **advance) -> int:
    """Move the clock, then let the periodic jobs run once, as the scheduler would."""
    if advance:
        harness.clock.advance(**advance)
    sender.maintain()
    sent = sender.tick(0)
    harness.settle()
    return sent


def _report(harness, campaign_id: int) -> dict:
    response = harness.api(f"/api/v1/campaigns/{campaign_id}")
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def _statuses(harness, campaign_id: int) -> dict[tuple[str, str], int]:
    with harness.rt.sessions() as session:
        rows = session.execute(
            select(CampaignMessage.kind, CampaignMessage.status, CampaignMessage.reason)
            .where(CampaignMessage.campaign_id == campaign_id)
        ).all()
    counts: dict[tuple[str, str], int] = {}
    for kind, status, reason in rows:
        key = (kind, status if reason is None else f"{status}:{reason}")
        counts[key] = counts.get(key, 0) + 1
    return counts


def test_invitations_open_sessions_that_replies_continue_and_the_funnel_counts(harness):
    a, b = _phones(2)
    _people(harness, [f"{a},returnee", f"{b},returnee"])
    _people(harness, ["700001,returnee"], header="telegram_chat_id,tags")
    campaign_id = _campaign(harness, wave=3)
    assert _run(harness) == 1, "one message at the first moment, then 10 per second"
    assert _run(harness, seconds=1) == 2
    [invitation] = harness.providers.to(a)
    assert CONSENT in invitation.text
    [telegram] = harness.providers.to("700001")
    assert telegram.buttons == ["consent=yes", "consent=no"]
    with harness.rt.sessions() as session:
        rows = session.scalars(select(SurveySession)).all()
    assert {(s.wave, s.campaign_id, s.status, s.question) for s in rows} == {(3, campaign_id, "in_progress", "consent")}
    harness.clock.advance(minutes=5)
    harness.sms(a, "si")
    harness.sms(b, "no")
    harness.settle()
    assert AGE in harness.texts_to(a)[-1]
    harness.status(invitation.provider_id, "delivered")
    report = _report(harness, campaign_id)
    assert report["counts"] == {"invited": 3, "delivered": 1, "started": 2, "consented": 1, "completed": 0,
                                "opted_out": 0, "expired": 0, "ineligible": 0}
    assert (report["id"], report["survey_id"], report["wave"], report["status"]) == (
        campaign_id, "reintegracion-mx", 3, "running")
    assert report["drop_off"] == [{"question": "consent", "waiting": 1, "expired": 0, "opted_out": 0},
                                  {"question": "age_band", "waiting": 1, "expired": 0, "opted_out": 0}]
    assert a not in json.dumps(report) and "5510000000" not in json.dumps(report)
    [record] = [r for r in harness.responses() if r["address"] == a]
    assert record["wave"] == 3 and record["answers"] == {"consent": "yes"}


@postgresql_only
def test_the_campaign_rate_is_kept(harness):
    _people(harness, [f"{p},returnee" for p in _phones(40)])
    _campaign(harness, rate=4.0)
    totals = [_run(harness)]
    for _ in range(5):
        totals.append(totals[-1] + _run(harness, seconds=1))
    assert totals == [1, 5, 9, 13, 17, 21], "4 per second on the campaign's schedule"


@postgresql_only
def test_the_sender_rate_caps_every_campaign_and_replies_count(harness):
    harness.rt.settings = replace(harness.settings, sender_rate=2.0)
    _people(harness, [f"{p},returnee" for p in _phones(20)])
    first, second = _campaign(harness, rate=None), _campaign(harness, rate=None)
    sent = _run(harness) + sum(_run(harness, seconds=1) for _ in range(4))
    assert sent == 9, "2 per second from one Twilio number, whatever the campaigns"
    assert _statuses(harness, first)[("invite", "sent")] == 9
    assert ("invite", "sent") not in _statuses(harness, second)
    for invited in harness.providers.messages[:2]:
        harness.sms(invited.to, "si")
    harness.settle()
    assert len(harness.providers.messages) == 11, "replies go at once"
    assert _run(harness, seconds=1) == 0, "and use up the next second of the sender"
    assert _run(harness, seconds=1) == 2


@postgresql_only
def test_quiet_hours_follow_each_contacts_time_zone(harness):
    harness.clock.now = datetime(2026, 3, 3, 3, 30, tzinfo=UTC)  # 21:30 in Mexico City, 19:30 in Tijuana
    mexico = _phones(3)
    tijuana = _phones(3, start=100)
    _people(harness, [f"{p},returnee," for p in mexico] + [f"{p},returnee,America/Tijuana" for p in tijuana],
            header="phone,tags,timezone")
    campaign_id = _campaign(harness)
    for _ in range(4):
        _run(harness, seconds=1)
    assert {m.to for m in harness.providers.messages} == set(tijuana)
    harness.clock.now = datetime(2026, 3, 3, 13, 59, 58, tzinfo=UTC)  # 07:59:58
    assert _run(harness) == 0
    harness.clock.now = datetime(2026, 3, 3, 14, 0, tzinfo=UTC)  # 08:00
    _run(harness)
    _run(harness, seconds=1)
    assert {m.to for m in harness.providers.messages} == set(mexico + tijuana)
    assert _report(harness, campaign_id)["counts"]["invited"] == 6


def test_reminders_after_silence_at_most_max_then_expiry(harness):
    quiet, silent, stopper = _phones(3)
    _people(harness, [f"{p},returnee" for p in (quiet, silent, stopper)])
    campaign_id = _campaign(harness, remind_after=6 * 3600, max_reminders=2, expire_after=2 * 86400,
                            quiet_hours=None)
    _run(harness)
    _run(harness, seconds=1)
    harness.clock.advance(minutes=10)
    harness.sms(quiet, "si")
    harness.sms(stopper, "STOP")
    harness.settle()
    _run(harness, hours=5, minutes=49)
    assert len(harness.texts_to(silent)) == 1, "no reminder before 6 hours of silence"
    _run(harness, minutes=1)
    _run(harness, seconds=1)
    assert CONSENT in harness.texts_to(silent)[-1] and len(harness.texts_to(silent)) == 2
    assert len(harness.texts_to(quiet)) == 2, "6 h after the invitation, but not after their reply"
    _run(harness, minutes=10)
    _run(harness, seconds=1)
    assert AGE in harness.texts_to(quiet)[-1] and len(harness.texts_to(quiet)) == 3
    for hours in (6, 6, 6, 6):
        _run(harness, hours=hours)
        _run(harness, seconds=1)
    assert len(harness.texts_to(silent)) == 3 and len(harness.texts_to(quiet)) == 4, "at most 2 reminders"
    assert len(harness.texts_to(stopper)) == 2, "the invitation and the STOP confirmation, nothing after"
    _run(harness, hours=24)
    report = _report(harness, campaign_id)
    assert report["counts"]["expired"] == 2 and report["counts"]["opted_out"] == 1
    assert report["reminders_sent"] == 4 and report["status"] == "finished"
    harness.sms(silent, "si")
    harness.settle()
    assert harness.texts_to(silent)[-1] == "Esta encuesta ya no recibe respuestas. ¡Gracias por su tiempo!"


@postgresql_only
def test_opted_out_contacts_get_nothing_even_if_they_opt_out_while_it_sends(harness):
    before, during, later = _phones(3)
    harness.sms(before, "hola")
    harness.sms(before, "baja")
    harness.settle()
    _people(harness, [f"{p},returnee" for p in (before, later, during)])
    already = len(harness.texts_to(before))
    campaign_id = _campaign(harness, rate=1.0, remind_after=3600, max_reminders=1)
    harness.settle()
    assert len(harness.texts_to(later)) == 1 and harness.texts_to(during) == [], "one per second, in file order"
    harness.sms(during, "STOP")
    harness.settle()
    for _ in range(3):
        _run(harness, seconds=1)
    _run(harness, hours=2)
    assert len(harness.texts_to(before)) == already
    assert harness.texts_to(during) == ["Listo, ya no le escribiremos. Para volver, escriba ALTA."]
    assert len(harness.texts_to(later)) == 2, "the invitation and one reminder"
    statuses = _statuses(harness, campaign_id)
    assert statuses[("invite", "skipped:opted_out")] == 2 and statuses[("invite", "sent")] == 1
    assert _report(harness, campaign_id)["not_invited"] == {"opted_out": 2}


@postgresql_only
def test_waves_ask_the_same_people_again(harness):
    a, b = _phones(2)
    _people(harness, [f"{a},returnee", f"{b},returnee"])
    _campaign(harness, wave=1)
    _run(harness)
    _run(harness, seconds=1)
    harness.clock.advance(minutes=2)
    for reply, _, _ in RETURNEE_SCRIPT[:3]:
        harness.sms(a, reply)
    harness.settle()
    harness.clock.advance(days=120)
    second = _campaign(harness, wave=2)
    _run(harness)
    _run(harness, seconds=1)
    assert CONSENT in harness.texts_to(a)[-1] and CONSENT in harness.texts_to(b)[-1]
    harness.sms(a, "si")
    harness.settle()
    records = [r for r in harness.responses() if r["address"] == a]
    assert sorted((r["wave"], r["status"]) for r in records) == [(1, "expired"), (2, "in_progress")]
    assert len({r["respondent_id"] for r in records}) == 1, "both waves are the same respondent"
    assert records[0]["answers"] != records[1]["answers"]
    again = _campaign(harness, wave=2)
    _run(harness, seconds=1)
    assert _statuses(harness, again) == {("invite", "skipped:has_session"): 2}
    assert _report(harness, second)["counts"]["invited"] == 2


@postgresql_only
def test_provider_refusals_are_retried_or_recorded(harness, monkeypatch):
    busy, invalid, lost = _phones(3)
    _people(harness, [f"{p},returnee" for p in (busy, invalid, lost)])
    campaign_id = _campaign(harness, rate=1.0)
    harness.providers.fail_next("twilio", 429, {"code": 20429, "message": "Too Many Requests"})
    _run(harness)
    harness.providers.fail_next("twilio", 400, {"code": 21211, "message": "The 'To' number is not valid"})
    _run(harness, seconds=1)
    from bots.base import SendResult

    monkeypatch.setattr(sender, "_send_one", lambda rt, job: SendResult(
        ok=False, retry=True, error_code="connection", error="ReadTimeout: read timed out"))
    _run(harness, seconds=1)
    monkeypatch.undo()
    assert _statuses(harness, campaign_id) == {
        ("invite", "pending"): 1, ("invite", "failed:21211"): 1, ("invite", "interrupted"): 1}
    assert harness.providers.messages == []
    _run(harness, seconds=31)
    assert [m.to for m in harness.providers.messages] == [busy], "the 429 is retried; the others never again"
    assert harness.count("SELECT count(*) FROM contacts WHERE unreachable") == 1
    assert harness.count("SELECT count(*) FROM survey_sessions") == 2, "a refused invitation leaves no session"
    assert _report(harness, campaign_id)["not_invited"] == {"failed": 1, "interrupted": 1}


@postgresql_only
def test_a_message_left_sending_by_a_dead_worker_is_never_sent_again(harness):
    phones = _phones(3)
    _people(harness, [f"{p},returnee" for p in phones])
    campaign_id = _campaign(harness, rate=1.0)
    _run(harness)
    with harness.rt.sessions() as session, session.begin():
        row = session.scalars(select(CampaignMessage).where(CampaignMessage.status == "pending")
                              .order_by(CampaignMessage.id).limit(1)).one()
        row.status, row.sending_at = "sending", harness.clock.now  # claimed, then the worker died
    for _ in range(3):
        _run(harness, seconds=1)
    _run(harness, minutes=3)
    statuses = _statuses(harness, campaign_id)
    assert statuses == {("invite", "sent"): 2, ("invite", "interrupted"): 1}
    assert len(harness.providers.messages) == 2


@postgresql_only
def test_pause_resume_and_busy_respondents(harness):
    talking, idle = _phones(2)
    harness.sms(talking, "hola")
    harness.settle()
    _people(harness, [f"{p},returnee" for p in (talking, idle)])
    campaign_id = _campaign(harness, rate=1.0, wave=2)
    campaigns.pause(harness.rt, campaign_id)
    _run(harness, seconds=5)
    assert harness.texts_to(idle) == []
    campaigns.start(harness.rt, campaign_id)
    _run(harness, seconds=1)
    _run(harness, seconds=1)
    assert len(harness.texts_to(idle)) == 1
    assert len(harness.texts_to(talking)) == 1, "in the middle of another survey: invited an hour later"
    _run(harness, minutes=61)
    assert CONSENT in harness.texts_to(talking)[-1] and len(harness.texts_to(talking)) == 2


@postgresql_only
def test_one_sender_at_a_time(harness):
    from service.campaigns.lease import Lease

    _people(harness, [f"{p},returnee" for p in _phones(2)])
    _campaign(harness)
    other = Lease(harness.rt)
    assert other.acquire()
    try:
        assert sender.tick(0) == 0
    finally:
        other.release()
    assert sender.tick(0) == 1


def test_cli_create_start_status(harness, monkeypatch):
    _people(harness, [f"{p},returnee" for p in _phones(3)])
    monkeypatch.setenv("DATABASE_URL", harness.settings.database_url)
    monkeypatch.setenv("RETORNO_SECRET_KEY", harness.settings.secret_key)
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.delenv("RETORNO_SEND_RATE", raising=False)
    for name, value in (("TWILIO_ACCOUNT_SID", harness.settings.twilio_account_sid),
                        ("TWILIO_AUTH_TOKEN", harness.settings.twilio_auth_token),
                        ("TWILIO_FROM_NUMBER", harness.settings.twilio_from_number)):
        monkeypatch.setenv(name, value)
    runner = CliRunner()
    created = runner.invoke(main, ["campaigns", "create", "--survey", "reintegracion-mx", "--tag", "Returnee",
                                   "--wave", "2", "--rate", "5", "--quiet-hours", "22:00-07:30", "--timezone",
                                   "America/Monterrey", "--remind-after", "90m", "--max-reminders", "2",
                                   "--expire-after", "3d"])
    assert created.exit_code == 0, created.output
    campaign_id = int(created.stdout.strip().splitlines()[-1])
    assert "3 contacts tagged returnee" in created.stderr
    started = runner.invoke(main, ["campaigns", "start", str(campaign_id)])
    assert started.exit_code == 0, started.output
    assert "3 contacts tagged returnee" in started.stdout and "sms: 1/s via twilio" in started.stdout
    status = runner.invoke(main, ["campaigns", "status", str(campaign_id)])
    assert status.exit_code == 0, status.output
    assert "running" in status.stdout and "quiet hours 22:00-07:30 (America/Monterrey)" in status.stdout
    assert "remind after 90m (at most 2), expire after 3d" in status.stdout
    as_json = json.loads(runner.invoke(main, ["campaigns", "status", str(campaign_id), "--json"]).stdout)
    runtimes.install(harness.rt)
    api = _report(harness, campaign_id)
    assert as_json.pop("senders") == {"sms": "1/s via twilio"} and api.pop("senders") == {"sms": "5/s via twilio"}
    assert as_json == api
    assert as_json["wave"] == 2 and as_json["pending"] == 3 and as_json["settings"]["rate"] == 5.0
    for bad, message in ((["--remind-after", "soon"], "not a duration"), (["--quiet-hours", "9-5"], "HH:MM"),
                         (["--timezone", "Mars"], "not a time zone"), (["--survey", "nope"], "no survey")):
        args = ["campaigns", "create", "--survey", "reintegracion-mx", "--tag", "x", *bad]
        result = runner.invoke(main, args)
        assert result.exit_code != 0 and message in result.output, (bad, result.output)
    assert runner.invoke(main, ["campaigns", "status", "999"]).exit_code != 0


@pytest.mark.parametrize("token", ["analyst", None])
@postgresql_only
def test_the_api_is_for_staff(harness, token):
    campaign_id = _campaign(harness, start=False)
    headers = {"Authorization": f"Bearer {harness.analyst_token}"} if token else {}
    response = harness.client.get(f"/api/v1/campaigns/{campaign_id}", headers=headers)
    assert response.status_code == (403 if token else 401)
    assert harness.api("/api/v1/campaigns/999").get_json()["error"]["code"] == "unknown_campaign"
    assert [c["id"] for c in harness.api("/api/v1/campaigns").get_json()] == [campaign_id]


def test_cli_refuses_an_empty_tag_and_lists_how_many_were_invited(harness, monkeypatch):
    _people(harness, [f"{p},returnee" for p in _phones(3)])
    monkeypatch.setenv("DATABASE_URL", harness.settings.database_url)
    monkeypatch.setenv("RETORNO_SECRET_KEY", harness.settings.secret_key)
    monkeypatch.delenv("REDIS_URL", raising=False)
    runner = CliRunner()
    empty = runner.invoke(main, ["campaigns", "create", "--survey", "reintegracion-mx", "--tag", "Nadie"])
    assert empty.exit_code == 1
    assert empty.output == ("Error: no contact has the tag 'nadie': import them first (retorno contacts import "
                            "FILE --tag nadie), or create it anyway with --allow-empty\n")
    assert runner.invoke(main, ["campaigns", "list"]).output.startswith("no campaigns yet")
    allowed = runner.invoke(main, ["campaigns", "create", "--survey", "reintegracion-mx", "--tag", "nadie",
                                   "--allow-empty"])
    assert allowed.exit_code == 0 and "warning: no contact has the tag 'nadie' yet" in allowed.stderr
    runtimes.install(harness.rt)  # the CLI installed its own runtime, which has no Twilio sender
    campaign_id = _campaign(harness)
    _run(harness)
    _run(harness, seconds=1)
    listed = runner.invoke(main, ["campaigns", "list"])
    assert listed.exit_code == 0, listed.output
    assert listed.output.splitlines() == [
        f"   {int(allowed.stdout.split()[-1])}  draft     reintegracion-mx wave 1, tag nadie: 0 invited of 0 contacts",
        f"   {campaign_id}  running   reintegracion-mx wave 1, tag returnee: 3 invited of 3 contacts",
    ]


def test_a_plain_request_to_stop_during_a_campaign_gets_no_reminder(harness):
    asking, silent = _phones(2)
    _people(harness, [f"{p},returnee" for p in (asking, silent)])
    campaign_id = _campaign(harness, remind_after=6 * 3600, max_reminders=2, quiet_hours=None)
    _run(harness)
    _run(harness, seconds=1)
    harness.clock.advance(minutes=10)
    harness.sms(asking, "ya no me escriban por favor")
    harness.settle()
    assert harness.texts_to(asking)[-1] == "¿Quiere dejar de recibir mensajes? Responda BAJA."
    for hours in (6, 6, 6, 6):
        _run(harness, hours=hours)
        _run(harness, seconds=1)
    assert len(harness.texts_to(silent)) == 3, "the invitation and 2 reminders"
    assert len(harness.texts_to(asking)) == 2, "the invitation and the question, nothing after"
    statuses = _statuses(harness, campaign_id)
    assert statuses[("reminder", "skipped:asked_to_stop")] == 1 and statuses[("reminder", "sent")] == 2
    assert _report(harness, campaign_id)["counts"]["opted_out"] == 0
    harness.sms(asking, "no, sigo")
    harness.settle()
    assert harness.texts_to(asking)[-2:] == ["Bien, seguimos.", harness.texts_to(silent)[0]]
    harness.sms(asking, "basta")
    harness.sms(asking, "basta ya")
    harness.settle()
    assert harness.texts_to(asking)[-1] == "Listo, ya no le escribiremos. Para volver, escriba ALTA."
    assert _report(harness, campaign_id)["counts"]["opted_out"] == 1


def test_a_minor_is_screened_out_nothing_paid_nothing_else_stored(harness):
    minor, adult = _phones(2)
    _people(harness, [f"{p},returnee" for p in (minor, adult)])
    campaign_id = _campaign(harness, quiet_hours=None)
    _run(harness)
    _run(harness, seconds=1)
    harness.clock.advance(minutes=5)
    for phone, age in ((minor, "tengo 15"), (adult, "40")):
        harness.sms(phone, "si")
        harness.settle()
        assert harness.count("SELECT coalesce(sum(committed_cents), 0) FROM incentive_budgets") > 0
        harness.sms(phone, age)
        harness.settle()
    assert harness.texts_to(minor)[-1] == "¿Tiene 15 años?\n1) Si\n2) No, me equivoqué"  # a typo must not drop an adult
    harness.sms(minor, "1")
    harness.settle()
    assert harness.texts_to(minor)[-1].startswith("Gracias por escribirnos. Esta encuesta es solo para personas de 18")
    records = {r["address"]: r for r in harness.responses()}
    assert records[minor]["status"] == "ineligible" and records[minor]["answers"] == {"age_band": "under_18"}
    assert records[adult]["answers"] == {"consent": "yes", "age_band": "35-44"}
    assert harness.count("SELECT coalesce(sum(committed_cents), 0) FROM incentive_budgets") == 3000, "one held"
    assert harness.count("SELECT count(*) FROM incentives") == 0
    harness.sms(minor, "hola")
    harness.settle()
    assert records[minor]["answers"] == {"age_band": "under_18"}
    assert _report(harness, campaign_id)["counts"]["ineligible"] == 1
    assert _report(harness, campaign_id)["drop_off"] == [
        {"question": "returned", "waiting": 1, "expired": 0, "opted_out": 0}]
