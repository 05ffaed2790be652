"""Real Retorno processes for integration tests: granian web servers (the Procfile's) and `retorno worker`s on
loopback."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

from tests.support import TELEGRAM_SECRET, TELEGRAM_TOKEN, TWILIO_FROM, TWILIO_SID, TWILIO_TOKEN

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def service_env(database_url: str, redis_url: str, providers_url: str, public_url: str, **extra: str) -> dict[str, str]:
    """The environment of a production-like Retorno on loopback, talking to fake providers."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RETORNO_", "TWILIO_", "TELEGRAM_"))}
    env.update(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        RETORNO_SECRET_KEY="retorno-test-secret-key-0123456789",
        RETORNO_PUBLIC_URL=public_url,
        RETORNO_LOG_LEVEL="WARNING",
        TWILIO_ACCOUNT_SID=TWILIO_SID,
        TWILIO_AUTH_TOKEN=TWILIO_TOKEN,
        TWILIO_FROM_NUMBER=TWILIO_FROM,
        TWILIO_API_BASE=providers_url,
        TELEGRAM_BOT_TOKEN=TELEGRAM_TOKEN,
        TELEGRAM_WEBHOOK_SECRET=TELEGRAM_SECRET,
        TELEGRAM_API_BASE=providers_url,
        PYTHONUNBUFFERED="1",
        RETORNO_DATA_DIR=tempfile.mkdtemp(prefix="retorno-data-"),  # the spool of this test's processes alone
    )
    env.update(extra)
    return env


def web_command(port: int, workers: int = 2, threads: int = 32, server: str = "granian",
                factory: str = "service.app:create_app") -> list[str]:
    """The Procfile's web process (granian) on loopback, or the gunicorn it replaced (for comparisons)."""
    if server == "gunicorn":
        return [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
                "--threads", str(threads), "--worker-class", "gthread", "--graceful-timeout", "5",
                "--backlog", "2048", f"{factory}()"]
    return [sys.executable, "-m", "granian", "--interface", "wsgi", "--factory", "--host", "127.0.0.1",
            "--port", str(port), "--workers", str(workers), "--blocking-threads", str(threads),
            "--backlog", "2048", "--workers-kill-timeout", "5", factory]


def start_web(env: dict[str, str], port: int, workers: int = 2, log: Path | None = None,
              threads: int = 32, server: str = "granian", factory: str = "service.app:create_app") -> subprocess.Popen:
    return _spawn(web_command(port, workers, threads, server, factory), env, log)


def start_worker(env: dict[str, str], log: Path | None = None, queues: tuple[str, ...] = ()) -> subprocess.Popen:
    """A `retorno worker` serving all queues, or only `queues`."""
    options = [f"--queue={name}" for name in queues]
    return _spawn([sys.executable, "-m", "service.cli", "worker", *options], env, log)


def _spawn(command: list[str], env: dict[str, str], log: Path | None) -> subprocess.Popen:
    output = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - closed with the process
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT,
                            start_new_session=True)


def post_as_twilio(session: requests.Session, web_url: str, path: str, form: dict[str, str],
                   public_url: str | None = None) -> str | None:
    """POST a form to a running Retorno as Twilio does (signed for `public_url` + path); what went wrong, or None."""
    from tests.support import twilio_signature

    headers = {"X-Twilio-Signature": twilio_signature((public_url or web_url) + path, form)}
    try:
        response = session.post(web_url + path, data=form, headers=headers, timeout=30)
    except requests.RequestException as error:
        return f"{path}: {error}"
    return None if response.status_code == 200 else f"{path}: {response.status_code}"


def wait_healthy(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url}/healthz/webhooks", timeout=1).status_code == 200:  # takes webhooks
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not become healthy within {timeout} s")


def stop(process: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, sig)
        process.wait(timeout=timeout)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(timeout=5)


@contextmanager
def running(*processes: subprocess.Popen) -> Iterator[tuple[subprocess.Popen, ...]]:
    try:
        yield processes
    finally:
        for process in processes:
            stop(process)
