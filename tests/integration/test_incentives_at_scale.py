"""Incentives with real PostgreSQL, Redis and `retorno worker` processes, paying through a misbehaving fake Reloadly.

500 respondents complete (450 by SMS, 50 on Telegram, half of those giving a number that also answered by SMS),
30 decline and 30 opt out after consenting; the budget covers fewer credits than there are completions. The fake
fails or times out at random, and the test enqueues every issue and settle job again while the workers run.
Then a worker is killed in the middle of a top-up, and reconciliation settles what it left `submitted`.
"""

from __future__ import annotations

import itertools
import signal
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, insert, text

from bots.base import Incoming
from service.models import InboundMessage
from tests.fake_reloadly import FakeReloadly
from tests.processes import running, service_env, start_worker, stop

pytestmark = pytest.mark.integration

SECRET = "retorno-test-secret-key-0123456789"
AMOUNT, CREDITS = 30, 470
SURVEY = f"""
id: corta
version: 1
title: {{es: Corta, en: Short}}
languages: [es, en]
default_language: es
incentive: {{amount: {AMOUNT}, currency: MXN, budget: {AMOUNT * CREDITS}}}
consent:
  text: {{es: Encuesta corta con $30 de saldo. ¿Acepta?, en: Short survey with 30 pesos credit. Agree?}}
questions:
  - id: state
    type: region
    text: {{es: ¿En qué estado vive?, en: Which state do you live in?}}
"""
SETTLED = ("succeeded", "duplicate")
DEADLINE = 120
"""Seconds; about 50 on an idle 2-core machine."""


def _environment(postgres_url: str, redis_url: str, providers_url: str, reloadly: FakeReloadly,
                 tmp_path: Path) -> dict[str, str]:
    folder = tmp_path / "surveys"
    folder.mkdir(exist_ok=True)
    (folder / "corta.yaml").write_text(SURVEY, encoding="utf-8")
    return service_env(
        postgres_url.replace("postgresql+psycopg", "postgresql"), redis_url, providers_url, "http://127.0.0.1:9",
        RETORNO_SURVEYS_DIR=str(folder), RETORNO_DEFAULT_SURVEY="corta", RETORNO_INCENTIVE_RETRY_SECONDS="0.2",
        **reloadly.env(timeout=0.5),
    )


class Respondents:
    """Writes respondents' messages straight into the inbox table (as webhooks would) and wakes the workers."""

    def __init__(self, postgres_url: str, redis_url: str):
        from service.config import Settings
        from service.queue import RedisDispatcher
        from service.runtime import build

        settings = Settings.from_env(
            {"DATABASE_URL": postgres_url, "RETORNO_SECRET_KEY": SECRET, "REDIS_URL": redis_url}
        )
        self.rt = build(settings, dispatcher=RedisDispatcher(redis_url))
        self.ids = itertools.count(1_000_000)
        self.rows: list[dict] = []

    def sms(self, phone: str, *texts: str) -> None:
        for body in texts:
            self._add(Incoming("sms", f"SM{next(self.ids):032d}", phone, text=body))

    def telegram(self, chat: int, *texts: str, contact: str | None = None) -> None:
        for body in texts:
            update = next(self.ids)
            self._add(Incoming("telegram", str(update), str(chat), text=body, sequence=update, language_hint="es"))
        if contact is not None:
            update = next(self.ids)
            self._add(Incoming("telegram", str(update), str(chat), kind="contact", sequence=update,
                               extra={"contact_phone": contact, "contact_is_self": True}))

    def _add(self, incoming: Incoming) -> None:
        from service.inbox import row_for

        self.rows.append(row_for(self.rt, incoming, datetime.now(UTC)))

    def send(self, chunk: int = 250) -> None:
        from service.queue import INBOX

        with self.rt.engine.begin() as connection:
            ids = connection.execute(insert(InboundMessage).returning(InboundMessage.id), self.rows).scalars().all()
        self.rows = []
        for start in range(0, len(ids), chunk):
            self.rt.dispatcher.push(INBOX, ids[start:start + chunk])

    def enqueue_again(self) -> None:
        """Jobs executed twice on purpose: besides the workers' own jobs and ticks, one issue job and one settle job
        for every record that is due now (two jobs, whatever the number of records)."""
        with self.rt.engine.connect() as connection:
            rows = connection.execute(text(
                "SELECT id, status FROM incentives WHERE status IN ('pending', 'failed', 'submitted') "
                "AND next_attempt_at <= now()"
            )).all()
        issue = [i for i, status in rows if status != "submitted"]
        settle = [i for i, status in rows if status == "submitted"]
        if issue:
            self.rt.dispatcher.enqueue("workers.incentives.issue", *issue)
        if settle:
            self.rt.dispatcher.enqueue("workers.incentives.settle", *settle)

    def close(self) -> None:
        self.rt.engine.dispose()


