"""A 2xx means kept durably: with Redis unreachable webhooks still store and answer; with the database down they are
spooled on this machine's disk and answered 200, and replayed when it returns; 503 only when the spool cannot take
them (over its limit, the disk full)."""

from __future__ import annotations

import errno
import os
import sqlite3
import stat
import time

from sqlalchemy import text

from service import runtime as runtimes
from service import spool as spools
from service.app import create_app
from service.inbox import GroupCommitter
from service.queue import EmbeddedDispatcher, RedisDispatcher
from tests.processes import free_port
from tests.support import (
    PUBLIC_URL,
    TELEGRAM_SECRET,
    Harness,
    make_settings,
    telegram_message,
    twilio_form,
    twilio_signature,
)

PHONE = "+525512345678"


def test_redis_down_still_stores_and_answers_then_the_sweeper_catches_up(sqlite_url, providers, tmp_path):
    harness = Harness(sqlite_url, providers, tmp_path)
    embedded = harness.rt.dispatcher
    harness.rt.dispatcher = RedisDispatcher(f"redis://127.0.0.1:{free_port()}/0")
    try:
        response = harness.sms(PHONE, "Hola")
        assert response.status_code == 200
        assert harness.count("SELECT count(*) FROM inbound_messages WHERE status = 'pending'") == 1
        assert harness.rt.dispatcher.failures == 1
        health = harness.client.get("/healthz")
        assert health.status_code == 503 and health.get_json()["queue"] == "unavailable"
        harness.rt.dispatcher = embedded
        harness.clock.advance(seconds=10)
        assert harness.sweep()["inbound"] == 1
        assert len(harness.texts_to(PHONE)) == 1
    finally:
        harness.close()


