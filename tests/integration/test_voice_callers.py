"""100 callers answer the bundled survey by phone through the real voice webhook, PostgreSQL, Redis and a worker.

Each caller keys some answers and says others (messy transcripts for the state: 'eh jalisco creo', 'halisco',
which is confirmed with 1); every fifth hangs up halfway and calls again; every seventh answers one question by SMS
midway and then calls back. What Retorno exports equals what each meant, on one session per number, paid once.
"""

from __future__ import annotations

import random
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
from sqlalchemy import create_engine, text

from surveys.loader import bundled_files, load_file
from tests.processes import (
    free_port,
    post_as_twilio,
    running,
    service_env,
    start_web,
    start_worker,
    wait_healthy,
)
from tests.support import twilio_form
from tests.voice.caller import HttpClient, Phone

pytestmark = pytest.mark.integration

CALLERS = 100
AT_ONCE = 16
DEFINITION = load_file(bundled_files()[0])
SAID_STATES = [("eh jalisco creo", "14", False), ("creo que en michoacan", "16", False), ("Oaxaca", "20", False),
               ("halisco", "14", True), ("guanajuato", "11", False), ("san luis", "24", False)]
"""(transcript, state code, whether Retorno asks to confirm it)"""


class Caller:
    """One respondent with the answers they mean, who keys or says them as the call asks."""

    def __init__(self, index: int, web_url: str, providers):
        self.index = index
        self.number = f"+5255{20000000 + index:08d}"
        self.web_url = web_url
        self.providers = providers
        self.rng = random.Random(index)
        self.meant: dict[str, object] = {"consent": "yes"}
        self.hangs_up = index % 5 == 0
        self.texts = index % 7 == 3
        self.steps = 0
        self.sms_sent = 0

    def phone(self) -> Phone:
        return Phone(HttpClient(self.web_url), self.number, public_url=self.web_url)

    def run(self) -> None:
        phone = self.phone()
        turn = phone.dial()
        hung_up = texted = False
        while turn.gather is not None:
            query = dict(parse_qsl(urlsplit(turn.gather["action"]).query))
            question, mode = query["q"], query["mode"]
            if self.hangs_up and not hung_up and self.steps == 6:
                hung_up = True
                turn = phone.dial()  # hung up; calls again later
                continue
            if self.texts and not texted and self.steps == 4 and mode in ("choice", "yes_no"):
                texted = True
                self.answer_by_sms(question)
                turn = phone.dial()
                continue
            turn = phone.answer(**self.answer(question, mode))
            self.steps += 1
            assert turn.status == 200, turn.xml
        assert "Gracias por completar" in turn.text, (self.number, turn.text)

    def answer(self, question: str, mode: str) -> dict:
        if question == "consent":
            return {"digits": "1"}
        if mode == "confirm":
            return {"digits": "1"}
        q = DEFINITION.question(question)
        if q.type == "region":
            said, code, _ = SAID_STATES[self.index % len(SAID_STATES)]
            self.meant[question] = code
            return {"speech": said}
        if q.type == "multi":
            self.meant[question] = [q.choices[0].value, q.choices[2].value]
            return {"digits": "13#"}
        allowed = [c for c in q.choices if c.value != "under_18"]
        choice = allowed[self.rng.randrange(len(allowed))] if question not in self.meant else q.choice(
            self.meant[question])
        self.meant[question] = choice.value
        if q.type == "choice" and self.rng.random() < 0.3:
            return {"speech": choice.label["es"]}
        return {"digits": str(q.choices.index(choice) + 1)}

    def answer_by_sms(self, question: str) -> None:
        q = DEFINITION.question(question)
        allowed = [c for c in q.choices if c.value != "under_18"]
        choice = allowed[self.rng.randrange(len(allowed))]
        self.meant[question] = choice.value
        body = ("si" if choice.value == "yes" else "no") if q.type == "yes_no" else str(q.choices.index(choice) + 1)
        before = len(self.providers.to(self.number))
        sid = f"SM{self.index:016d}{self.sms_sent:016d}"
        self.sms_sent += 1
        error = post_as_twilio(requests.Session(), self.web_url, "/webhooks/twilio/sms",
                               twilio_form(self.number, body, sid))
        assert error is None, error
        deadline = time.monotonic() + 20
        while len(self.providers.to(self.number)) <= before and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(self.providers.to(self.number)) > before, f"{self.number}: no SMS reply"


def stored(database_url: str) -> tuple[dict[str, dict], dict[str, int]]:
    from service.privacy import Vault

    vault = Vault("retorno-test-secret-key-0123456789")
    engine = create_engine(database_url)
    with engine.connect() as connection:
        sessions = connection.execute(text(
            "SELECT s.id, s.status, c.address_enc, c.channel FROM survey_sessions s "
            "JOIN contacts c ON c.id = s.contact_id")).all()
        answers = connection.execute(text("SELECT session_id, question_id, value FROM answers")).all()
        paid = connection.execute(text(
            "SELECT c.address_enc, count(*) FROM incentives i JOIN contacts c ON c.phone_hash = i.phone_hash "
            "AND c.channel = 'voice' GROUP BY c.address_enc")).all()
    engine.dispose()
    by_session: dict[int, dict] = {}
    for session_id, question_id, value in answers:
        by_session.setdefault(session_id, {})[question_id] = value
    records: dict[str, dict] = {}
    for session_id, status, address, channel in sessions:
        number = vault.decrypt(address)
        assert number not in records, f"{number} has two sessions"
        records[number] = {"status": status, "channel": channel, "answers": by_session.get(session_id, {})}
    return records, {vault.decrypt(address): count for address, count in paid}


def test_a_hundred_callers(clean_postgres, redis_url, providers, tmp_path):
    port = free_port()
    web_url = f"http://127.0.0.1:{port}"
    database = clean_postgres.replace("postgresql+psycopg", "postgresql")
    env = service_env(database, redis_url, providers.url, web_url)
    logs = tmp_path / "service.log"
    callers = [Caller(i, web_url, providers) for i in range(CALLERS)]
    with running(start_web(env, port, log=logs), start_worker(env, log=logs)):
        wait_healthy(web_url)
        with ThreadPoolExecutor(AT_ONCE) as pool:
            for future in [pool.submit(caller.run) for caller in callers]:
                future.result()
        deadline = time.monotonic() + 20
        records, paid = stored(clean_postgres)
        while len(paid) < CALLERS and time.monotonic() < deadline:
            time.sleep(0.5)
            records, paid = stored(clean_postgres)
    assert len(records) == CALLERS, logs.read_text()[-3000:]
    for caller in callers:
        record = records[caller.number]
        assert record["status"] == "completed", caller.number
        assert record["answers"] == caller.meant, caller.number
        assert record["channel"] == "voice" or caller.texts
        assert paid.get(caller.number) == 1, f"{caller.number} paid {paid.get(caller.number)} times"
    assert sum(c.hangs_up for c in callers) == 20 and sum(c.texts for c in callers) >= 14
