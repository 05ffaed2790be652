"""Incentives through the real webhooks, worker code and database (SQLite and PostgreSQL), with fake providers."""

from __future__ import annotations

import csv
import io
import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner

from service import runtime as runtimes
from tests.fake_reloadly import FakeReloadly
from tests.support import Harness

PHONE, OTHER, THIRD = "+525512345678", "+525598765432", "+523312345678"
FOURTH = "+528112345678"
SURVEY = """
id: corta
version: 1
title: {es: Corta, en: Short}
languages: [es, en]
default_language: es
start_keywords: [CORTA]
incentive: {amount: 30, currency: MXN, budget: 60}
consent:
  text: {es: Encuesta corta con $30 de saldo. ¿Acepta?, en: Short survey with 30 pesos credit. Agree?}
questions:
  - id: state
    type: region
    text: {es: ¿En qué estado vive?, en: Which state do you live in?}
"""


@pytest.fixture
def surveys_dir(tmp_path):
    folder = tmp_path / "surveys"
    folder.mkdir()
    (folder / "corta.yaml").write_text(SURVEY, encoding="utf-8")
    return folder


@pytest.fixture
def reloadly():
    fake = FakeReloadly(late_seconds=0.8).start()
    yield fake
    fake.stop()


def _harness(url, providers, tmp_path, surveys_dir, **overrides) -> Harness:
    return Harness(url, providers, tmp_path, surveys_dir=surveys_dir, default_survey="corta", **overrides)


@pytest.fixture
def h(database_url, providers, tmp_path, surveys_dir):
    harness = _harness(database_url, providers, tmp_path, surveys_dir)
    yield harness
    harness.close()


@pytest.fixture
def paying(sqlite_url, providers, tmp_path, surveys_dir, reloadly):
    """Retorno paying through the fake Reloadly (timeouts after 0.5 s), on SQLite."""
    harness = _harness(sqlite_url, providers, tmp_path, surveys_dir, incentive_retry_seconds=30,
                       **reloadly.settings(timeout=0.5))
    harness.reloadly = reloadly
    yield harness
    harness.close()


def complete_sms(h: Harness, phone: str) -> None:
    for text in ("hola", "si", "jalisco"):
        assert h.sms(phone, text).status_code == 200
        h.settle()


def incentives(h: Harness) -> list[dict]:
    response = h.api("/api/v1/incentives?survey=corta")
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def committed(h: Harness) -> int:
    return h.count("SELECT coalesce(sum(committed_cents), 0) FROM incentive_budgets")


def tick(h: Harness) -> dict:
    from workers.incentives import tick as run

    result = run()
    h.settle()
    return result


# -- the ledger (default provider) ----------------------------------------------------------------------------


def test_a_completed_survey_earns_one_pending_credit(h):
    complete_sms(h, PHONE)
    [record] = incentives(h)
    assert set(record) == {"respondent_id", "survey_id", "wave", "amount", "currency", "status", "provider",
                           "attempts", "created_at", "updated_at"}
    assert record | {"respondent_id": None, "created_at": None, "updated_at": None} == {
        "respondent_id": None, "survey_id": "corta", "wave": 1, "amount": 30, "currency": "MXN",
        "status": "pending", "provider": "ledger", "attempts": 0, "created_at": None, "updated_at": None}
    assert "5512345678" not in json.dumps(record)
    assert "30 MXN" in h.texts_to(PHONE)[-1]
    assert committed(h) == 3000
    h.sms(PHONE, "hola")
    h.settle()
    assert len(incentives(h)) == 1
    assert h.count("SELECT count(*) FROM incentive_reservations") == 0


def test_declined_and_opted_out_respondents_earn_nothing_and_give_the_budget_back(h):
    for text in ("hola", "no"):
        h.sms(PHONE, text)
        h.settle()
    for text in ("hola", "si"):
        h.sms(OTHER, text)
        h.settle()
    assert committed(h) == 3000, "the consent holds the credit"
    h.sms(OTHER, "STOP")
    h.settle()
    assert committed(h) == 0
    assert incentives(h) == []


