"""200 respondents (100 SMS, 100 Telegram) through real webhooks, PostgreSQL, Redis and 2 worker processes.

The providers are fake HTTP servers on loopback; every respondent answers each question with messy text (or a
button on Telegram), 10% of deliveries are duplicated, and some respondents send STOP mid-survey.
"""

from __future__ import annotations

import time

import pytest
from sqlalchemy import create_engine, text

from surveys.loader import bundled_files, load_file
from tests.crowd import Crowd
from tests.processes import free_port, running, service_env, start_web, start_worker, wait_healthy

pytestmark = pytest.mark.integration

SMS, TELEGRAM, STOPPERS = 100, 100, 10
DEADLINE_SECONDS = 240


def _export(database_url: str) -> dict[str, dict]:
    """What Retorno stored, per respondent address (decrypted the way the API does)."""
    from service.privacy import Vault

    vault = Vault("retorno-test-secret-key-0123456789")
    engine = create_engine(database_url)
    with engine.connect() as connection:
        sessions = connection.execute(text(
            "SELECT s.id, s.status, c.address_enc FROM survey_sessions s JOIN contacts c ON c.id = s.contact_id"
        )).all()
        answers = connection.execute(text("SELECT session_id, question_id, value FROM answers")).all()
    engine.dispose()
    by_session: dict[int, dict] = {}
    for session_id, question_id, value in answers:
        by_session.setdefault(session_id, {})[question_id] = value
    return {
        vault.decrypt(address): {"status": status, "answers": by_session.get(session_id, {})}
        for session_id, status, address in sessions
    }


def _diagnosis(database_url: str, redis_url: str) -> str:
    """Counts by status and the queue's state, to explain a stall."""
    from redis import Redis

    engine = create_engine(database_url)
    with engine.connect() as connection:
        inbound = connection.execute(text("SELECT status, count(*) FROM inbound_messages GROUP BY status")).all()
        outbound = connection.execute(text("SELECT status, count(*) FROM outbound_messages GROUP BY status")).all()
        errors = connection.execute(text("SELECT DISTINCT error FROM inbound_messages WHERE error IS NOT NULL")).all()
    engine.dispose()
    redis = Redis.from_url(redis_url)
    keys = {k.decode(): redis.type(k).decode() for k in redis.keys("retorno:*")}
    failed = []
    for queue in ("retorno", "retorno-send"):
        for job_id in redis.zrange(f"rq:failed:{queue}", 0, 3):
            job = redis.hgetall(f"rq:job:{job_id.decode()}")
            failed.append((job.get(b"description"), (job.get(b"exc_info") or b"")[-600:]))
    return f"inbound={inbound} outbound={outbound} errors={errors} redis={keys} failed_jobs={failed}"


def test_two_hundred_respondents_end_to_end(clean_postgres, redis_url, providers, tmp_path):
    port = free_port()
    web_url = f"http://127.0.0.1:{port}"
    env = service_env(clean_postgres.replace("postgresql+psycopg", "postgresql"), redis_url, providers.url, web_url)
    logs = tmp_path / "service.log"
    definition = load_file(bundled_files()[0])
    crowd = Crowd(definition, web_url, web_url, seed=2026)
    for i in range(SMS):
        crowd.add("sms", f"+5255{10000000 + i:08d}", stop_at=3 + i if i < STOPPERS // 2 else None)
    for i in range(TELEGRAM):
        crowd.add("telegram", str(700000 + i), stop_at=4 + i if i < STOPPERS // 2 else None)
    providers.on_message = crowd.deliver

    with running(start_web(env, port, log=logs), start_worker(env, log=logs), start_worker(env, log=logs)):
        wait_healthy(web_url)
        started = time.monotonic()
        crowd.start()
        while crowd.pending() and time.monotonic() - started < DEADLINE_SECONDS and not crowd.errors:
            time.sleep(0.5)
        time.sleep(2)
        crowd.stop()
        stored = _export(clean_postgres)
        state = _diagnosis(clean_postgres, redis_url)

    assert not crowd.errors, crowd.errors[:10]
    unfinished = crowd.pending()
    assert not unfinished, (
        f"{len(unfinished)} respondents unfinished, e.g. {unfinished[0]}\n{state}\n" + logs.read_text()[-3000:]
    )
    assert crowd.duplicates > 0
    for address, respondent in crowd.respondents.items():
        record = stored[address]
        assert record["answers"] == respondent.expected, address
        if respondent.stop_at is not None:
            assert record["status"] == "opted_out", address
            assert respondent.after_stop == 0, f"{address} got {respondent.after_stop} messages after STOP"
        else:
            assert record["status"] == "completed", address
    engine = create_engine(clean_postgres)
    with engine.connect() as connection:
        inbound = connection.execute(text("SELECT count(*) FROM inbound_messages")).scalar_one()
        failed = connection.execute(text("SELECT count(*) FROM inbound_messages WHERE status <> 'done' "
                                         "AND status <> 'ignored'")).scalar_one()
    engine.dispose()
    assert inbound == crowd.posted, "every distinct delivery is stored exactly once"
    assert failed == 0
    for address, respondent in crowd.respondents.items():
        expected = 1 + len(respondent.expected) + (1 if respondent.stop_at is not None else 0)
        assert len(respondent.received) == expected, f"{address} got a message twice or missed one"