def _query(url: str, sql: str, **params):
    engine = create_engine(url)
    with engine.connect() as connection:
        rows = connection.execute(text(sql), params).all()
    engine.dispose()
    return rows


def test_five_hundred_completions_across_four_workers_are_paid_exactly_once(clean_postgres, redis_url, providers,
                                                                            tmp_path):
    reloadly = FakeReloadly(late_seconds=0.8).start()
    reloadly.chaos(0.3, ("timeout", "lost", "error", "error_after", "insufficient", "processing", "refunded"),
                   per_key=2)
    env = _environment(clean_postgres, redis_url, providers.url, reloadly, tmp_path)
    log = tmp_path / "workers.log"
    crowd = Respondents(clean_postgres, redis_url)
    completers = [f"+5255{10000000 + i * 97:08d}" for i in range(450)]
    decliners = [f"+5233{10000000 + i * 89:08d}" for i in range(30)]
    leavers = [f"+5281{10000000 + i * 83:08d}" for i in range(30)]
    telegram_phones = [*completers[:25], *(f"+5299{10000000 + i * 71:08d}" for i in range(25))]
    try:
        with running(*(start_worker(env, log=log) for _ in range(4))):
            for phone in completers:
                crowd.sms(phone, "hola", "si", "jalisco")
            for phone in decliners:
                crowd.sms(phone, "hola", "no")
            for phone in leavers:
                crowd.sms(phone, "hola", "si", "BAJA", "BAJA")  # on the region question BAJA asks which Baja first
            for i, phone in enumerate(telegram_phones):
                if i % 2:
                    crowd.telegram(800_000 + i, "hola", "si", "jalisco", phone.removeprefix("+52"))
                else:
                    crowd.telegram(800_000 + i, "hola", "si", "jalisco", contact="521" + phone.removeprefix("+52"))
            crowd.send()
            started = time.monotonic()
            while time.monotonic() - started < DEADLINE:
                time.sleep(1.0)
                crowd.enqueue_again()
                done = _query(clean_postgres, """
                    SELECT (SELECT count(*) FROM survey_sessions WHERE status = 'completed'),
                           (SELECT count(*) FROM inbound_messages WHERE status = 'pending'),
                           (SELECT count(*) FROM incentives WHERE status NOT IN ('succeeded', 'duplicate'))""")[0]
                if done[0] == 500 and done[1] == 0 and done[2] == 0:
                    break
        sessions = _query(clean_postgres, """
            SELECT s.status, (s.state->>'incentive')::boolean, i.status, i.idempotency_key, i.phone_enc,
                   i.amount_cents
            FROM survey_sessions s LEFT JOIN incentives i ON i.session_id = s.id""")
        budget = _query(clean_postgres, "SELECT committed_cents, budget_cents FROM incentive_budgets")
        notices = _query(clean_postgres, "SELECT count(*) FROM outbound_messages WHERE kind = 'incentive'")[0][0]
        reservations = _query(clean_postgres, "SELECT count(*) FROM incentive_reservations")[0][0]
    finally:
        crowd.close()
        reloadly.stop()

    vault = crowd.rt.vault
    assert Counter(row[0] for row in sessions) == {"completed": 500, "declined": 30, "opted_out": 30}, (
        log.read_text()[-3000:]
    )
    paid = reloadly.paid()
    succeeded = {key: vault.decrypt(phone) for _, _, record, key, phone, _ in sessions if record == "succeeded"}
    assert set(succeeded) == set(paid), "every succeeded record is one top-up with its key, and nothing else"
    for key, phone in succeeded.items():
        assert paid[key]["recipientPhone"] == phone.removeprefix("+")
    per_phone = reloadly.paid_per_phone()
    assert max(per_phone.values()) == 1, "no number is paid twice"
    for status, promised, record, *_ in sessions:
        if status != "completed":
            assert record is None, "declined and opted-out respondents earn nothing"
        elif promised:
            assert record == "succeeded", "every completion that was promised credit is paid"
        else:
            assert record in (None, "duplicate")
    assert not {p.removeprefix("+") for p in [*decliners, *leavers]} & set(per_phone)
    total = sum(cents for _, _, record, _, _, cents in sessions if record == "succeeded")
    [(committed, budget_cents)] = budget
    assert total <= budget_cents == AMOUNT * CREDITS * 100
    assert committed == total and reservations == 0, "every reservation was turned into a credit or given back"
    told_no_credit = sum(1 for status, promised, *_ in sessions if status == "completed" and not promised)
    assert len(succeeded) > CREDITS - 60 and told_no_credit > 0
    assert notices == len(succeeded), "each respondent is told once"
    told = Counter(m.to for m in providers.messages if m.text.startswith("Le enviamos su saldo de 30 MXN"))
    assert sum(told.values()) == len(succeeded) and max(told.values()) == 1
    assert reloadly.topup_calls() > len(paid), "the fake really failed some calls"