def test_the_budget_is_never_promised_twice(h):
    for phone in (PHONE, OTHER):
        for text in ("hola", "si"):
            h.sms(phone, text)
            h.settle()
    h.sms(THIRD, "hola")
    h.settle()
    assert h.texts_to(THIRD)[0].startswith("Aviso: por ahora ya no hay saldo")
    for text in ("si", "jalisco"):
        h.sms(THIRD, text)
        h.settle()
    assert h.texts_to(THIRD)[-1] == "¡Gracias por completar la encuesta!"
    h.sms(PHONE, "jalisco")
    h.settle()
    h.sms(OTHER, "STOP")  # "baja" on the region question asks which Baja
    h.settle()
    fourth = "+528112345678"
    h.sms(fourth, "hola")
    h.settle()
    assert not h.texts_to(fourth)[0].startswith("Aviso"), "the opt-out gave its credit back"
    assert [r["status"] for r in incentives(h)] == ["pending"]
    assert committed(h) == 3000


def test_a_credit_held_for_someone_who_went_silent_goes_back_and_is_held_again_when_they_return(h):
    for text in ("hola", "si"):
        h.sms(PHONE, text)
        h.settle()
    h.clock.advance(days=29)
    assert tick(h)["released"] == 0
    h.clock.advance(days=2)
    assert tick(h)["released"] == 1 and committed(h) == 0
    h.sms(PHONE, "jalisco")
    h.settle()
    assert "30 MXN" in h.texts_to(PHONE)[-1]
    assert [r["status"] for r in incentives(h)] == ["pending"] and committed(h) == 3000


def test_consents_in_one_batch_beyond_the_budget_are_held_one_by_one(h):
    """A batch adds up its holds and applies them at its end; past the budget it runs again, one hold at a time."""
    for phone in (PHONE, OTHER, THIRD):
        h.sms(phone, "hola")
    h.settle()
    for phone in (PHONE, OTHER, THIRD):
        h.sms(phone, "si")
    h.settle()
    last = {phone: h.texts_to(phone)[-1] for phone in (PHONE, OTHER, THIRD)}
    assert [text.startswith("Aviso: por ahora ya no hay saldo") for text in last.values()] == [False, False, True]
    assert all("¿En qué estado vive?" in text for text in last.values())
    assert committed(h) == 6000
    assert h.count("SELECT count(*) FROM incentive_reservations") == 2


def test_a_batch_holds_its_consents_together_and_counts_a_session_already_held_once(h):
    """Consents of sessions written earlier are inserted together at the batch's end; one that already holds a
    credit, or has earned its record, adds nothing to the wave's counter."""
    from sqlalchemy import select

    from service.incentives import budget
    from service.models import SurveySession

    h.sms(PHONE, "hola")
    h.sms(OTHER, "hola")
    h.settle()
    definition = h.rt.catalog.current("corta")
    for _ in range(2):
        with h.rt.sessions() as session, session.begin():
            tally = budget.Tally(session, deferred=True)
            for row in session.scalars(select(SurveySession).order_by(SurveySession.id)).all():
                assert budget.reserve(session, row, definition, tally)
            assert tally.settle()
    assert committed(h) == 6000
    assert h.count("SELECT count(*) FROM incentive_reservations") == 2


def test_near_the_end_of_a_budget_a_batch_takes_the_waves_counter_before_promising(h):
    """With few credits left, concurrent batches promise one after another (none runs again for another's holds)."""
    if h.rt.engine.dialect.name != "postgresql":
        pytest.skip("row locks are PostgreSQL's; SQLite runs one writer at a time")
    import psycopg

    from service.incentives import budget

    h.sms(PHONE, "hola")
    h.sms(PHONE, "si")
    h.settle()
    definition = h.rt.catalog.current("corta")
    with h.rt.sessions() as session, session.begin():
        assert budget.Tally(session, deferred=True).room(definition, 1)
        with psycopg.connect(h.rt.settings.database_url.replace("+psycopg", "")) as other:
            with pytest.raises(psycopg.errors.LockNotAvailable):
                other.execute("SELECT 1 FROM incentive_budgets WHERE survey_id = 'corta' FOR UPDATE NOWAIT")


