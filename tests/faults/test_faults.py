"""Fault tests with real processes and throwaway servers: Redis stopped, a worker killed, PostgreSQL restarted.

Each test acknowledges nothing it has not kept (a 2xx means committed, or fsynced in the web machine's spool while
the database is down) and loses nothing it acknowledged. More database outages: test_database_outages.py.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from service.db import upgrade
from tests.faults.flood import Flood
from tests.faults.servers import ThrowawayPostgres, throwaway_postgres, throwaway_redis
from tests.processes import free_port, running, service_env, start_web, start_worker, stop, wait_healthy

pytestmark = pytest.mark.integration


def _counts(database_url: str, table: str = "inbound_messages") -> dict[str, int]:
    """Messages by status (inbound, or `table`)."""
    engine = create_engine(database_url)
    with engine.connect() as connection:
        rows = connection.execute(text(f"SELECT status, count(*) FROM {table} GROUP BY status")).all()
    engine.dispose()
    return dict(rows)


def _stored(database_url: str) -> dict[tuple[str, str], str]:
    engine = create_engine(database_url)
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT channel, provider_id, status FROM inbound_messages")).all()
    engine.dispose()
    return {(channel, provider_id): status for channel, provider_id, status in rows}


def _wait_processed(database_url: str, expected: int, timeout: float = 60.0) -> dict[str, int]:
    deadline = time.monotonic() + timeout
    counts: dict[str, int] = {}
    while time.monotonic() < deadline:
        counts = _counts(database_url)
        if counts.get("done", 0) >= expected and not counts.get("pending"):
            return counts
        time.sleep(0.3)
    return counts


def _unsent(database_url: str) -> list[tuple]:
    """A few replies not sent yet, with their attempts and last error (for a failing assertion's message)."""
    engine = create_engine(database_url)
    with engine.connect() as connection:
        rows = connection.execute(text(
            "SELECT status, attempts, error_code, error, next_attempt_at FROM outbound_messages "
            "WHERE status <> 'sent' ORDER BY id LIMIT 3"
        )).all()
    engine.dispose()
    return [tuple(row) for row in rows]


def _wait_sent(database_url: str, timeout: float = 60.0, settled: bool = False) -> dict[str, int]:
    """Wait until no reply is queued or being sent (or, `settled`, until only abandoned sends remain)."""
    deadline = time.monotonic() + timeout
    counts, previous = {}, None
    while time.monotonic() < deadline:
        counts = _counts(database_url, "outbound_messages")
        if not counts.get("queued") and (not counts.get("sending") or (settled and counts == previous)):
            return counts
        previous = counts
        time.sleep(0.5)
    return counts


def _sweep_after_stuck_sending(rt) -> int:
    """Run the sweeper as if STUCK_SENDING had passed: sends a killed worker had claimed go out again."""
    from workers import sweeper

    real_clock = rt.clock
    rt.clock = lambda: real_clock() + sweeper.STUCK_SENDING + sweeper.GRACE
    try:
        return sweeper.sweep()["released"]
    finally:
        rt.clock = real_clock


def _replies_by_address(providers) -> dict[str, int]:
    counts: dict[str, int] = {}
    for message in providers.messages:
        counts[message.to] = counts.get(message.to, 0) + 1
    return counts


@dataclass
class OnPostgres:
    """A throwaway PostgreSQL, migrated, and the environment of a Retorno on it."""

    postgres: ThrowawayPostgres
    env: dict[str, str]
    port: int
    web_url: str
    log: Path


@contextmanager
def retorno_on_throwaway_postgres(redis_url: str, providers, tmp_path: Path, **extra: str) -> Iterator[OnPostgres]:
    with throwaway_postgres() as postgres:
        upgrade(postgres.url)
        port = free_port()
        web_url = f"http://127.0.0.1:{port}"
        env = service_env(postgres.url, redis_url, providers.url, web_url, **extra)
        yield OnPostgres(postgres, env, port, web_url, tmp_path / "service.log")


def test_redis_stopped_during_load_loses_nothing(clean_postgres, providers, tmp_path):
    with throwaway_redis() as redis:
        port = free_port()
        web_url = f"http://127.0.0.1:{port}"
        env = service_env(clean_postgres, redis.url, providers.url, web_url)
        log = tmp_path / "service.log"
        with running(start_web(env, port, log=log), start_worker(env, log=log)):
            wait_healthy(web_url)
            flood = Flood(web_url, rate=40).start()
            time.sleep(2)
            redis.stop()
            down_from = len(flood.deliveries)
            time.sleep(3)
            during = flood.deliveries[down_from:]
            redis.start()
            time.sleep(2)
            flood.stop()
            acknowledged = flood.acknowledged()
            counts = _wait_processed(clean_postgres, len(acknowledged), timeout=60)
            _wait_sent(clean_postgres, timeout=60)
    assert during and all(d.status == 200 for d in during), "webhooks keep answering 200 while Redis is down"
    assert flood.statuses() == {200}, flood.statuses()
    stored = _stored(clean_postgres)
    assert all(stored.get((d.channel, d.provider_id)) == "done" for d in acknowledged), counts
    replies = _replies_by_address(providers)
    assert all(replies.get(d.address) == 1 for d in acknowledged), "each respondent got exactly one reply"


def test_worker_killed_mid_batch_reprocesses_without_loss_or_double(clean_postgres, redis_url, providers, tmp_path):
    from service import inbox
    from service import runtime as runtimes
    from tests.support import make_settings

    respondents = 1500
    settings = make_settings(clean_postgres, providers.url, tmp_path, redis_url=redis_url)
    rt = runtimes.install(runtimes.build(settings))
    from bots.base import Incoming

    for start in range(0, respondents, 250):
        batch = []
        for i in range(start, start + 250):
            address = f"+5255{30000000 + i:08d}"
            batch.append(Incoming("sms", f"SMA{i:030d}", address, "hola"))
            batch.append(Incoming("sms", f"SMB{i:030d}", address, "si"))
        inbox.store(rt, batch)
    env = service_env(clean_postgres, redis_url, providers.url, "http://127.0.0.1:9")
    log = tmp_path / "worker.log"
    victim = start_worker(env, log=log)
    deadline = time.monotonic() + 60
    while _counts(clean_postgres).get("done", 0) < 400 and time.monotonic() < deadline:
        time.sleep(0.02)
    stop(victim, sig=signal.SIGKILL)
    killed_at = _counts(clean_postgres)
    assert killed_at.get("pending", 0) > 0, f"the worker finished before it was killed: {killed_at}"
    with running(start_worker(env, log=log)):
        counts = _wait_processed(clean_postgres, 2 * respondents, timeout=90)
        _wait_sent(clean_postgres, timeout=60, settled=True)
        abandoned = _sweep_after_stuck_sending(rt)
        outbound = _wait_sent(clean_postgres, timeout=60)
        unsent = _unsent(clean_postgres)
    rt.engine.dispose()
    assert counts == {"done": 2 * respondents}, counts
    assert set(outbound) == {"sent"}, (
        f"unsent replies ({abandoned} released from the killed worker): {outbound} {unsent}"
    )
    engine = create_engine(clean_postgres)
    with engine.connect() as connection:
        answers = connection.execute(text(
            "SELECT question_id, value, count(*) FROM answers GROUP BY question_id, value"
        )).all()
        sessions = connection.execute(text("SELECT status, question, count(*) FROM survey_sessions "
                                           "GROUP BY status, question")).all()
    engine.dispose()
    assert [(q, v, n) for q, v, n in answers] == [("consent", "yes", respondents)]
    assert sessions == [("in_progress", "age_band", respondents)]
    replies = _replies_by_address(providers)
    assert len(replies) == respondents
    assert all(n >= 2 for n in replies.values()), "every processed message was answered"


def test_postgres_restarted_during_load_acknowledges_only_what_it_kept(redis_url, providers, tmp_path):
    """A spool of 20 kB: the outage's first webhooks are spooled (200), the rest refused (503) once it is full."""
    with retorno_on_throwaway_postgres(redis_url, providers, tmp_path, RETORNO_SPOOL_MAX_MB="0.02") as on:
        with running(start_web(on.env, on.port, log=on.log), start_worker(on.env, log=on.log)):
            wait_healthy(on.web_url)
            flood = Flood(on.web_url, rate=40).start()
            time.sleep(2)
            on.postgres.stop("fast")
            down_from = len(flood.deliveries)
            time.sleep(3)
            during = flood.deliveries[down_from:]
            on.postgres.start()
            time.sleep(3)
            flood.stop()
            acknowledged = flood.acknowledged()
            counts = _wait_processed(on.postgres.url, len(acknowledged), timeout=60)
            stored = _stored(on.postgres.url)
    statuses = flood.statuses()
    assert {d.status for d in during} == {200, 503}, f"spooled, then refused once the spool is full: {statuses}"
    assert statuses <= {200, 503}, f"only 200 (kept) or 503 (not kept): {statuses}"
    missing = [d for d in acknowledged if stored.get((d.channel, d.provider_id)) != "done"]
    assert not missing, f"{len(missing)} acknowledged messages not processed; counts={counts}"