def test_a_worker_killed_during_a_top_up_leaves_nothing_submitted_forever(clean_postgres, redis_url, providers,
                                                                           tmp_path):
    """Two top-ups in flight when the worker is SIGKILLed: one reached Reloadly, the other never did."""
    reloadly = FakeReloadly(late_seconds=0.8, hang_seconds=60).start()
    env = _environment(clean_postgres, redis_url, providers.url, reloadly, tmp_path)
    log = tmp_path / "workers.log"
    crowd = Respondents(clean_postgres, redis_url)
    reloadly.fail_next("hang")
    reloadly.fail_next("stall")
    statuses = "SELECT status FROM incentives ORDER BY id"
    try:
        worker = start_worker(env, log=log)
        try:
            for phone in ("+525512345678", "+525598765432"):
                crowd.sms(phone, "hola", "si", "jalisco")
            crowd.send()
            _wait(lambda: reloadly.topup_calls() == 2, "both top-up calls")
        finally:
            stop(worker, signal.SIGKILL)
        assert [row[0] for row in _query(clean_postgres, statuses)] == ["submitted", "submitted"]
        assert len(reloadly.paid()) == 1
        from click.testing import CliRunner

        from service.cli import main

        result = CliRunner().invoke(main, ["incentives", "reconcile"], env={**env, "DATABASE_URL": clean_postgres})
        assert result.exit_code == 0, result.output
        assert "nothing to reconcile" in result.output, "a call that may still be running is not second-guessed"
        from service.schedule import LEADER_KEY

        crowd.rt.dispatcher.redis.delete(LEADER_KEY)  # the dead worker's scheduler lease, as if its 15 s had passed
        with running(start_worker(env, log=log)):
            _wait(lambda: [r[0] for r in _query(clean_postgres, statuses)] == ["succeeded", "succeeded"],
                  "the periodic reconciliation", timeout=45)
        assert sorted(reloadly.paid_per_phone().values()) == [1, 1], "each number paid once"
        assert reloadly.topup_calls() == 3, "the one that got through was looked up, the other sent again"
        assert _query(clean_postgres, "SELECT count(*) FROM outbound_messages WHERE kind = 'incentive'")[0][0] == 2
    finally:
        crowd.close()
        reloadly.stop()


def _wait(condition, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")