def _down(providers, tmp_path):
    """A Retorno whose PostgreSQL refuses connections (nothing listens on its port)."""
    settings = make_settings(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/none", providers.url, tmp_path)
    runtime = runtimes.build(settings, dispatcher=EmbeddedDispatcher())
    return runtime, create_app(runtime=runtime).test_client()


def _sms(client, sender: str, text: str, sid: str):
    form = twilio_form(sender, text, sid)
    path = "/webhooks/twilio/sms"
    return client.post(path, data=form, headers={"X-Twilio-Signature": twilio_signature(PUBLIC_URL + path, form)})


def _telegram(client, chat_id: int, text: str, update_id: int):
    return client.post("/webhooks/telegram", json=telegram_message(update_id, chat_id, text),
                       headers={"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET})


def _wait_empty(spool, timeout: float = 20.0) -> dict:
    deadline = time.monotonic() + timeout
    while ((stats := spool.stats())["files"] or spool.replayer) and time.monotonic() < deadline:
        time.sleep(0.05)
    return stats


def test_database_down_spools_webhooks_answers_200_and_replays_them_when_it_returns(clean_postgres, providers,
                                                                                  tmp_path):
    runtime, client = _down(providers, tmp_path)
    try:
        sms = _sms(client, PHONE, "hola", "SM" + "9" * 32)
        telegram = _telegram(client, 5, "hola", 5)
        again = _sms(client, PHONE, "hola", "SM" + "9" * 32)  # Twilio delivering it twice
        health = client.get("/healthz")
        webhooks_health = client.get("/healthz/webhooks")
        metrics = client.get("/metrics").get_data(as_text=True)
    finally:
        spools.of(runtime).stop()
        runtime.engine.dispose()
    assert (sms.status_code, telegram.status_code, again.status_code) == (200, 200, 200)
    assert health.status_code == 503, "CONTRACT.md: 503 unless the database and the queue answer"
    assert webhooks_health.status_code == 200, "degraded, not down: the load balancer must keep sending webhooks here"
    assert webhooks_health.get_json()["status"] == "degraded"
    body = health.get_json()
    assert (body["status"], body["database"]) == ("degraded", "unavailable"), "webhooks are still kept"
    assert body["spool"]["files"] == 1 and body["spool"]["appended"] == 3 and body["spool"]["bytes"] > 0
    assert "retorno_spool_appended_total 3" in metrics and "retorno_database_up 0" in metrics
    folder = tmp_path / "spool"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    files = list(folder.glob("*.spool"))
    assert [stat.S_IMODE(f.stat().st_mode) for f in files] == [0o600]
    spooled = files[0].read_bytes()
    assert spooled.count(b"\n") == 3 and b"SM" + b"9" * 32 in spooled
    assert b"5512345678" not in spooled, "the spool keeps the sealed row, never the phone number"

    # PostgreSQL is back: the next web process on this machine replays what was spooled, once
    harness = Harness(clean_postgres, providers, tmp_path)
    try:
        stats = _wait_empty(spools.of(harness.rt))
        harness.settle()
        stored = harness.count("SELECT count(*) FROM inbound_messages")
        replies = harness.texts_to(PHONE), [m for m in providers.messages if m.to == "5"]
    finally:
        harness.close()
    assert stats["files"] == 0 and stats["replayed"] == 3
    assert not list(folder.glob("*.spool"))
    assert stored == 2, "the duplicate delivery is stored once"
    assert len(replies[0]) == 1 and len(replies[1]) == 1


def test_embedded_sqlite_locked_past_the_commit_timeout_spools_and_stores_each_message_once(
        sqlite_url, providers, tmp_path, monkeypatch):
    harness = Harness(sqlite_url, providers, tmp_path)
    try:
        harness.sms(PHONE, "Hola")
        harness.settle()
        with harness.rt.engine.connect() as connection:
            reply_id = connection.execute(text("SELECT provider_id FROM outbound_messages")).scalar_one()
        monkeypatch.setattr(GroupCommitter, "TIMEOUT", 0.5)
        writer = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"), timeout=0, isolation_level=None)
        writer.execute("BEGIN IMMEDIATE")  # another writer holds SQLite's lock longer than a webhook may wait
        started = time.monotonic()
        answer = harness.sms(PHONE, "si")
        waited = time.monotonic() - started
        delivered = harness.status(reply_id, "delivered")
        spool = spools.of(harness.rt)
        appended = spool.appended
        writer.rollback()
        writer.close()
        stats = _wait_empty(spool)
        harness.settle()
        stored = harness.count("SELECT count(*) FROM inbound_messages")
        status = harness.count("SELECT count(*) FROM outbound_messages WHERE status = 'delivered'")
        texts = harness.texts_to(PHONE)
    finally:
        harness.close()
    assert answer.status_code == 200 and waited < 5, waited
    assert delivered.status_code == 200 and appended == 2, "the status callback joins the message in the spool"
    assert stats["files"] == 0
    assert stored == 2 and status == 1
    assert len(texts) == 2, texts


class _DiskFull:
    """The os module as the spool sees it, on a disk that fills up in the middle of a write."""

    def __init__(self, real):
        self.real = real

    def __getattr__(self, name):
        return getattr(self.real, name)

    def write(self, fd, data):
        self.real.write(fd, bytes(data[:10]))
        raise OSError(errno.ENOSPC, "No space left on device")


def test_a_spool_over_its_limit_or_a_full_disk_answers_503_and_leaves_no_half_record(providers, tmp_path,
                                                                                    monkeypatch):
    runtime, client = _down(providers, tmp_path)
    spool = spools.of(runtime)
    spool.max_bytes = 2000
    try:
        answers = [_sms(client, PHONE, "hola", f"SM{n:032d}") for n in range(12)]
        statuses = [a.status_code for a in answers]
        refused = answers[-1]
        health = client.get("/healthz")
        webhooks_health = client.get("/healthz/webhooks")
        spool.max_bytes = 10 * 1024 * 1024
        sizes = sorted(f.stat().st_size for f in (tmp_path / "spool").glob("*.spool"))
        monkeypatch.setattr(spools, "os", _DiskFull(os))
        full_disk = _sms(client, PHONE, "hola", "SM" + "8" * 32)
        monkeypatch.undo()
        after = sorted(f.stat().st_size for f in (tmp_path / "spool").glob("*.spool"))
        recovered = _sms(client, PHONE, "hola", "SM" + "7" * 32)
    finally:
        spool.stop()
        runtime.engine.dispose()
    assert statuses[0] == 200 and 503 in statuses, statuses
    assert statuses == sorted(statuses), "once full, refused until replayed"
    assert refused.headers["Retry-After"] and refused.get_json()["error"]["code"] == "database_unavailable"
    assert health.status_code == 503 and health.get_json()["status"] == "unavailable"
    assert webhooks_health.status_code == 503 and webhooks_health.get_json()["status"] == "unavailable"
    assert full_disk.status_code == 503
    assert after == sizes, "the part of the record written before the disk filled up is cut off again"
    assert recovered.status_code == 200
    assert spool.refused == statuses.count(503) + 1
