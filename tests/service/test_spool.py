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
        rows = connection.execute(text("SELECT provider_id, body FROM inbound_messages ORDER BY id"))
        return [tuple(r) for r in rows]


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
