"""The spool on its own: what counts as the database being away, rotation, order, torn records, claims, rejects."""

from __future__ import annotations

import fcntl
import os
import sqlite3

import orjson
import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, OperationalError

from bots.base import Incoming
from service import spool as spools
from service.config import ConfigError, Settings
from service.inbox import GroupCommitter, row_for
from tests.support import Harness

PHONE = "+525512345678"


@pytest.fixture
def manual(harness):
    """The harness's spool with its replayer off: each test replays when it says so."""
    spool = spools.of(harness.rt)
    spool.stopping = True
    return harness, spool


def _rows(harness: Harness, *texts: str, start: int = 1) -> list[dict]:
    return [row_for(harness.rt, Incoming("sms", f"SM{start + i:032d}", PHONE, text), harness.rt.now())
            for i, text in enumerate(texts)]


def _stored(harness: Harness) -> list[tuple]:
    with harness.rt.engine.connect() as connection:
        return [tuple(r) for r in connection.execute(text("SELECT provider_id, body FROM inbound_messages ORDER BY id"))]


def test_unavailable_means_the_database_cannot_be_reached_not_that_the_rows_are_wrong():
    refused = psycopg.OperationalError("connection refused")
    assert spools.unavailable(TimeoutError("the database did not commit in time"))
    assert spools.unavailable(refused)
    assert spools.unavailable(OperationalError("INSERT", None, refused))
    assert spools.unavailable(OperationalError("INSERT", None, sqlite3.OperationalError("database is locked")))
    assert not spools.unavailable(OperationalError("INSERT", None, sqlite3.OperationalError("no such table: x")))
    assert not spools.unavailable(DBAPIError("INSERT", None, psycopg.DataError("NUL character")))
    assert not spools.unavailable(ValueError("bad row"))


def test_spool_settings_come_from_the_environment(tmp_path):
    base = {"RETORNO_DATA_DIR": str(tmp_path)}
    assert Settings.from_env(base).spool_path == tmp_path / "spool"
    settings = Settings.from_env({**base, "RETORNO_SPOOL_DIR": str(tmp_path / "s"), "RETORNO_SPOOL_MAX_MB": "0.5"})
    assert settings.spool_path == tmp_path / "s" and settings.spool_max_mb == 0.5
    with pytest.raises(ConfigError, match="RETORNO_SPOOL_MAX_MB=lots is not a number"):
        Settings.from_env({**base, "RETORNO_SPOOL_MAX_MB": "lots"})


def test_files_rotate_by_size_and_are_replayed_in_arrival_order(manual):
    harness, spool = manual
    spool.segment_bytes = 700
    for row in _rows(harness, "uno", "dos", "tres", "cuatro", "cinco"):
        spool.append([{"inbound": row}])
    files = spool.segments()
    assert len(files) >= 3, "a file is closed and a new one started past the size"
    assert spool.replay() == 5
    assert [body for _, body in _stored(harness)] == ["uno", "dos", "tres", "cuatro", "cinco"]
    assert spool.stats()["files"] == 0 and not spool.holding


def test_a_process_that_cannot_read_its_hashing_key_spools_and_the_replay_hashes(manual, monkeypatch):
    harness, spool = manual
    expected = harness.rt.vault.hash("sms", PHONE)
    vault = harness.rt.vault
    monkeypatch.setattr(vault, "_hash_key", None)
    monkeypatch.setattr(vault, "_hash_key_loader", lambda v: (_ for _ in ()).throw(
        OperationalError("SELECT sealed FROM vault_keys", None, psycopg.OperationalError("connection refused"))))
    assert harness.sms(PHONE, "sin llave").status_code == 200
    assert _stored(harness) == [] and spool.appended == 1
    monkeypatch.setattr(vault, "_hash_key_loader", None)
    assert spool.replay() == 1
    with harness.rt.engine.connect() as connection:
        assert connection.execute(text("SELECT address_hash FROM inbound_messages")).scalar_one() == expected


def test_while_messages_wait_in_the_spool_new_ones_queue_behind_them(manual, monkeypatch):
    harness, spool = manual
    real_write = GroupCommitter._write

    def locked(self, rows):
        raise OperationalError("INSERT", None, sqlite3.OperationalError("database is locked"))

    monkeypatch.setattr(GroupCommitter, "_write", locked)
    assert harness.sms(PHONE, "primero").status_code == 200
    monkeypatch.setattr(GroupCommitter, "_write", real_write)
    assert harness.sms(PHONE, "segundo").status_code == 200
    assert _stored(harness) == [], "the second message did not overtake the first one"
    assert spool.replay() == 2
    assert [body for _, body in _stored(harness)] == ["primero", "segundo"]
    assert harness.sms(PHONE, "tercero").status_code == 200 and spool.appended == 2, "the spool is empty again"
    harness.settle()
    assert len(harness.texts_to(PHONE)) == 3


