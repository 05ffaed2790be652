"""Privacy tests: respondents on every channel, and ways to look for their numbers the way an attacker would."""

from __future__ import annotations

import io
import logging
import re
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.fake_reloadly import FakeReloadly
from tests.support import Harness
from tests.surveys.test_engine import RETURNEE_SCRIPT

ANSWERS = [text for text, _, _ in RETURNEE_SCRIPT]
SMS = "+525511112222"
WHATSAPP = "+525533334444"
TELEGRAM_SHARED = "5555556666"
TELEGRAM_TYPED = "5577778888"
CONSOLE = "5599990000"
CONSOLE_TYPED = "5544443333"
NUMBERS = [SMS[3:], WHATSAPP[3:], TELEGRAM_SHARED, TELEGRAM_TYPED, CONSOLE, CONSOLE_TYPED]
"""Each respondent's national ten digits."""
SHARE_CHAT, TYPE_CHAT = 88001, 88002


def written_forms(national: str) -> re.Pattern:
    """A number in any written form: +52 55 1111 2222, 5511112222, 55-1111-2222, 521 55..., (55) 1111 2222."""
    return re.compile(r"[\s().-]{0,2}".join(national))


def find_numbers(text: str) -> dict[str, list[str]]:
    """Each respondent number found in `text`, with the context it was found in."""
    found: dict[str, list[str]] = {}
    for national in NUMBERS:
        for match in written_forms(national).finditer(text):
            found.setdefault(national, []).append(text[max(0, match.start() - 80):match.end() + 40])
    return found


def pg_dump(url: str) -> str:
    """The whole database as pg_dump writes it (plain SQL: every row of every table)."""
    database = url.rsplit("/", 1)[1]
    result = subprocess.run(["pg_dump", "-h", "127.0.0.1", "-U", "postgres", "--no-owner", database],
                            capture_output=True, text=True, timeout=120, check=True)
    return result.stdout


@contextmanager
def debug_logs() -> Iterator[io.StringIO]:
    """Everything every logger writes at DEBUG (the libraries that log URLs included, as if misconfigured)."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    noisy = [logging.getLogger(name) for name in ("urllib3", "requests", "werkzeug")]
    saved = (root.level, [logger.level for logger in noisy])
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    for logger in noisy:
        logger.setLevel(logging.DEBUG)
    try:
        yield buffer
    finally:
        root.removeHandler(handler)
        root.setLevel(saved[0])
        for logger, level in zip(noisy, saved[1], strict=True):
            logger.setLevel(level)


@pytest.fixture
def reloadly():
    fake = FakeReloadly(late_seconds=0.5).start()
    yield fake
    fake.stop()


@pytest.fixture
def paying_pg(clean_postgres, providers, tmp_path, reloadly):
    """Retorno on PostgreSQL, paying through the fake Reloadly."""
    harness = Harness(clean_postgres, providers, tmp_path, **reloadly.settings(timeout=2.0))
    harness.database_url = clean_postgres
    yield harness
    harness.close()


def console(h: Harness, address: str, text: str, reader: str | None = None) -> dict:
    headers = {"X-Console-Reader": reader} if reader else {}
    response = h.client.post("/webhooks/console", json={"from": address, "text": text}, headers=headers)
    assert response.status_code == 202, response.get_data(as_text=True)
    return response.get_json()


def telegram_contact(update_id: int, chat_id: int, phone: str) -> dict:
    """A Telegram update sharing the sender's own contact card (the share-my-number button)."""
    user = {"id": chat_id, "is_bot": False, "first_name": "Ana", "language_code": "es"}
    return {"update_id": update_id, "message": {
        "message_id": update_id, "from": user, "chat": {"id": chat_id, "first_name": "Ana", "type": "private"},
        "date": 1772474400, "contact": {"phone_number": phone, "first_name": "Ana", "user_id": chat_id}}}


def converse_everywhere(h: Harness) -> None:
    """Whole conversations on every channel, each completing the survey and giving a number to pay."""
    for text in ["Hola", *ANSWERS]:
        assert h.sms(SMS, text).status_code == 200
        assert h.sms(f"whatsapp:{WHATSAPP}", text).status_code == 200
        h.telegram_text(SHARE_CHAT, text)
        h.telegram_text(TYPE_CHAT, text)
        h.settle()
    h.telegram(telegram_contact(990001, SHARE_CHAT, f"52{TELEGRAM_SHARED}"))
    h.telegram_text(TYPE_CHAT, f"{TELEGRAM_TYPED[:2]} {TELEGRAM_TYPED[2:6]} {TELEGRAM_TYPED[6:]}")
    h.settle()
    reader = None
    for text in ["Hola", *ANSWERS, f"mi número es {CONSOLE_TYPED[:2]}-{CONSOLE_TYPED[2:6]}-{CONSOLE_TYPED[6:]}"]:
        reader = console(h, f"+52 {CONSOLE[:2]} {CONSOLE[2:6]} {CONSOLE[6:]}", text, reader)["reader"]
        h.settle()
