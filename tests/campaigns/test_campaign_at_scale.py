"""A 10,000-contact campaign through real processes: granian, 2 then 3 `retorno worker`s, PostgreSQL, Redis and a
fake Twilio on loopback, with the time of every process driven by the test (RETORNO_TEST_CLOCK, a Redis key).

The evening: invitations at 10 messages per second from 20:50 in Mexico City, the sender's worker killed with
SIGKILL mid-send and replaced; quiet hours from 21:00 in each respondent's time zone (Tijuana is two hours behind
and goes on), the rest in the morning. Some people answer, some send STOP to the invitation, some send STOP before
theirs went out, some had opted out long before. Next evening, reminders for those who never answered; three days
later, what is unfinished expires.

Each test step moves the clock 2 s and waits until the sender has used every sending moment up to then (the shared
limiter's row in the database) and the provider got what was claimed; the fake provider stamps each message with
the test clock, so rates and quiet hours are measured on what the provider received.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections import Counter, defaultdict
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
from tests.support import TWILIO_FROM, twilio_form

pytestmark = pytest.mark.integration

CONTACTS = 10_000
RATE = 10
STEP = 2.0
MEXICO, TIJUANA = ZoneInfo("America/Mexico_City"), ZoneInfo("America/Tijuana")
START = datetime(2026, 3, 2, 20, 50, tzinfo=MEXICO)  # 02:50 UTC on 3 March; 18:50 in Tijuana
CONSENT = "¿Acepta? (SI/NO)"
OPTED_OUT = "Listo, ya no le escribiremos"
WAIT = 8.0


def _phone(i: int) -> str:
    return f"+5255{20000000 + i:08d}"


class Provider:
    """What the fake Twilio received, stamped with the test clock; plays the respondents who answer."""

    def __init__(self, web_url: str, public_url: str):
        self.now = START
        self.received: list[tuple[datetime, str, str, str]] = []
        self.lock = threading.Lock()
        self.web_url, self.public_url = web_url, public_url
        self.answers: dict[str, str] = {}
        self.delivered_every = 50
        self.pool = ThreadPoolExecutor(4)
        self.http = threading.local()
        self.errors: list[str] = []
        self.ids = iter(range(10**9, 2 * 10**9))

    def on_message(self, sent) -> None:
        with self.lock:
            self.received.append((self.now, sent.to, sent.text, sent.provider_id))
            count = len(self.received)
            answer = self.answers.pop(sent.to, None) if CONSENT in sent.text else None
        if answer is not None:
            self.pool.submit(self.say, sent.to, answer)
        if count % self.delivered_every == 0:
            self.pool.submit(self.status, sent.provider_id, sent.to, 1.0)

    def count(self) -> int:
        with self.lock:
            return len(self.received)

    def _post(self, path: str, form: dict[str, str]) -> None:
        session = getattr(self.http, "session", None) or requests.Session()
        self.http.session = session
        error = post_as_twilio(session, self.web_url, path, form, self.public_url)
        if error:
            self.errors.append(error)

    def say(self, phone: str, body: str) -> None:
        self._post("/webhooks/twilio/sms", twilio_form(phone, body, f"SM{next(self.ids):032d}"))

    def status(self, sid: str, phone: str, after: float) -> None:
        """A delivery report, a moment after the message was accepted (as carriers take a while)."""
        time.sleep(after)
        self._post("/webhooks/twilio/status", {"MessageSid": sid, "MessageStatus": "delivered", "From": TWILIO_FROM,
                                               "To": phone, "AccountSid": "AC" + "a" * 32})


class Scenario:
    def __init__(self, database_url: str, redis_url: str, provider: Provider, env: dict[str, str]):
        self.db = create_engine(database_url)
        self.clock = SharedClock(redis_url)
        self.provider = provider
        self.env = env
        self.waits: list[float] = []
        self.campaign = 0
        self.clock.set(START)

    def sql(self, query: str, **params):
        with self.db.connect() as connection:
            return connection.execute(text(query), params).all()

    def cli(self, *args: str) -> str:
        result = CliRunner().invoke(main, list(args), env=self.env)
        assert result.exit_code in (0, 1), result.output
        return result.stdout

    def set(self, moment: datetime) -> None:
        self.provider.now = moment
        self.clock.set(moment)

    def holder(self) -> int | None:
        """The pid of the worker that holds the sender's lease."""
        rows = self.sql("SELECT holder FROM sender_leases WHERE name = 'campaigns' AND expires_at > :now",
                        now=time.time())
        return int(rows[0][0].split(":")[1]) if rows and rows[0][0] else None

    def step(self, seconds: float = STEP, settle: bool = True, backlog: str = "") -> bool:
        """Move the clock; wait until the sender used every moment up to now (or sent all of `backlog`) and the
        provider got what was claimed."""
        moment = self.provider.now + timedelta(seconds=seconds)
        self.set(moment)
        began = time.monotonic()
        deadline = began + WAIT
        while time.monotonic() < deadline:
            time.sleep(0.01)
            [(next_free, sending)] = self.sql(
                "SELECT (SELECT next_at FROM send_slots WHERE key = :key), EXISTS (SELECT 1 FROM campaign_messages "
                "WHERE campaign_id = :campaign AND status = 'sending' AND sending_at >= :recent)",
                key=f"twilio:{TWILIO_FROM}", campaign=self.campaign, recent=moment - timedelta(seconds=seconds / 2),
            )
            caught_up = (next_free or 0) >= moment.timestamp() or (backlog and not self.pending(backlog))
            if caught_up and not sending:
                self.waits.append(time.monotonic() - began)
                return True
        return not settle

    def idle(self, pause: float = 0.4) -> None:
        """Wait until nothing has arrived for `pause` seconds."""
        last, since = self.provider.count(), time.monotonic()
        while time.monotonic() - since < pause:
            time.sleep(0.02)
            if self.provider.count() != last:
                last, since = self.provider.count(), time.monotonic()

    def pending(self, where: str = "") -> int:
        return self.sql("SELECT count(*) FROM campaign_messages WHERE campaign_id = :campaign AND "
                        f"status IN ('pending', 'sending') {where}", campaign=self.campaign)[0][0]

    def wait_for(self, condition, timeout: float = 30.0, what: str = "") -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            assert time.monotonic() < deadline, f"timed out waiting for {what}: {self.diagnosis()}"
            time.sleep(0.05)

    def diagnosis(self) -> str:
        return "; ".join(f"{table}: {self.sql(f'SELECT status, count(*), min(error) FROM {table} GROUP BY status')}"
                         for table in ("inbound_messages", "outbound_messages", "campaign_messages"))