def test_a_torn_last_record_is_skipped_and_the_others_replayed(manual):
    harness, spool = manual
    rows = _rows(harness, "uno", "dos")
    spool.append([{"inbound": row} for row in rows])
    spool._seal()
    path = spool.segments()[0]
    with open(path, "ab") as handle:  # a process killed in the middle of a write (never acknowledged)
        handle.write(orjson.dumps({"inbound": _rows(harness, "tres", start=3)[0]}, option=orjson.OPT_NAIVE_UTC)[:40])
    assert spool.replay() == 2
    assert [body for _, body in _stored(harness)] == ["uno", "dos"]
    assert not path.exists()


def test_a_file_a_live_process_appends_to_is_left_to_it_and_an_abandoned_one_is_claimed(manual):
    harness, spool = manual
    spool.append([{"inbound": row} for row in _rows(harness, "uno")])
    spool._seal()
    path = spool.segments()[0]
    writer = os.open(path, os.O_RDONLY)
    fcntl.flock(writer, fcntl.LOCK_EX)  # another process still appends to it
    try:
        assert spool.replay() == 0 and path.exists() and _stored(harness) == []
    finally:
        os.close(writer)  # that process died: its lock went with it
    assert spool.replay() == 1 and not path.exists()
    assert spool.replay() == 0, "replaying again finds nothing"


def test_a_record_the_database_refuses_is_kept_aside_and_the_others_go_in(clean_postgres, providers, tmp_path):
    harness = Harness(clean_postgres, providers, tmp_path)
    spool = spools.of(harness.rt)
    spool.stopping = True
    try:
        rows = _rows(harness, "uno", "nul \x00 byte", "tres")
        spool.append([{"inbound": row} for row in rows] + [{"nonsense": 1}])
        moved = spool.replay()
        stored = _stored(harness)
    finally:
        harness.close()
    assert moved == 4 and [body for _, body in stored] == ["uno", "tres"]
    rejected = b"".join(path.read_bytes() for path in (tmp_path / "spool" / "rejected").iterdir())
    assert rows[1]["provider_id"].encode() in rejected and b"nonsense" in rejected
    assert spool.rejected == 2 and spool.stats()["files"] == 0


