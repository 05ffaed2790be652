"""A WhatsApp campaign for 1,000 contacts through real processes: granian, two `retorno worker`s, PostgreSQL,
Redis, and a fake Twilio that holds Retorno to WhatsApp's 24-hour rule (free text outside the window is refused
with 63016 and never reaches the person), with the time of every process driven by the test (RETORNO_TEST_CLOCK).

The morning: 1,000 WhatsApp contacts with an opt-in are invited by template (20 without one are not); WhatsApp
will not deliver 50 of the templates (63049, Meta's marketing limits; 63024, not a WhatsApp recipient), and those
people are invited by SMS instead. Half of those who got the template answer it, by button or in words: each is
asked for consent in free text, most consent, and the conversation goes on in free text. A few press STOP.
A day later, the reminders go out as templates, and those who answer one are asked their question again.
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import requests
from click.testing import CliRunner
from sqlalchemy import create_engine, text

from service.cli import main
from service.testclock import SharedClock
from tests.processes import (
    free_port,
    post_as_twilio,
    running,
    service_env,
    start_web,
    start_worker,
    stop,
    wait_healthy,
)
from tests.support import TWILIO_SID, twilio_form

pytestmark = pytest.mark.integration

CONTACTS = 1_000
WITHOUT_OPT_IN = 20
START = datetime(2026, 3, 2, 10, 0, tzinfo=ZoneInfo("America/Mexico_City"))
INVITE_ES, INVITE_EN, REMINDER = ("HX" + c * 32 for c in "abc")
CONSENT = ("¿Acepta?", "Agree?")
AGE = ("¿Qué edad tiene?", "How old are you?")
DEADLINE = 60.0
"""Real seconds any one phase may take (about 5 to 15 on an idle 2-core machine)."""


def _phone(i: int) -> str:
    return f"+5255{30000000 + i:08d}"


class Respondents:
    """Plays the 1,000 people: what each does is decided by their number, and they answer what they receive."""

    def __init__(self, providers, web_url: str, clock: SharedClock):
        self.providers, self.web_url, self.clock = providers, web_url, clock
        self.pool = ThreadPoolExecutor(8)
        self.http = threading.local()
        self.ids = iter(range(10**9, 2 * 10**9))
        self.lock = threading.Lock()
        self.errors: list[str] = []
        self.received: dict[str, list] = defaultdict(list)
        self.answering = True

    @staticmethod
    def index(number: str) -> int:
        return int(number[-8:]) - 30000000

    def on_message(self, sent) -> None:
        with self.lock:
            self.received[sent.to].append((self.clock(), sent))
        if not self.answering:
            return
        i, reply = self.index(sent.to), None
        if sent.template in (INVITE_ES, INVITE_EN) and i % 2 == 0:
            reply = ("button", "stop") if i % 50 == 10 else ("button", "start") if i % 6 == 0 else (
                ("text", "hola") if i % 6 == 2 else ("text", "sí"))
        elif sent.template == REMINDER and i % 8 == 1:
            reply = ("text", "perdón, aquí estoy")
        elif any(c in sent.text for c in CONSENT) and (sent.channel == "whatsapp" or i % 2 == 0):
            reply = ("text", "si")
        elif any(q in sent.text for q in AGE) and i % 4 == 0:
            reply = ("text", "30")
        if reply is not None:
            self.pool.submit(self.say, sent.channel, sent.to, *reply)

    def say(self, channel: str, number: str, kind: str, value: str) -> None:
        sender = f"whatsapp:{number}" if channel == "whatsapp" else number
        sid = f"SM{next(self.ids):032d}"
        if kind == "button":
            label = "Sí, participar" if value == "start" else "No, gracias"
            form = {**twilio_form(sender, label, sid), "MessageType": "button", "ButtonText": label,
                    "ButtonPayload": value}
        else:
            form = twilio_form(sender, value, sid)
        if channel == "whatsapp":
            self.providers.wrote(number)
        self.post("/webhooks/twilio/sms", form)

    def report(self, sid: str, to: str, status: str, code: str | None) -> None:
        """Twilio's delivery report, posted to the status webhook as Twilio would."""
        form = {"MessageSid": sid, "SmsSid": sid, "MessageStatus": status, "SmsStatus": status,
                "AccountSid": TWILIO_SID, "ApiVersion": "2010-04-01", "To": f"whatsapp:{to}",
                "From": "whatsapp:+15005550006", "ChannelPrefix": "whatsapp", "ErrorCode": code or ""}
        self.pool.submit(self.post, "/webhooks/twilio/status", form)

    def post(self, path: str, form: dict[str, str]) -> None:
        session = getattr(self.http, "session", None) or requests.Session()
        self.http.session = session
        error = post_as_twilio(session, self.web_url, path, form)
        if error:
            self.errors.append(error)

    def messages(self, number: str) -> list:
        with self.lock:
            return list(self.received.get(number, []))