def test_ten_thousand_contacts(clean_postgres, redis_url, providers, tmp_path):
    port = free_port()
    web_url = f"http://127.0.0.1:{port}"
    database_url = clean_postgres.replace("postgresql+psycopg", "postgresql")
    env = service_env(database_url, redis_url, providers.url, web_url, RETORNO_TEST_CLOCK="1",
                      RETORNO_SEND_RATE=str(RATE))
    provider = Provider(web_url, web_url)
    providers.on_message = provider.on_message
    scenario = Scenario(clean_postgres, redis_url, provider, env)
    logs = tmp_path / "service.log"

    tijuana = {_phone(i) for i in range(0, CONTACTS, 10)}
    long_ago = [_phone(i) for i in range(5, 200, 10)]  # opted out before the import
    during = [_phone(i) for i in range(CONTACTS - 30, CONTACTS)]  # STOP while the campaign sends
    answer_yes = {_phone(i) for i in range(1, 5000, 50)}
    answer_stop = {_phone(i) for i in range(3, 5000, 100)}
    provider.answers = {**{p: "si" for p in answer_yes}, **{p: "STOP" for p in answer_stop}}

    run: dict = {"tijuana": tijuana, "long_ago": long_ago, "during": during, "answer_yes": answer_yes,
                 "answer_stop": answer_stop}
    workers = [start_worker(env, log=logs), start_worker(env, log=logs)]
    with running(start_web(env, port, workers=1, log=logs)):
        try:
            _play(scenario, provider, env, workers, logs, tmp_path, run)
        finally:
            for worker in workers:
                stop(worker)
            provider.pool.shutdown(wait=True)  # delivery reports come a second late: let them reach the web
    _check(scenario, provider, run)


