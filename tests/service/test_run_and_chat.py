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
    env["XDG_STATE_HOME"] = str(tmp_path / "state")
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
    assert health.pop("spool")["files"] == 0
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


def test_chat_resumes_as_the_same_name_and_nobody_else_can_take_it(running, tmp_path):
    url, env, _ = running

    def chat(lines: list[str], state: str):
        return subprocess.run(
            [sys.executable, "-m", "service.cli", "chat", "--url", url, "--as", "ana"],
            input="\n".join(lines) + "\n", capture_output=True, text=True, env={**env, "XDG_STATE_HOME": state},
            timeout=60,
        )

    first = chat(["Hola"], str(tmp_path / "mine"))
    assert first.returncode == 0 and "¿Acepta? (SI/NO)" in first.stdout
    state = tmp_path / "mine" / "retorno" / "chat.json"
    assert oct(state.stat().st_mode & 0o777) == "0o600"
    again = chat(["si"], str(tmp_path / "mine"))
    assert again.returncode == 0 and "¿Acepta?" not in again.stdout and "(no reply)" not in again.stderr
    stranger = chat(["si"], str(tmp_path / "theirs"))
    assert stranger.returncode == 1 and "another console client writes as this address" in stranger.stderr
    assert requests.get(f"{url}/webhooks/console/replies", timeout=5).status_code == 400


def test_chat_with_a_secret_of_an_earlier_database_starts_anew(running, tmp_path):
    """`retorno-data` reset: the secret kept for this URL and name is unknown to the service, so the chat forgets it."""
    import json

    url, env, _ = running
    state = tmp_path / "old" / "retorno" / "chat.json"
    state.parent.mkdir(parents=True)
    state.write_text(json.dumps({f"{url} ana": "a-secret-of-an-earlier-database"}))
    result = subprocess.run(
        [sys.executable, "-m", "service.cli", "chat", "--url", url, "--as", "ana"], input="Hola\n",
        capture_output=True, text=True, env={**env, "XDG_STATE_HOME": str(tmp_path / "old")}, timeout=60,
    )
    assert result.returncode == 0 and "¿Acepta? (SI/NO)" in result.stdout, result.stderr
    assert "a-secret-of-an-earlier-database" not in state.read_text()


def test_chat_confirms_a_minors_age_and_asks_which_baja(running, tmp_path):
    url, env, _ = running

    def chat(name: str, lines: list[str]) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "service.cli", "chat", "--url", url, "--as", name],
            input="\n".join(lines) + "\n", capture_output=True, text=True, env=env, timeout=120,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    typo = chat("beto", ["Hola", "si", "15", "2", "51"])
    assert "¿Tiene 15 años?\n1) Si\n2) No, me equivoqué" in typo
    assert "¿Ha vivido fuera de México?" in typo and "solo para personas de 18" not in typo
    minor = chat("carla", ["Hola", "si", "casi 18", "1"])
    assert "¿Tiene 17 años?" in minor and "Esta encuesta es solo para personas de 18 años o mas" in minor
    baja = chat("dora", ["Hola", "si", "30", "2", "1", "Baja", "Baja California Sur"])
    assert "¿Baja California o Baja California Sur? Si quiere dejar de recibir mensajes, escriba BAJA otra vez." in baja
    assert "¿Le alcanza su ingreso" in baja and "ya no le escribiremos" not in baja