class Scenario:
    def __init__(self, database_url: str, env: dict[str, str], clock: SharedClock, people: Respondents):
        self.db = create_engine(database_url)
        self.env, self.clock, self.people = env, clock, people
        self.campaign = 0

    def sql(self, query: str, **params):
        with self.db.connect() as connection:
            return connection.execute(text(query), params).all()

    def cli(self, *args: str) -> str:
        result = CliRunner().invoke(main, list(args), env=self.env)
        assert result.exit_code == 0, result.output
        return result.stdout

    def until(self, condition, what: str, step: float = 1.0) -> None:
        """Move the test clock `step` seconds at a time (so the sender may go on) until `condition` holds."""
        deadline = time.monotonic() + DEADLINE
        while not condition():
            assert time.monotonic() < deadline, f"timed out waiting for {what}: {self.diagnosis()}"
            self.clock.advance(step)
            time.sleep(0.15)

    def quiet(self, seconds: float = 1.5) -> None:
        """Wait until nothing is in flight: no pending inbound, no queued reply, nothing new at the provider."""
        last, since = -1, time.monotonic()
        deadline = since + DEADLINE
        while time.monotonic() - since < seconds:
            assert time.monotonic() < deadline, f"never quiet: {self.diagnosis()}"
            time.sleep(0.1)
            busy = self.sql("SELECT (SELECT count(*) FROM inbound_messages WHERE status = 'pending') + "
                            "(SELECT count(*) FROM outbound_messages WHERE status IN ('queued', 'sending'))")[0][0]
            count = len(self.people.providers.messages) + len(self.people.providers.reports) + busy
            if count != last or busy:
                last, since = count, time.monotonic()

    def pending(self, kind: str) -> int:
        return self.sql("SELECT count(*) FROM campaign_messages WHERE campaign_id = :c AND kind = :kind AND "
                        "status IN ('pending', 'sending')", c=self.campaign, kind=kind)[0][0]

    def diagnosis(self) -> str:
        return "; ".join(f"{table}: {self.sql(f'SELECT status, count(*) FROM {table} GROUP BY status')}"
                         for table in ("inbound_messages", "outbound_messages", "campaign_messages"))


def test_a_thousand_whatsapp_contacts(clean_postgres, redis_url, providers, tmp_path):
    port = free_port()
    web_url = f"http://127.0.0.1:{port}"
    database_url = clean_postgres.replace("postgresql+psycopg", "postgresql")
    env = service_env(database_url, redis_url, providers.url, web_url, RETORNO_TEST_CLOCK="1",
                      RETORNO_SEND_RATE="200")
    clock = SharedClock(redis_url)
    clock.set(START)
    providers.clock = clock
    people = Respondents(providers, web_url, clock)
    providers.on_message = people.on_message
    providers.on_status = people.report
    held = {_phone(i) for i in range(CONTACTS) if i % 25 == 7}
    invalid = {_phone(i) for i in range(CONTACTS) if i % 100 == 13}
    providers.whatsapp_errors.update({**{p: "63049" for p in held}, **{p: "63024" for p in invalid}})
    scenario = Scenario(clean_postgres, env, clock, people)
    logs = tmp_path / "service.log"
    workers = [start_worker(env, log=logs), start_worker(env, log=logs)]
    began = time.monotonic()
    with running(start_web(env, port, workers=1, log=logs)):
        try:
            wait_healthy(web_url)
            run = _play(scenario, tmp_path)
        finally:
            people.answering = False
            for worker in workers:
                stop(worker)
            people.pool.shutdown(wait=True)
    print(f"real seconds: {time.monotonic() - began:.1f}")
    try:
        _check(scenario, people, run, held | invalid)
    finally:
        scenario.db.dispose()
        clock.redis.close()