def _play(scenario: Scenario, provider: Provider, env: dict, workers: list, logs, tmp_path, run: dict) -> None:
    began = time.monotonic()
    phases = run["phases"] = {}

    def phase(name: str) -> None:
        phases[name] = round(time.monotonic() - began - sum(phases.values()), 1)

    wait_healthy(provider.web_url)
    for phone in run["long_ago"]:
        provider.say(phone, "STOP")
    rows = ["phone,tags,timezone"] + [
        f"{_phone(i)},returnee{' community' if i % 3 == 0 else ''},"
        f"{'America/Tijuana' if _phone(i) in run['tijuana'] else ''}"
        for i in range(CONTACTS)
    ]
    (tmp_path / "returnees.csv").write_text("\n".join(rows) + "\n")
    scenario.wait_for(lambda: provider.count() >= len(run["long_ago"]), what="the early opt-outs")
    imported = scenario.cli("contacts", "import", str(tmp_path / "returnees.csv"), "--tag", "pilot-2026")
    assert f"{CONTACTS:,} rows, imported {CONTACTS:,}" in imported and "20 opted out earlier" in imported
    created = scenario.cli("campaigns", "create", "--survey", "reintegracion-mx", "--tag", "returnee",
                           "--rate", str(RATE), "--quiet-hours", "21:00-08:00", "--remind-after", "24h",
                           "--max-reminders", "1", "--expire-after", "3d")
    campaign = run["campaign"] = scenario.campaign = int(created.strip().splitlines()[-1])
    scenario.cli("campaigns", "start", str(campaign))
    phase("setup and import")

    # 20:50 to 21:00: everyone's evening; STOPs arrive while it sends; the sender's worker dies mid-send
    while provider.now < START + timedelta(minutes=10) - timedelta(seconds=STEP):
        assert scenario.step(), f"the sender fell behind at {provider.now:%H:%M:%S}: {scenario.diagnosis()}"
        if provider.now == START + timedelta(minutes=2):
            for phone in run["during"]:
                provider.say(phone, "STOP")
        if provider.now == START + timedelta(minutes=5):
            run["killed"] = _kill_the_sender(scenario, workers)
            workers.append(start_worker(env, log=logs))
            scenario.cli("campaigns", "start", str(campaign))
            scenario.wait_for(lambda: scenario.holder() not in (None, run["killed"]), what="another sender")
    phase("evening")
    # 21:00 in Mexico City: only Tijuana (19:00 there) goes on, until its invitations are all out
    tijuana = "AND timezone = 'America/Tijuana'"
    while scenario.pending(tijuana):
        assert scenario.step(backlog=tijuana), f"Tijuana stalled at {provider.now:%H:%M:%S}"
    scenario.idle()
    run["night"] = provider.count()
    scenario.set(START.replace(day=3, hour=7, minute=59, second=58))
    scenario.idle(1.0)
    phase("tijuana and night")
    # 08:00: the morning
    while scenario.pending("AND kind = 'invite'"):
        assert scenario.step(backlog="AND kind = 'invite'"), f"the morning stalled at {provider.now:%H:%M:%S}"
    scenario.idle()
    run["morning_end"] = provider.now
    phase("morning")
    # next evening, 20:52: reminders are due for those invited before 20:52 yesterday who never answered
    scenario.set(START.replace(day=3, minute=52))
    scenario.wait_for(lambda: scenario.pending("AND kind = 'reminder'") > 1000, what="reminders planned")
    run["reminders_start"] = provider.now
    for _ in range(30):
        assert scenario.step(), f"reminders stalled at {provider.now:%H:%M:%S}"
    scenario.idle()
    phase("reminders")
    # three days after the last invitation: everything unfinished expires, pending reminders are dropped
    run["before_expiry"] = provider.count()
    run["expiry"] = START.replace(day=6, hour=12)
    scenario.set(run["expiry"])
    scenario.wait_for(lambda: scenario.sql("SELECT status FROM campaigns WHERE id = :c", c=campaign)[0][0]
                      == "finished", 90, what="expiry")
    scenario.set(run["expiry"] + timedelta(minutes=1))
    scenario.idle(1.0)
    run["status"] = scenario.cli("campaigns", "status", str(campaign))
    run["report"] = json.loads(scenario.cli("campaigns", "status", str(campaign), "--json"))
    phase("expiry")
    print(f"real seconds per phase: {phases}")
    waits = sorted(scenario.waits)
    print(f"step waits: n={len(waits)} p50={waits[len(waits) // 2]:.3f} p90={waits[int(len(waits) * .9)]:.3f} "
          f"max={waits[-1]:.3f} total={sum(waits):.1f}")


def _kill_the_sender(scenario: Scenario, processes: list) -> int:
    """SIGKILL the worker holding the sender's lease, while it has messages in flight."""
    pid = scenario.holder()
    assert pid in [p.pid for p in processes], pid
    before = scenario.provider.count()
    moment = scenario.provider.now + timedelta(seconds=STEP)
    scenario.set(moment)
    deadline = time.monotonic() + WAIT
    while scenario.provider.count() < before + 5 and time.monotonic() < deadline:
        time.sleep(0.001)
    os.kill(pid, signal.SIGKILL)
    stop(next(p for p in processes if p.pid == pid))
    return pid


