"""The `retorno` command as staff use it."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from service.cli import main
from tests.processes import ROOT, free_port


def test_tokens_create_prints_the_token_alone_on_the_last_line(tmp_path, monkeypatch):
    monkeypatch.setenv("RETORNO_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    result = CliRunner().invoke(main, ["tokens", "create", "--role", "analyst", "--name", "Ana"])
    assert result.exit_code == 0, result.output
    token = result.stdout.strip().splitlines()[-1]
    assert token.startswith("rt_") and " " not in token


def test_db_upgrade(tmp_path, monkeypatch):
    monkeypatch.setenv("RETORNO_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    result = CliRunner().invoke(main, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "retorno.sqlite3").exists()
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def test_worker_without_redis_explains(tmp_path, monkeypatch):
    monkeypatch.setenv("RETORNO_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    result = CliRunner().invoke(main, ["worker", "--burst"])
    assert result.exit_code != 0
    assert "REDIS_URL" in result.output


def test_postgres_without_secret_key_explains(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://postgres@127.0.0.1/none")
    monkeypatch.delenv("RETORNO_SECRET_KEY", raising=False)
    result = CliRunner().invoke(main, ["db", "upgrade"])
    assert result.exit_code != 0
    assert "RETORNO_SECRET_KEY is required" in result.output


def test_worker_queues_can_be_dedicated():
    from service.queue import QUEUE_NAMES, RedisDispatcher

    dispatcher = RedisDispatcher("redis://127.0.0.1:1/0")  # never connected: queues are only named here
    assert [q.name for q in dispatcher.worker_queues()[1]] == list(QUEUE_NAMES)
    assert [q.name for q in dispatcher.worker_queues(("retorno-slow", "retorno-send"))[1]] == [
        "retorno-send", "retorno-slow"]
    result = CliRunner().invoke(main, ["worker", "--queue", "retorno-fast"])
    assert result.exit_code == 2 and "retorno-send" in result.output


def test_version():
    from importlib.metadata import version

    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0
    assert result.output == f"retorno {version('retorno')}\n"


def test_tokens_create_says_an_analyst_token(tmp_path, monkeypatch):
    monkeypatch.setenv("RETORNO_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    analyst = CliRunner().invoke(main, ["tokens", "create", "--role", "analyst"])
    assert "\ncreated an analyst token; keep it secret" in analyst.stderr
    staff = CliRunner().invoke(main, ["tokens", "create", "--role", "staff", "--name", "Ana"])
    assert staff.stderr.startswith("created a staff token for Ana; keep it secret")
# -- operator mistakes: a non-zero exit and one line on stderr that names the fix, never a traceback ---------------

SECRET = "retorno-test-secret-key-0123456789"


def _refused(result, *words: str) -> str:
    """The one line a refused command wrote on stderr (checked: non-zero exit, no traceback, every word in it)."""
    assert result.exit_code not in (0, None), result.output
    assert isinstance(result.exception, SystemExit), f"a traceback: {result.exception!r}"
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


def _invoke(args: list[str], **env: str | None):
    return CliRunner().invoke(main, args, env={"RETORNO_SECRET_KEY": SECRET, "REDIS_URL": None, **env})


@pytest.mark.parametrize(("url", "words"), [
    (f"postgresql://postgres@127.0.0.1:{free_port()}/retorno", ["cannot be reached", "Connection refused",
                                                                 "check its host, port"]),
    ("postgresql://postgres@127.0.0.1:5432/retorno_no_such_database", ["cannot be reached", "does not exist"]),
    ("postgresql://postgres:hunter2@127.0.0.1:1/retorno", ["postgres:***@", "cannot be reached"]),
    ("postgres//oops", ["is not a database URL", "postgresql://USER:PASSWORD@HOST:5432/DATABASE"]),
    ("mysql://root@127.0.0.1/retorno", ["mysql", "PostgreSQL or SQLite"]),
    ("postgresql+psycopg2://postgres@127.0.0.1/retorno", ["psycopg2", "postgresql://"]),
    ("postgresql://postgres@127.0.0.1:5432", ["names no database"]),
    ("sqlite:////nonexistent/folder/retorno.sqlite3", ["/nonexistent/folder", "create the folder"]),
], ids=["unreachable", "no-database", "password-hidden", "malformed", "mysql", "psycopg2", "no-name", "sqlite-folder"])
def test_a_database_url_that_cannot_work_is_one_line(url, words):
    line = _refused(_invoke(["db", "upgrade"], DATABASE_URL=url), "DATABASE_URL", *words)
    assert "hunter2" not in line


@pytest.mark.parametrize(("url", "words"), [
    (f"redis://127.0.0.1:{free_port()}/0", ["cannot be reached", "check its host, port"]),
    ("htp://127.0.0.1:6379/0", ["is not a Redis URL", "redis://HOST:6379/0"]),
    ("redis://127.0.0.1:port/0", ["is not a Redis URL"]),
], ids=["unreachable", "scheme", "port"])
def test_a_redis_url_that_cannot_work_is_one_line(sqlite_url, url, words):
    _refused(_invoke(["worker", "--burst"], DATABASE_URL=sqlite_url, REDIS_URL=url), "REDIS_URL", *words)


def test_a_database_lost_while_a_command_runs_is_one_line(monkeypatch):
    monkeypatch.setattr("service.cli.check_reachable", lambda settings: None)
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/retorno"
    _refused(_invoke(["db", "upgrade"], DATABASE_URL=url), "the database cannot be reached", "check DATABASE_URL")


def test_missing_secret_key_with_a_database_url_is_one_line():
    result = CliRunner().invoke(main, ["db", "upgrade"], env={
        "DATABASE_URL": "postgresql://postgres@127.0.0.1/none", "RETORNO_SECRET_KEY": None})
    _refused(result, "RETORNO_SECRET_KEY is required with DATABASE_URL", "secrets.token_urlsafe(32)")


def test_an_unknown_default_survey_is_refused_listing_the_known_ones(sqlite_url):
    _refused(_invoke(["run", "--port", str(free_port())], DATABASE_URL=sqlite_url, RETORNO_DEFAULT_SURVEY="reintegracion"),
             "RETORNO_DEFAULT_SURVEY=reintegracion is not a known survey", "known: reintegracion-mx")


def _survey_folder(tmp_path: Path, survey_id: str = "prueba") -> Path:
    from surveys.loader import bundled_files

    folder = tmp_path / "surveys"
    folder.mkdir()
    source = bundled_files()[0].read_text(encoding="utf-8")
    (folder / f"{survey_id}.yaml").write_text(re.sub(r"(?m)^id: .*$", f"id: {survey_id}", source), encoding="utf-8")
    return folder / f"{survey_id}.yaml"


def _publish(database_url: str, surveys_dir: Path, tmp_path: Path) -> None:
    from service import runtime as runtimes
    from tests.support import make_settings

    runtime = runtimes.build(make_settings(database_url, "http://127.0.0.1:9", tmp_path, surveys_dir=surveys_dir))
    runtime.catalog.publish()
    assert not runtime.catalog.refused
    runtime.engine.dispose()


def test_a_survey_edited_without_a_new_version_is_refused_naming_file_line_and_change(sqlite_url, tmp_path):
    path = _survey_folder(tmp_path)
    _publish(sqlite_url, path.parent, tmp_path)
    source = path.read_text(encoding="utf-8")
    path.write_text(source.replace("min_cell: 10", "min_cell: 5"), encoding="utf-8")
    line = source[: source.index("\nversion:")].count("\n") + 2
    result = _invoke(["run", "--port", str(free_port())], DATABASE_URL=sqlite_url, RETORNO_SURVEYS_DIR=str(path.parent))
    _refused(result, f"{path}:{line}:", "survey prueba was edited (min_cell)", "raise `version` to 3")
    path.write_text(source.replace("min_cell: 10", "min_cell: 10  # a comment is no edit"), encoding="utf-8")
    from service import runtime as runtimes
    from service.config import Settings

    env = {"DATABASE_URL": sqlite_url, "RETORNO_SECRET_KEY": SECRET, "RETORNO_SURVEYS_DIR": str(path.parent)}
    runtime = runtimes.build(Settings.from_env(env))
    runtime.catalog.publish()
    assert runtime.catalog.refused == []
    runtime.engine.dispose()


def test_an_invalid_survey_file_is_refused_with_its_line(sqlite_url, tmp_path):
    path = _survey_folder(tmp_path)
    path.write_text(path.read_text(encoding="utf-8").replace("min_cell: 10", "min_cell: ten"), encoding="utf-8")
    result = _invoke(["run", "--port", str(free_port())], DATABASE_URL=sqlite_url, RETORNO_SURVEYS_DIR=str(path.parent))
    _refused(result, f"{path}:", "min_cell")


@pytest.mark.parametrize("args", [
    ["gaps", "--survey", "reintegracion-mx"], ["incentives", "status"], ["campaigns", "list"], ["inbox", "failed"],
])
def test_commands_that_read_data_refuse_to_start_an_empty_embedded_database(tmp_path, args):
    folder = tmp_path / "elsewhere"
    result = _invoke(args, DATABASE_URL=None, RETORNO_SECRET_KEY=None, RETORNO_DATA_DIR=str(folder))
    _refused(result, f"no Retorno database at {folder / 'retorno.sqlite3'}", "retorno run", "RETORNO_DATA_DIR")
    assert not folder.exists(), "nothing was created"


def test_commands_that_create_data_say_which_embedded_database_they_start(tmp_path):
    folder = tmp_path / "data"
    result = _invoke(["tokens", "create", "--role", "staff"], DATABASE_URL=None, RETORNO_SECRET_KEY=None,
                     RETORNO_DATA_DIR=str(folder))
    assert result.exit_code == 0, result.output
    assert f"creating a new embedded database at {folder / 'retorno.sqlite3'}" in result.stderr
    again = _invoke(["tokens", "create", "--role", "staff"], DATABASE_URL=None, RETORNO_SECRET_KEY=None,
                    RETORNO_DATA_DIR=str(folder))
    assert again.exit_code == 0 and "creating" not in again.stderr


@pytest.mark.parametrize("server", ["granian", "gunicorn"])
def test_the_procfile_web_process_stops_on_a_wrong_setting_in_one_line(tmp_path, server):
    """The web server on create_app(): one line of ours, then the server's own exit, no traceback."""
    from tests.processes import web_command

    env = {k: v for k, v in os.environ.items() if not k.startswith(("RETORNO_", "DATABASE_URL", "REDIS_URL"))}
    env.update(DATABASE_URL="postgres//oops", RETORNO_SECRET_KEY=SECRET)
    process = subprocess.run(web_command(free_port(), workers=1, server=server), cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=60)
    assert process.returncode != 0
    output = process.stdout + process.stderr
    assert "retorno: DATABASE_URL is not a database URL; write it as postgresql://" in output
    assert "Traceback" not in output
