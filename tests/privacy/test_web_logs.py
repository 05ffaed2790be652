"""The Procfile's web server (granian) writes request logs without a phone number, however the URL spells it."""

from __future__ import annotations

import os
import time

import requests

from tests.processes import free_port, running, start_web, wait_healthy

SPELLINGS = [
    "/healthz?From=%2B525512345678",
    "/healthz?From=+52 55 1234 5678",
    "/api/v1/contacts/5255123456789",
    "/x/+52%2055%201234%205678/y",
    "/x/52-55-1234-5678",
    "/x/(55)%201234%205678",
    "/webhooks/twilio/sms/525512345678?To=%2B15005550006",
]


def test_request_logs_hold_no_number(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RETORNO_", "DATABASE_URL", "REDIS_URL"))}
    env.update(RETORNO_DATA_DIR=str(tmp_path / "data"), PYTHONUNBUFFERED="1")
    port, log = free_port(), tmp_path / "web.log"
    with running(start_web(env, port, workers=1, log=log)):
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url)
        for path in SPELLINGS:
            requests.get(url + path, timeout=10)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and log.read_text().count('"GET ') < len(SPELLINGS):
            time.sleep(0.1)
    text = log.read_text()
    assert text.count('"GET ') >= len(SPELLINGS), text  # the requests were logged
    for digits in ("5512345678", "1234 5678", "1234-5678", "12345678"):
        assert digits not in text, text