def test_retorno_spool_shows_and_replays_a_folder_from_another_machine(sqlite_url, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from service import runtime as runtimes
    from service.cli import main

    monkeypatch.setenv("RETORNO_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    monkeypatch.setenv("RETORNO_SPOOL_DIR", str(tmp_path / "elsewhere"))
    other = runtimes.build(Settings.from_env())
    spool = spools.Spool(other)
    spool.stopping = True
    rows = [row_for(other, Incoming("sms", f"SM{i:032d}", PHONE, "hola"), other.now()) for i in range(2)]
    spool.append([{"inbound": row} for row in rows])
    spool.stop()
    monkeypatch.delenv("RETORNO_SPOOL_DIR")
    runner = CliRunner()
    shown = runner.invoke(main, ["spool", "status", "--json", "--dir", str(tmp_path / "elsewhere")])
    replayed = runner.invoke(main, ["spool", "replay", "--dir", str(tmp_path / "elsewhere")])
    here = runner.invoke(main, ["spool", "status"])
    with other.engine.connect() as connection:
        stored = connection.execute(text("SELECT count(*) FROM inbound_messages")).scalar_one()
    other.engine.dispose()
    assert shown.exit_code == 0 and orjson.loads(shown.stdout)["files"] == 1, shown.output
    assert replayed.exit_code == 0 and "2 records moved into the database from 1 files" in replayed.stdout
    assert here.exit_code == 0 and "0 files, 0 bytes" in here.stdout
    assert stored == 2


def test_retorno_spool_replay_with_the_database_down_says_so(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from service.cli import main
    from tests.processes import free_port

    monkeypatch.setenv("RETORNO_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("RETORNO_SECRET_KEY", "retorno-test-secret-key-0123456789")
    monkeypatch.setenv("DATABASE_URL", f"postgresql://postgres@127.0.0.1:{free_port()}/none")
    result = CliRunner().invoke(main, ["spool", "replay"])
    assert result.exit_code == 1
    assert "cannot be reached" in result.output and "DATABASE_URL" in result.output


def test_records_set_aside_are_shown_and_purged_after_the_retention_period(sqlite_url, providers, tmp_path):
    """rejected/ holds message bodies like the messages table did: `retorno spool status` shows it, and it goes after
    RETORNO_RETENTION_DAYS like the bodies (the privacy job, a web process's start and replays)."""
    import time
    from datetime import UTC, datetime

    from click.testing import CliRunner

    from service import runtime as runtimes
    from service.cli import main
    from workers.privacy import purge

    harness = Harness(sqlite_url, providers, tmp_path, retention_days=30)
    spool = spools.of(harness.rt)
    spool.stopping = True
    env = {"DATABASE_URL": sqlite_url, "RETORNO_SECRET_KEY": harness.settings.secret_key, "REDIS_URL": "",
           "RETORNO_DATA_DIR": str(tmp_path)}
    try:
        empty = CliRunner().invoke(main, ["spool", "status"], env=env)
        assert empty.exit_code == 0 and "no records set aside" in empty.stdout
        spool._reject([{"nonsense": 1}, {"nonsense": 2}], ValueError("bad"))
        old = spool.rejected_files()[0]
        born = time.time_ns() - 31 * 86400 * 10**9
        old.rename(old.with_name(f"{born:020d}-1.jsonl"))
        spool._reject([{"nonsense": 3}], ValueError("bad"))
        stats = spool.stats()
        assert stats["rejected_files"] == 2 and stats["rejected_records"] == 3
        assert 31 * 86400 - 60 < stats["rejected_oldest_seconds"] < 31 * 86400 + 60
        shown = CliRunner().invoke(main, ["spool", "status", "--json"], env={**env, "RETORNO_RETENTION_DAYS": "40"})
        assert orjson.loads(shown.stdout)["rejected_records"] == 3, "younger than 40 days: kept"
        text_shown = CliRunner().invoke(main, ["spool", "status"], env=env)
        assert "1 records the database refused, in 1 files" in text_shown.stdout, text_shown.stdout
        assert "deleted 30 days after" in text_shown.stdout
        spool._reject([{"nonsense": 4}], ValueError("bad"))
        young = spool.rejected_files()
        runtimes.install(harness.rt)  # the commands installed their own runtime
        harness.clock.now = datetime.now(UTC)
        harness.clock.advance(days=29)  # the privacy job reads the service's clock
        assert purge()["spool_rejected"] == 0
        harness.clock.advance(days=2)
        assert purge()["spool_rejected"] >= 1
        assert not any(path.exists() for path in young)
        metrics = harness.client.get("/metrics").get_data(as_text=True)
        assert "retorno_spool_rejected_records 0" in metrics
    finally:
        harness.close()


def test_healthz_keeps_the_contract_while_spooled_records_wait(manual):
    """CONTRACT.md: /healthz is `200 {"status": "ok"}` whenever the database and the queue answer, spooled records
    waiting or not; /healthz/webhooks (for the load balancer) says `degraded` until they are replayed."""
    harness, spool = manual
    spool.append([{"inbound": row} for row in _rows(harness, "uno")])
    health, webhooks = harness.client.get("/healthz"), harness.client.get("/healthz/webhooks")
    assert health.status_code == 200 and health.get_json()["status"] == "ok"
    assert health.get_json()["spool"]["files"] == 1
    assert webhooks.status_code == 200 and webhooks.get_json()["status"] == "degraded"
    assert spool.replay() == 1
    assert harness.client.get("/healthz/webhooks").get_json()["status"] == "ok"


def test_two_workers_spooling_into_one_folder_replay_in_arrival_order(manual):
    """Two gunicorn workers on one machine spool into the same folder, each into its own file, while one respondent's
    messages alternate between them; a third worker that never spooled gets a message meanwhile. Whichever replays,
    and whenever (even while the other still appends), the database gets them in the order they arrived."""
    harness, third = manual
    first, second = spools.Spool(harness.rt), spools.Spool(harness.rt)  # each as a worker process has its own
    first.stopping = second.stopping = True
    rows = _rows(harness, *(f"mensaje {n}" for n in range(1, 9)))
    for n, row in enumerate(rows[:6]):
        (first if n % 2 == 0 else second).append([{"inbound": row}])
    assert len(first.segments()) == 2, "one file per worker, both still being appended to"
    assert third.others_waiting(), "the third worker sees records waiting"
    assert harness.sms(PHONE, "mensaje 7", sid=rows[6]["provider_id"]).status_code == 200
    assert _stored(harness) == [], "it queued behind them instead of overtaking them"

    assert first.replay() == 1, "only what came before the other worker's first record"
    assert [body for _, body in _stored(harness)] == ["mensaje 1"]
    second.append([{"inbound": rows[7]}])  # the second worker still appends while the first one replays
    assert first.replay() == 0, "the second worker's file is still open: nothing after its start goes in"
    assert second.replay() == 5, "up to the third worker's open file"
    assert [body for _, body in _stored(harness)] == [f"mensaje {n}" for n in range(1, 7)]
    assert third.replay() == 2
    assert [body for _, body in _stored(harness)] == [f"mensaje {n}" for n in range(1, 9)]
    assert first.segments() == [] and not third.others_waiting()
    assert first.replay() == 0 and second.replay() == 0


def test_records_spooled_before_sequence_keys_are_replayed_by_file_and_line(manual):
    harness, spool = manual
    spool.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    rows = _rows(harness, "viejo 1", "viejo 2", "nuevo")
    old = b"".join(orjson.dumps({"inbound": row}, option=orjson.OPT_NAIVE_UTC) + b"\n" for row in rows[:2])
    (spool.directory / f"{1:020d}-7-1.spool").write_bytes(old)
    spool.append([{"inbound": rows[2]}])
    assert spool.replay() == 3
    assert [body for _, body in _stored(harness)] == ["viejo 1", "viejo 2", "nuevo"]
