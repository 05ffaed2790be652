"""Operator mistakes found after issues 14, 15 and 22, tried the way a careless operator would: commands run from the
wrong folder, odd ids and expiries, a typo in the default survey, the wrong secret key. Each gets a non-zero exit and
one line that names the fix, never a traceback; a webhook never gets a 5xx for them."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from service.cli import main
from service.privacy import Vault
from tests.processes import ROOT, free_port

SECRET = "retorno-test-secret-key-0123456789"
OTHER = "somebody-elses-secret-key-0987654321"


def _invoke(args: list[str], **env: str | None):
    return CliRunner().invoke(main, args, env={"RETORNO_SECRET_KEY": SECRET, "REDIS_URL": None, **env})


def _refused(result, *words: str, code: int | None = None) -> str:
    assert result.exit_code not in (0, None), result.output
    if code is not None:
        assert result.exit_code == code, result.output
    assert isinstance(result.exception, SystemExit), f"a traceback: {result.exception!r}"
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


# -- 1. commands that only read never create a database ------------------------------------------------------------

READERS = [
    ["contacts", "show", "--phone", "55 1234 5678"], ["contacts", "erase", "--respondent", "abc", "--yes"],
    ["audit"], ["audit", "--json"], ["tokens", "list"], ["tokens", "revoke", "1"], ["keys", "rotate"],
    ["spool", "status"], ["spool", "status", "--json"], ["spool", "replay"], ["contacts", "list"],
]


@pytest.mark.parametrize("args", READERS, ids=[" ".join(a[:2]) for a in READERS])
def test_a_command_that_reads_refuses_to_start_an_empty_database_elsewhere(tmp_path, args, monkeypatch):
    elsewhere = tmp_path / "another-folder"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    result = _invoke(args, DATABASE_URL=None, RETORNO_SECRET_KEY=None, RETORNO_DATA_DIR=None)
    _refused(result, f"no Retorno database at {elsewhere / 'retorno-data' / 'retorno.sqlite3'}", "retorno run",
             "DATABASE_URL")
    assert list(elsewhere.iterdir()) == [], "no retorno-data/ (nor a secret key) was created"


@pytest.mark.parametrize("args", [["tokens", "list"], ["keys", "rotate"], ["spool", "status"]])
def test_a_database_url_naming_a_sqlite_file_that_is_not_there_is_refused(tmp_path, args):
    typo = tmp_path / "retorno.sqlite"
    result = _invoke(args, DATABASE_URL=f"sqlite:///{typo}")
    _refused(result, f"no Retorno database at {typo} (DATABASE_URL)")
    assert not typo.exists()


# -- 2. odd ids, names and expiries ----------------------------------------------------------------------------------


@pytest.mark.parametrize("which", [
    "²", "٣", "１", "99999999999999999999999", "9" * 5000, "-1", "+1", "0x1", "1e3", "  ", "nobody",
    "9223372036854775808",
])
def test_tokens_revoke_of_an_odd_id_is_one_line(sqlite_url, which):
    _refused(_invoke(["tokens", "revoke", "--", which], DATABASE_URL=sqlite_url), code=1)


@pytest.mark.parametrize("which", ["\x00", "ops\x00", "a\x1bb"])
def test_tokens_revoke_of_a_name_with_control_characters_is_one_line(sqlite_url, which):
    _refused(_invoke(["tokens", "revoke", which], DATABASE_URL=sqlite_url), "control characters", code=1)


@pytest.mark.parametrize("expires", [
    "99999999d", "999999999d", "9999999999999999999d", "999999999w", "3651d", "²d", "٣d", "1e9d", "-5d", "0d",
    "90 days", "9" * 5000 + "d", "",
])
def test_tokens_create_with_an_odd_expiry_is_one_line(sqlite_url, expires):
    line = _refused(_invoke(["tokens", "create", "--role", "staff", "--expires", expires],
                            DATABASE_URL=sqlite_url), "--expires", code=2)
    assert "duration" in line or "too long" in line


def test_the_longest_expiry_is_ten_years(sqlite_url):
    assert _invoke(["tokens", "create", "--role", "staff", "--expires", "3650d"],
                   DATABASE_URL=sqlite_url).exit_code == 0
    assert _invoke(["tokens", "create", "--role", "staff", "--expires", "521w"],
                   DATABASE_URL=sqlite_url).exit_code == 0


@pytest.mark.parametrize("name", ["a\x00b", "\x1b[31mred", "tab\there"])
def test_tokens_create_with_a_control_character_in_its_name_is_one_line(sqlite_url, name):
    _refused(_invoke(["tokens", "create", "--role", "staff", "--name", name], DATABASE_URL=sqlite_url),
             "--name", code=2)


def _seal_a_contact(url: str, secret: str) -> None:
    """A contact whose address was sealed with `secret` (as if the database came from another installation)."""
    from sqlalchemy.orm import Session

    from service.db import make_engine
    from service.models import Contact

    vault = Vault(secret)
    engine = make_engine(url)
    with Session(engine) as session, session.begin():
        session.add(Contact(public_id="0123456789abcdef", channel="sms",
                            address_hash=vault.hash("sms", "+525512345678"),
                            address_enc=vault.encrypt("+525512345678"), tags=[]))
    engine.dispose()


def test_data_sealed_with_an_unknown_key_is_one_line_in_every_command(sqlite_url):
    _seal_a_contact(sqlite_url, OTHER)
    line = _refused(_invoke(["contacts", "show", "--respondent", "0123456789abcdef"], DATABASE_URL=sqlite_url),
                    "RETORNO_OLD_SECRET_KEYS", code=1)
    assert "RETORNO_SECRET_KEY" in line
    _refused(_invoke(["keys", "rotate"], DATABASE_URL=sqlite_url), "RETORNO_OLD_SECRET_KEYS", code=1)


# -- 3. and 4. a process starts only with a default survey that exists and a key that opens the data ---------------


@pytest.mark.parametrize("survey", ["reintegracion-mz", "REINTEGRACION-MX", "reintegracion_mx", "../etc/passwd",
                                    "reintegracion-mx\u200b"])
def test_web_refuses_an_unknown_default_survey(sqlite_url, survey):
    result = _invoke(["web", "--port", str(free_port())], DATABASE_URL=sqlite_url, RETORNO_DEFAULT_SURVEY=survey)
    _refused(result, f"RETORNO_DEFAULT_SURVEY={survey} is not a known survey", "reintegracion-mx")


def test_run_and_web_refuse_a_secret_key_that_cannot_open_the_data(sqlite_url):
    _seal_a_contact(sqlite_url, OTHER)
    for args in (["web", "--port", str(free_port())], ["run", "--port", str(free_port())]):
        _refused(_invoke(args, DATABASE_URL=sqlite_url), "RETORNO_SECRET_KEY cannot open the stored data",
                 "RETORNO_OLD_SECRET_KEYS")
    assert _invoke(["tokens", "list"], DATABASE_URL=sqlite_url, RETORNO_OLD_SECRET_KEYS=OTHER).exit_code == 0


def _gunicorn(env: dict[str, str]) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("RETORNO_", "DATABASE_URL", "REDIS_URL"))}
    return subprocess.run(
        [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{free_port()}", "--workers", "1",
         "service.app:create_app()"], cwd=ROOT, env={**clean, **env}, capture_output=True, text=True, timeout=60)


def test_the_procfile_web_process_refuses_an_unknown_default_survey_in_one_line(sqlite_url, tmp_path):
    process = _gunicorn({"DATABASE_URL": sqlite_url, "RETORNO_SECRET_KEY": SECRET,
                         "RETORNO_DEFAULT_SURVEY": "reintegracion", "RETORNO_DATA_DIR": str(tmp_path)})
    assert process.returncode != 0
    assert "retorno: RETORNO_DEFAULT_SURVEY=reintegracion is not a known survey; known: " in process.stderr
    assert "Traceback" not in process.stderr


def test_the_procfile_web_process_refuses_a_wrong_secret_key_in_one_line(sqlite_url, tmp_path):
    _seal_a_contact(sqlite_url, OTHER)
    process = _gunicorn({"DATABASE_URL": sqlite_url, "RETORNO_SECRET_KEY": SECRET, "RETORNO_DATA_DIR": str(tmp_path)})
    assert process.returncode != 0
    assert "retorno: RETORNO_SECRET_KEY cannot open the stored data" in process.stderr
    assert "Traceback" not in process.stderr


def test_a_hashing_key_sealed_under_an_unknown_key_spools_the_message_instead_of_a_5xx(harness):
    """The kept hashing key cannot be opened (the secret key was changed under a running deployment): the webhook
    still keeps the message (spool, 200); once the key is right again, the replay stores it."""
    from service import spool as spools
    from service.models import VaultKey

    spool = spools.of(harness.rt)
    spool.stopping = True
    vault = harness.rt.vault
    expected = vault.hash("sms", "+525598760001")
    with harness.rt.sessions() as session, session.begin():
        session.merge(VaultKey(name="hash", sealed=Vault(OTHER).seal_key(b"k" * 32), updated_at=harness.rt.now()))
    vault._hash_key = None  # a process that has not read the hashing key yet
    for n in range(3):
        response = harness.sms("+525598760001", f"hola {n}")
        assert response.status_code == 200, response.get_data(as_text=True)
    assert spool.appended == 3
    assert harness.count("SELECT count(*) FROM inbound_messages WHERE body LIKE 'hola%'") == 0
    with harness.rt.sessions() as session, session.begin():
        session.execute(text("DELETE FROM vault_keys"))
    vault._hash_key = None
    assert spool.replay() == 3
    assert harness.count(f"SELECT count(*) FROM inbound_messages WHERE address_hash = '{expected}'") == 3


@pytest.mark.parametrize("option", ["--remind-after", "--expire-after"])
@pytest.mark.parametrize("value", ["99999999d", "9" * 5000 + "d", "367d", "53w", "999999999w", "²d", "٣d", "1e9d"])
def test_campaign_durations_out_of_range_are_one_line(sqlite_url, option, value):
    result = _invoke(["campaigns", "create", "--survey", "reintegracion-mx", "--tag", "piloto", option, value],
                     DATABASE_URL=sqlite_url)
    _refused(result, repr(value)[:20], code=1)


def test_postgresql_without_autovacuum_is_named_in_one_warning(clean_postgres, caplog):
    from types import SimpleNamespace

    from sqlalchemy import create_engine

    from service import startup

    engine = create_engine(clean_postgres)
    with engine.connect() as connection:
        autovacuum = connection.exec_driver_sql("SHOW autovacuum").scalar()
    with caplog.at_level("WARNING", logger="service.startup"):
        startup.warn_database_settings(SimpleNamespace(engine=engine))
    engine.dispose()
    warned = [r.getMessage() for r in caplog.records if "autovacuum" in r.getMessage()]
    assert warned == ([] if autovacuum == "on" else [
        "PostgreSQL runs with autovacuum off: plans and indexes degrade under load within minutes "
        "(set autovacuum = on in postgresql.conf and reload PostgreSQL)"])
