"""README's first command: `retorno run` on a bare machine, and `retorno chat` completing the survey through it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest
import requests

from tests.surveys.test_engine import RETURNEE_SCRIPT


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def running(tmp_path):
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "RETORNO_SECRET_KEY")}
    env["RETORNO_DATA_DIR"] = str(tmp_path / "data")
    process = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "run", "--port", str(port)],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url}/healthz", timeout=1).status_code == 200:
                break
        except requests.ConnectionError:
            time.sleep(0.2)
    else:
        process.kill()
        pytest.fail("retorno run did not come up:\n" + process.stdout.read())
    yield url, env, process
    process.terminate()
    process.wait(timeout=10)


def test_run_announces_itself_and_chat_completes_the_survey(running, tmp_path):
    url, env, process = running
    lines = ["Hola", *[text for text, _, _ in RETURNEE_SCRIPT]]
    chat = subprocess.run(
        [sys.executable, "-m", "service.cli", "chat", "--url", url, "--as", "ana"],
        input="\n".join(lines) + "\n", capture_output=True, text=True, env=env, timeout=120,
    )
    assert chat.returncode == 0, chat.stderr
    assert "¿Acepta? (SI/NO)" in chat.stdout
    assert "¡Gracias por completar la encuesta!" in chat.stdout
    health = requests.get(f"{url}/healthz", timeout=5).json()
    assert health == {"status": "ok", "database": "ok", "queue": "ok",
                      "queue_backend": "embedded", "database_backend": "sqlite"}
    process.terminate()
    output = process.communicate(timeout=10)[0]
    assert f"Retorno listens on {url}" in output
    assert "retorno chat" in output
    assert (tmp_path / "data" / "retorno.sqlite3").exists()


def test_chat_explains_when_nothing_runs():
    result = subprocess.run(
        [sys.executable, "-m", "service.cli", "chat", "--url", f"http://127.0.0.1:{_free_port()}"],
        input="hola\n", capture_output=True, text=True, timeout=30,
    )
    assert result.returncode == 1
    assert "Is `retorno run` running?" in result.stderr