def test_once_a_budget_is_spent_batches_read_its_counter_without_waiting_for_one_another(h):
    """Nothing can be promised from a spent wave: its counter is read, not locked, so batches do not queue on it."""
    if h.rt.engine.dialect.name != "postgresql":
        pytest.skip("row locks are PostgreSQL's; SQLite runs one writer at a time")
    import psycopg

    from service.incentives import budget

    for phone in (PHONE, OTHER):
        for text in ("hola", "si"):
            h.sms(phone, text)
            h.settle()
    assert committed(h) == 6000
    definition = h.rt.catalog.current("corta")
    with h.rt.sessions() as session, session.begin():
        assert not budget.Tally(session, deferred=True).room(definition, 1)
        with psycopg.connect(h.rt.settings.database_url.replace("+psycopg", "")) as other:
            other.execute("SELECT 1 FROM incentive_budgets WHERE survey_id = 'corta' FOR UPDATE NOWAIT")


def test_whole_conversations_in_one_batch_hold_earn_and_give_back_like_separate_ones(h):
    """A backlog: new respondents consent, complete or stop within one batch (their sessions and holds are written
    together at its end); the budget still counts each credit once and never passes 2 credits."""
    for text in ("hola", "si", "STOP"):
        h.sms(FOURTH, text)
    for phone in (PHONE, OTHER, THIRD):
        for text in ("hola", "si", "jalisco"):
            h.sms(phone, text)
    h.settle()
    records = incentives(h)
    assert len(records) == 2 and {r["status"] for r in records} == {"pending"}
    assert committed(h) == 6000
    assert h.count("SELECT count(*) FROM incentive_reservations") == 0
    assert any(text.startswith("Aviso: por ahora ya no hay saldo") for text in h.texts_to(THIRD))
    assert h.count("SELECT count(*) FROM survey_sessions WHERE status = 'completed'") == 3


def test_a_telegram_respondent_shares_the_number_to_pay(h):
    chat = 7001
    for text in ("hola", "si", "jalisco"):
        h.telegram_text(chat, text)
        h.settle()
    ask = h.providers.requests[-1][1]
    assert '"request_contact": true' in ask and "Compartir mi n" in ask
    assert [r["status"] for r in incentives(h)] == ["awaiting_phone"]
    h.telegram(_contact_update(9001, chat, "5215512345678"))
    h.settle()
    assert h.texts_to(str(chat))[-1] == "Gracias. Enviaremos su saldo de 30 MXN al numero que termina en 5678."
    assert '"remove_keyboard": true' in h.providers.requests[-1][1]
    assert [r["status"] for r in incentives(h)] == ["pending"]
    [record] = h.responses("corta")
    assert record["status"] == "completed"
    with h.rt.engine.connect() as connection:
        from sqlalchemy import text

        dump = str(connection.execute(text("SELECT * FROM incentives")).all())
    assert "5512345678" not in dump


def test_one_number_is_paid_once_across_sms_and_telegram(h):
    complete_sms(h, PHONE)
    chat = 7002
    for text in ("hola", "si", "jalisco", "55 1234 5678"):
        h.telegram_text(chat, text)
        h.settle()
    assert h.texts_to(str(chat))[-1].startswith("A ese numero ya le enviamos el saldo")
    statuses = sorted(r["status"] for r in incentives(h))
    assert statuses == ["duplicate", "pending"]
    assert committed(h) == 3000
    whatsapp = "whatsapp:" + PHONE
    for text in ("hola", "si", "jalisco"):
        h.sms(whatsapp, text)
        h.settle()
    assert h.texts_to(PHONE)[-1].startswith("¡Gracias por completar la encuesta! Lo sentimos")
    assert len(incentives(h)) == 2


