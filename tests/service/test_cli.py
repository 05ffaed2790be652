"""The `retorno` command as staff use it."""

from __future__ import annotations

from click.testing import CliRunner

from service.cli import main


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
    assert analyst.stderr.startswith("created an analyst token; keep it secret")
    staff = CliRunner().invoke(main, ["tokens", "create", "--role", "staff", "--name", "Ana"])
    assert staff.stderr.startswith("created a staff token for Ana; keep it secret")