def _check(scenario: Scenario, provider: Provider, run: dict) -> None:
    campaign = run["campaign"]
    assert not provider.errors, provider.errors[:5]
    received = provider.received
    invitations: dict[str, list[datetime]] = defaultdict(list)
    reminders: dict[str, list[datetime]] = defaultdict(list)
    by_sid = dict(scenario.sql("SELECT provider_id, kind FROM outbound_messages WHERE campaign_id = :c", c=campaign))
    for moment, to, body, sid in received:
        kind = by_sid.get(sid, "invite" if CONSENT in body else None)  # unknown: sent by the killed worker
        if kind == "invite":
            invitations[to].append(moment)
        elif kind == "reminder":
            reminders[to].append(moment)

    # never twice, even across the killed worker
    assert max(len(times) for times in invitations.values()) == 1
    assert max(len(times) for times in reminders.values()) == 1, "at most 1 reminder each"
    interrupted = scenario.sql("SELECT count(*) FROM campaign_messages WHERE status = 'interrupted'")[0][0]
    assert interrupted <= 2 * RATE * STEP, "only what the killed worker had claimed"
    invited_in_db = scenario.sql("SELECT count(*) FROM campaign_messages WHERE kind = 'invite' AND status = 'sent'")
    assert len(invitations) >= invited_in_db[0][0]
    assert len(invitations) + interrupted >= CONTACTS - 50, "everyone else was invited, once"

    # opted-out contacts receive nothing (the STOP confirmation aside)
    for phone in run["long_ago"] + run["during"]:
        assert phone not in invitations and phone not in reminders, phone
    for phone in run["answer_stop"]:
        assert phone not in reminders, phone
    for phone in run["during"]:
        assert [body for _, to, body, _ in received if to == phone] == [
            "Listo, ya no le escribiremos. Para volver, escriba ALTA."]

    # no message in quiet hours, in each respondent's time zone
    for to, times in [*invitations.items(), *reminders.items()]:
        zone = TIJUANA if to in run["tijuana"] else MEXICO
        for moment in times:
            local = moment.astimezone(zone).time()
            assert datetime.strptime("08:00", "%H:%M").time() <= local < datetime.strptime("21:00", "%H:%M").time(), (
                to, moment)
    # replies and STOP confirmations answer what a respondent wrote and are not held back; those a killed worker
    # had in flight go out when the sweeper releases them, here when the clock jumps to the morning
    night = [(m, to, body[:40]) for m, to, body, sid in received[run["night"]:]
             if m < START.replace(day=3, hour=8, minute=0)
             and by_sid.get(sid, "invite" if CONSENT in body else None) in ("invite", "reminder")]
    assert night == [], "no invitation or reminder between the last Tijuana invitation and 08:00"

    # the rate, minute by minute, wherever there was a backlog to send
    per_minute = Counter(m.replace(second=0, microsecond=0) for m, _, _, _ in received)
    evening = [START + timedelta(minutes=i) for i in range(10)]
    morning = [START.replace(day=3, hour=8, minute=0) + timedelta(minutes=i) for i in range(100)
               if START.replace(day=3, hour=8, minute=0) + timedelta(minutes=i + 1) <= run["morning_end"] - timedelta(minutes=1)]
    reminding = [run["reminders_start"].replace(second=0)]
    counts = {f"{minute:%d %H:%M}": per_minute[minute] for minute in evening + morning + reminding}
    print(f"messages per minute (test clock): {counts}")
    assert len(counts) >= 15, counts
    assert all(0.95 * 60 * RATE <= n <= 1.05 * 60 * RATE for n in counts.values()), counts

    # reminders: a day after the invitation, only to those who did not finish; then expiry stops everything
    assert len(reminders) >= 500
    for to, [moment] in reminders.items():
        assert moment - invitations[to][0] >= timedelta(hours=24), to
    assert run["answer_yes"] & set(reminders), "those who said yes and went quiet are reminded too"
    assert all(m < run["expiry"] for m, _, _, _ in received[run["before_expiry"]:])

    # the funnel
    report = run["report"]
    counts = report["counts"]
    opted_out_before = len(run["long_ago"]) + len(run["during"])
    assert counts["invited"] + interrupted == CONTACTS - opted_out_before
    assert report["not_invited"] == {"opted_out": opted_out_before, "interrupted": interrupted}
    said_yes, said_stop = run["answer_yes"] & set(invitations), run["answer_stop"] & set(invitations)
    assert len(said_yes) >= len(run["answer_yes"]) - interrupted, "an invitation lost with the killed worker"
    assert counts["consented"] == len(said_yes) and counts["started"] == len(said_yes) + len(said_stop)
    assert counts["opted_out"] == len(said_stop) and counts["completed"] == 0
    assert counts["expired"] == CONTACTS - opted_out_before - len(said_stop)
    assert counts["delivered"] >= 150
    assert report["status"] == "finished" and report["reminders_sent"] == len(reminders)
    assert "expired" in run["status"] and "age_band" in run["status"]