def test_one_number_completing_twice_in_one_batch_is_paid_once(h):
    """SMS and WhatsApp of one number complete in the same batch: its records are written together, the second is
    refused, and the batch runs again one record at a time: one credit, and the second respondent is told."""
    for sender in (PHONE, "whatsapp:" + PHONE):
        for text in ("hola", "si", "jalisco"):
            h.sms(sender, text)
    h.settle()
    assert len(incentives(h)) == 1
    assert committed(h) == 3000
    endings = sorted(t.split("!")[1].split()[0] for t in h.texts_to(PHONE) if t.startswith("¡Gracias por completar"))
    assert endings == ["Lo", "Pronto"]  # "Lo sentimos: ..." and "Pronto le enviaremos su saldo ..."
    assert h.count("SELECT count(*) FROM survey_sessions WHERE status = 'completed'") == 2


def test_a_telegram_respondent_completes_and_shares_the_number_in_one_batch(h):
    """The record of a completion waits for the end of the batch, unless the number to pay comes in the same one."""
    chat = 7003
    for text in ("hola", "si", "jalisco"):
        h.telegram_text(chat, text)
    h.telegram(_contact_update(9003, chat, "5215512345678"))
    h.settle()
    assert [r["status"] for r in incentives(h)] == ["pending"]
    assert h.texts_to(str(chat))[-1] == "Gracias. Enviaremos su saldo de 30 MXN al numero que termina en 5678."
    assert committed(h) == 3000


# -- paying through Reloadly ---------------------------------------------------------------------------------


def test_a_credit_is_topped_up_and_the_respondent_told(paying):
    complete_sms(paying, PHONE)
    [record] = incentives(paying)
    assert (record["status"], record["provider"], record["attempts"]) == ("succeeded", "reloadly", 1)
    [topup] = paying.reloadly.paid().values()
    assert topup["recipientPhone"] == "525512345678" and topup["countryCode"] == "MX"
    assert topup["requestedAmount"] == 30 and topup["useLocalAmount"] is True
    assert paying.texts_to(PHONE)[-1] == "Le enviamos su saldo de 30 MXN. ¡Gracias por participar!"


@pytest.mark.parametrize("mode", ["timeout", "error_after", "processing"])
def test_an_unanswered_top_up_is_settled_by_asking_never_by_paying_again(paying, mode):
    paying.reloadly.fail_next(mode)
    complete_sms(paying, PHONE)
    assert [r["status"] for r in incentives(paying)] == ["submitted"]
    assert tick(paying)["settle"] == 0, "not before the time to check"
    paying.clock.advance(seconds=31)
    assert tick(paying)["settle"] == 1
    assert [r["status"] for r in incentives(paying)] == ["succeeded"]
    assert paying.reloadly.topup_calls() == 1 and len(paying.reloadly.paid()) == 1
    assert paying.texts_to(PHONE)[-1].startswith("Le enviamos su saldo")


@pytest.mark.parametrize("mode", ["lost", "error"])
def test_a_top_up_that_never_happened_is_sent_again_with_the_same_reference(paying, mode):
    paying.reloadly.fail_next(mode)
    complete_sms(paying, PHONE)
    paying.clock.advance(seconds=31)
    tick(paying)
    assert [r["status"] for r in incentives(paying)] == ["failed"], "the provider has no such top-up"
    tick(paying)
    [record] = incentives(paying)
    assert (record["status"], record["attempts"]) == ("succeeded", 2)
    posts = [body for method, path, body in paying.reloadly.requests if path == "/topups"]
    assert len(posts) == 2 and posts[0]["customIdentifier"] == posts[1]["customIdentifier"]


def test_a_top_up_still_in_flight_when_looked_up_is_refused_as_a_duplicate_and_paid_once(paying):
    paying.reloadly.fail_next("slow")
    complete_sms(paying, PHONE)
    paying.clock.advance(seconds=31)
    tick(paying)
    assert [r["status"] for r in incentives(paying)] == ["failed"], "looked up before it showed up"
    time.sleep(paying.reloadly.appear_seconds + 0.2)
    tick(paying)
    assert paying.reloadly.refused_duplicates == 1, "the retry carried the same reference"
    assert [r["status"] for r in incentives(paying)] == ["submitted"]
    paying.clock.advance(seconds=61)
    tick(paying)
    [record] = incentives(paying)
    assert (record["status"], record["attempts"]) == ("succeeded", 2)
    assert len(paying.reloadly.paid()) == 1
    assert sum(t.startswith("Le enviamos") for t in paying.texts_to(PHONE)) == 1