def _play(scenario: Scenario, tmp_path) -> dict:
    rows = ["celular,canal,idioma,consentimiento,etiquetas"] + [
        f"{_phone(i)},whatsapp,{'en' if i % 10 == 3 else 'es'},"
        f"{'' if i >= CONTACTS else '2026-01-15 registro en el albergue'},retornados"
        for i in range(CONTACTS + WITHOUT_OPT_IN)
    ]
    (tmp_path / "whatsapp.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    imported = scenario.cli("contacts", "import", str(tmp_path / "whatsapp.csv"))
    assert f"{CONTACTS:,} people with an opt-in to WhatsApp messages" in imported
    created = scenario.cli(
        "campaigns", "create", "--survey", "reintegracion-mx", "--tag", "retornados", "--channel", "whatsapp",
        "--whatsapp-template", f"es={INVITE_ES},en={INVITE_EN}", "--whatsapp-reminder-template", f"es={REMINDER}",
        "--fallback", "sms", "--rate", "200", "--quiet-hours", "none", "--remind-after", "24h",
        "--max-reminders", "1", "--expire-after", "3d")
    scenario.campaign = int(created.strip().splitlines()[-1])
    started = scenario.cli("campaigns", "start", str(scenario.campaign))
    assert f"{WITHOUT_OPT_IN} have no WhatsApp opt-in" in started

    # the morning: invitations by template; WhatsApp refuses 50, who are invited by SMS; people answer
    scenario.until(lambda: scenario.pending("invite") == 0 and scenario.sql(
        "SELECT count(*) FROM campaign_messages WHERE fallback_of IS NOT NULL AND status = 'sent'")[0][0] == 50,
        "the invitations and the SMS fallback")
    scenario.quiet()
    run = {"reminders_from": scenario.clock()}

    # a day later: reminders, by template, for everyone silent since
    scenario.clock.set(START + timedelta(hours=24, minutes=15))
    scenario.until(lambda: scenario.sql("SELECT count(*) FROM campaign_messages WHERE campaign_id = :c AND "
                                        "kind = 'reminder'", c=scenario.campaign)[0][0] > 0, "reminders planned")
    scenario.until(lambda: scenario.pending("reminder") == 0, "the reminders")
    scenario.quiet()
    run["report"] = json.loads(scenario.cli("campaigns", "status", str(scenario.campaign), "--json"))
    run["status"] = scenario.cli("campaigns", "status", str(scenario.campaign))
    return run


def _check(scenario: Scenario, people: Respondents, run: dict, undelivered: set[str]) -> None:
    providers = people.providers
    assert not people.errors, people.errors[:5]
    assert providers.refused == [], "nobody was sent free text outside the 24-hour window"
    opted_in = [_phone(i) for i in range(CONTACTS)]
    for i in range(CONTACTS, CONTACTS + WITHOUT_OPT_IN):
        assert people.messages(_phone(i)) == [], "no opt-in, no message"

    stops = {_phone(i) for i in range(CONTACTS) if i % 2 == 0 and i % 50 == 10} - undelivered
    for number in opted_in:
        i = Respondents.index(number)
        received = people.messages(number)
        whatsapp = [(at, m) for at, m in received if m.channel == "whatsapp"]
        sms = [m for _, m in received if m.channel == "sms"]
        invites = [m for _, m in whatsapp if m.template in (INVITE_ES, INVITE_EN)]
        if number in undelivered:
            assert invites == [] and whatsapp == [], number
            asked = [m for m in sms if any(c in m.text for c in CONSENT)]
            if i % 2 == 0:
                assert len(asked) == 1, "invited by SMS, once"
                assert any(any(q in m.text for q in AGE) for m in sms), "the SMS conversation goes on"
            else:
                assert len(asked) == 2, "invited by SMS, and reminded by SMS (no window there) a day later"
            continue
        assert sms == [], number
        assert len(invites) == 1 and invites[0].template == (INVITE_EN if i % 10 == 3 else INVITE_ES), number
        assert invites[0].variables["1"] in ("Reintegración en México", "Reintegration in Mexico")
        reminders = [(at, m) for at, m in whatsapp if m.template == REMINDER]
        free = [m for _, m in whatsapp if m.template is None]
        if number in stops:
            assert reminders == [] and [m.text for m in free] == [
                "Listo, ya no le escribiremos. Para volver, escriba ALTA."], number
            continue
        if i % 2 == 0:  # answered the template: asked for consent in free text, consented, went on
            assert any(c in free[0].text for c in CONSENT), (number, free[0].text)
            assert any(any(q in m.text for q in AGE) for m in free), number
        else:
            assert free == [] or i % 8 == 1, number
        for at, _ in reminders:
            assert at >= run["reminders_from"], "reminders only after 24 hours"
        if i % 2 == 1 or i % 4 == 2:  # silent for a day: one reminder, by template
            assert len(reminders) == 1, (number, [m.template for _, m in whatsapp])
        if i % 8 == 1:  # answered the reminder: the consent question again, in free text
            assert any(c in free[0].text for c in CONSENT) and len(free) >= 2, number

    report = run["report"]
    counts = report["counts"]
    assert report["audience"] == CONTACTS + WITHOUT_OPT_IN
    assert report["not_invited"] == {"no_opt_in": WITHOUT_OPT_IN}
    assert counts["invited"] == CONTACTS, "950 by WhatsApp template, 50 by SMS"
    assert report["fallback_sms"] == {"invited": 50, "pending": 0, "not_invited": 0}
    errors = {row["code"]: row for row in report["errors"]}
    assert errors["63049"]["count"] == 40 and errors["63049"]["outcomes"] == {"invited by SMS instead": 40}
    assert errors["63024"]["count"] == 10 and errors["63024"]["outcomes"] == {"invited by SMS instead": 10}
    answered = {n for n in opted_in if Respondents.index(n) % 2 == 0} - undelivered
    assert counts["opted_out"] == len(stops)
    consented_by_sms = len([n for n in undelivered if Respondents.index(n) % 2 == 0])
    reminder_answers = len([n for n in opted_in if Respondents.index(n) % 8 == 1 and n not in undelivered])
    assert counts["consented"] == len(answered) - len(stops) + consented_by_sms + reminder_answers
    assert report["reminders_sent"] >= 400
    assert "63049" in run["status"] and "invited by SMS instead" in run["status"]