def test_a_refunded_top_up_is_tried_again_under_a_new_reference(paying):
    paying.reloadly.fail_next("refunded")
    complete_sms(paying, PHONE)
    assert [r["status"] for r in incentives(paying)] == ["failed"]
    paying.clock.advance(seconds=30)
    tick(paying)
    assert [r["status"] for r in incentives(paying)] == ["succeeded"]
    keys = [body["customIdentifier"] for method, path, body in paying.reloadly.requests if path == "/topups"]
    assert len(keys) == 2 and keys[1] == keys[0] + "-2"
    assert list(paying.reloadly.paid()) == [keys[1]]
    assert paying.count("SELECT count(*) FROM incentives WHERE idempotency_key = :k", k=keys[1]) == 1


def test_insufficient_balance_is_retried_with_backoff_then_left_for_staff(paying):
    paying.reloadly.fail_next("insufficient", times=6)
    complete_sms(paying, PHONE)
    delays = []
    for _ in range(5):
        [record] = incentives(paying)
        assert record["status"] == "failed"
        waited = 0
        while tick(paying)["issue"] == 0:
            paying.clock.advance(seconds=30)
            waited += 30
        delays.append(waited)
    assert delays == [30, 60, 120, 240, 480]
    [record] = incentives(paying)
    assert (record["status"], record["attempts"]) == ("failed", 6)
    paying.clock.advance(hours=5)
    assert tick(paying)["issue"] == 0, "after the last attempt the record waits for staff"
    assert paying.reloadly.paid() == {}
    result = _cli(paying, "incentives", "status")
    assert "left for staff: INSUFFICIENT_BALANCE" in result.output
    result = _cli(paying, "incentives", "retry", "--all-failed")
    assert "1 incentive will be tried again" in result.output
    paying.clock.now = max(paying.clock.now, datetime.now(UTC))  # the CLI ran on the real clock
    tick(paying)
    assert [r["status"] for r in incentives(paying)] == ["succeeded"]


def test_a_job_run_twice_pays_once(paying):
    from workers.incentives import issue

    paying.reloadly.fail_next("hang")
    paying.reloadly.hang_seconds = 0.3
    paying.sms(PHONE, "hola")
    paying.sms(PHONE, "si")
    paying.sms(PHONE, "jalisco")
    paying.settle()
    incentive_id = paying.count("SELECT id FROM incentives")
    for _ in range(3):
        assert issue(incentive_id) == {"skipped": 1}
    paying.rt.dispatcher.enqueue("workers.incentives.issue", incentive_id)
    paying.rt.dispatcher.enqueue("workers.incentives.settle", incentive_id)
    paying.settle()
    assert paying.reloadly.topup_calls() == 1
    assert len(paying.reloadly.paid()) == 1
    assert sum(t.startswith("Le enviamos") for t in paying.texts_to(PHONE)) == 1


def test_a_number_reloadly_cannot_top_up_is_left_for_staff_at_once(paying):
    complete_sms(paying, "+14155552671")
    [record] = incentives(paying)
    assert (record["status"], record["attempts"]) == ("failed", 1)
    result = _cli(paying, "incentives", "status", "--json")
    [failure] = json.loads(result.output)["failed"]
    assert failure["error"].startswith("CURRENCY_MISMATCH") and failure["retrying"] is False


def test_an_expired_token_is_renewed(paying):
    complete_sms(paying, PHONE)
    paying.reloadly.expire_tokens()
    complete_sms(paying, OTHER)
    assert [r["status"] for r in incentives(paying)] == ["succeeded", "succeeded"]


# -- staff: CLI and API -----------------------------------------------------------------------------------------


def _cli(h: Harness, *args: str):
    env = {"DATABASE_URL": h.settings.database_url, "RETORNO_SECRET_KEY": h.settings.secret_key,
           "RETORNO_SURVEYS_DIR": str(h.settings.surveys_dir), "RETORNO_DEFAULT_SURVEY": "corta", "REDIS_URL": ""}
    if h.settings.incentive_provider == "reloadly":
        env.update({"RETORNO_INCENTIVE_PROVIDER": "reloadly", "RELOADLY_CLIENT_ID": h.settings.reloadly_client_id,
                    "RELOADLY_CLIENT_SECRET": h.settings.reloadly_client_secret,
                    "RELOADLY_API_BASE": h.settings.reloadly_api_base,
                    "RELOADLY_AUTH_URL": h.settings.reloadly_auth_url, "RELOADLY_TIMEOUT": "0.5"})
    try:
        result = CliRunner().invoke(__import__("service.cli", fromlist=["main"]).main, list(args), env=env)
    finally:
        runtimes.install(h.rt)
    return result


def test_staff_export_what_is_owed_and_mark_it_paid(sqlite_url, providers, tmp_path, surveys_dir):
    h = _harness(sqlite_url, providers, tmp_path, surveys_dir)
    try:
        complete_sms(h, PHONE)
        complete_sms(h, OTHER)
        result = _cli(h, "incentives", "export")
        assert result.exit_code == 0, result.output
        rows = list(csv.DictReader(io.StringIO(result.stdout)))
        assert [r["phone"] for r in rows] == ["'" + PHONE, "'" + OTHER]  # inert in a spreadsheet
        assert rows[0]["amount"] == "30" and rows[0]["status"] == "pending" and rows[0]["reference"].startswith("rt-")
        sheet = tmp_path / "paid.csv"
        sheet.write_text("incentive_id,reference\n" + rows[0]["incentive_id"] + ",OXXO-1\n999,\nabc,\n")
        result = _cli(h, "incentives", "mark-paid", str(sheet))
        assert result.exit_code == 1
        assert "1 paid" in result.stdout
        assert "line 3: unknown incentive" in result.stderr and "line 4: incentive_id is missing" in result.stderr
        result = _cli(h, "incentives", "mark-paid", "--id", rows[0]["incentive_id"])
        assert "1 already paid" in result.output
        assert [r["status"] for r in incentives(h)] == ["succeeded", "pending"]
        h.clock.now = datetime.now(UTC) + timedelta(seconds=10)  # the CLI ran on the real clock
        h.sweep()
        assert h.texts_to(PHONE)[-1] == "Le enviamos su saldo de 30 MXN. ¡Gracias por participar!"
        assert not h.texts_to(OTHER)[-1].startswith("Le enviamos")
        result = _cli(h, "incentives", "status")
        assert "corta wave 1: 60 of 60 MXN" in result.output
        assert "succeeded" in result.output and "pending" in result.output
        result = _cli(h, "incentives", "reconcile")
        assert "1 incentive waits to be paid by hand" in result.output
    finally:
        h.close()


def test_only_staff_see_incentives(sqlite_url, providers, tmp_path, surveys_dir):
    h = _harness(sqlite_url, providers, tmp_path, surveys_dir)
    try:
        assert h.client.get("/api/v1/incentives").status_code == 401
        assert h.api("/api/v1/incentives?survey=corta", token=h.analyst_token).status_code == 403
        assert h.api("/api/v1/incentives?survey=nope").status_code == 404
        assert h.api("/api/v1/incentives?survey=corta&wave=x").status_code == 400
        assert h.api("/api/v1/incentives").get_json() == []
    finally:
        h.close()


def _contact_update(update_id: int, chat_id: int, phone: str) -> dict:
    user = {"id": chat_id, "is_bot": False, "first_name": "Ana", "language_code": "es"}
    return {"update_id": update_id, "message": {
        "message_id": update_id, "from": user, "chat": {"id": chat_id, "first_name": "Ana", "type": "private"},
        "date": 1772474400, "contact": {"phone_number": phone, "first_name": "Ana", "user_id": chat_id}}}
