"""Test support: throwaway databases, signed provider requests, and an in-process Retorno with fake providers."""

from __future__ import annotations

import itertools
import socket
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import text
from twilio.request_validator import RequestValidator

PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
REDIS_URL = "redis://127.0.0.1:6379/15"
PUBLIC_URL = "https://retorno.example.org"
TWILIO_SID = "AC" + "a" * 32
TWILIO_TOKEN = "twilio-auth-token-for-tests"
TWILIO_FROM = "+15005550006"
TELEGRAM_TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
TELEGRAM_SECRET = "telegram-webhook-secret"
STAFF = "staff"


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def postgres_available() -> bool:
    if not _port_open(5432):
        return False
    try:
        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3):
            return True
    except psycopg.Error:
        return False


def redis_available() -> bool:
    return _port_open(6379)


def create_database(name: str) -> str:
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}"')
        connection.execute(f'CREATE DATABASE "{name}"')
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"


def drop_database(name: str) -> None:
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def truncate_all(url: str) -> None:
    from sqlalchemy import create_engine

    from service.models import Base

    engine = create_engine(url)
    names = ", ".join(t.name for t in Base.metadata.sorted_tables)
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    engine.dispose()


def make_settings(database_url: str, providers_url: str, data_dir: Path, **overrides: Any):
    from service.config import Settings

    settings = Settings(
        database_url=database_url,
        redis_url=None,
        secret_key="retorno-test-secret-key-0123456789",
        data_dir=data_dir,
        public_url=PUBLIC_URL,
        twilio_account_sid=TWILIO_SID,
        twilio_auth_token=TWILIO_TOKEN,
        twilio_from_number=TWILIO_FROM,
        twilio_api_base=providers_url,
        telegram_bot_token=TELEGRAM_TOKEN,
        telegram_webhook_secret=TELEGRAM_SECRET,
        telegram_api_base=providers_url,
        console_channel=True,
    )
    return replace(settings, **overrides)


def twilio_signature(url: str, params: dict[str, str] | list[tuple[str, str]], token: str = TWILIO_TOKEN) -> str:
    return RequestValidator(token).compute_signature(url, dict(params) if isinstance(params, list) else params)


def twilio_form(sender: str, body: str, sid: str, to: str = TWILIO_FROM) -> dict[str, str]:
    """The form Twilio posts for an inbound SMS (or WhatsApp, with whatsapp: addresses)."""
    whatsapp = sender.startswith("whatsapp:")
    form = {
        "ToCountry": "US", "ToState": "CA", "SmsMessageSid": sid, "NumMedia": "0", "ToCity": "",
        "FromZip": "", "SmsSid": sid, "FromState": "", "SmsStatus": "received", "FromCity": "",
        "Body": body, "FromCountry": "MX", "To": ("whatsapp:" if whatsapp else "") + to, "ToZip": "",
        "NumSegments": "1", "MessageSid": sid, "AccountSid": TWILIO_SID, "From": sender, "ApiVersion": "2010-04-01",
    }
    if whatsapp:
        form.update({"ProfileName": "Respondent", "WaId": sender.removeprefix("whatsapp:+")})
    return form


def telegram_message(update_id: int, chat_id: int, text: str, message_id: int | None = None) -> dict[str, Any]:
    user = {"id": chat_id, "is_bot": False, "first_name": "Ana", "language_code": "es"}
    return {
        "update_id": update_id,
        "message": {
            "message_id": message_id or update_id,
            "from": user,
            "chat": {"id": chat_id, "first_name": "Ana", "type": "private"},
            "date": 1772474400,
            "text": text,
        },
    }


def telegram_callback(update_id: int, chat_id: int, data: str, message_id: int = 1) -> dict[str, Any]:
    user = {"id": chat_id, "is_bot": False, "first_name": "Ana", "language_code": "es"}
    return {
        "update_id": update_id,
        "callback_query": {
            "id": f"{chat_id}{update_id}",
            "from": user,
            "message": {
                "message_id": message_id,
                "from": {"id": 123456789, "is_bot": True, "first_name": "Retorno"},
                "chat": {"id": chat_id, "first_name": "Ana", "type": "private"},
                "date": 1772474400,
                "text": "...",
            },
            "chat_instance": "-1234567890",
            "data": data,
        },
    }


class Clock:
    """A controllable clock for the runtime: time moves only when a test says so."""

    def __init__(self, start: datetime | None = None):
        self.now = start or datetime(2026, 3, 2, 18, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


class Harness:
    """Retorno in-process on a real database, with the embedded queue run on demand and fake providers."""

    def __init__(self, database_url: str, providers, data_dir: Path, **overrides: Any):
        from service import runtime as runtimes
        from service.app import create_app
        from service.auth import create_token

        self.providers = providers
        self.settings = make_settings(database_url, providers.url, data_dir, **overrides)
        self.clock = Clock()
        providers.clock = self.clock
        self.rt = runtimes.build(self.settings)
        self.rt.clock = self.clock
        runtimes.install(self.rt)
        self.app = create_app(runtime=self.rt)
        self.client = self.app.test_client()
        self.ids = itertools.count(1)
        self.staff_token = create_token(self.rt, "staff", "tests")
        self.analyst_token = create_token(self.rt, "analyst", "tests")

    def close(self) -> None:
        from service.inbox import committer

        committer(self.rt)._drop_connection()  # its own connection, outside the pool: dispose() would leave it open
        from service import spool

        spool.of(self.rt).stop()
        self.rt.engine.dispose()

    # -- provider requests --------------------------------------------------------------------------------

    def sms(self, sender: str, body: str, sid: str | None = None, signed: bool = True, **fields: str):
        """An inbound SMS (or WhatsApp message, from whatsapp:+...), with any extra form fields Twilio sends."""
        sid = sid or f"SM{next(self.ids):032d}"
        form = {**twilio_form(sender, body, sid), **fields}
        if sender.startswith("whatsapp:"):
            self.providers.wrote(sender, self.clock.now)
        path = "/webhooks/twilio/sms"
        headers = {"X-Twilio-Signature": twilio_signature(PUBLIC_URL + path, form)} if signed else {}
        return self.client.post(path, data=form, headers=headers)

    def telegram(self, update: dict[str, Any], secret: str | None = TELEGRAM_SECRET):
        headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret else {}
        return self.client.post("/webhooks/telegram", json=update, headers=headers)

    def telegram_text(self, chat_id: int, text: str, update_id: int | None = None):
        return self.telegram(telegram_message(update_id or next(self.ids), chat_id, text))

    def telegram_button(self, chat_id: int, data: str, update_id: int | None = None):
        return self.telegram(telegram_callback(update_id or next(self.ids), chat_id, data))

    def status(self, provider_id: str, status: str, error_code: str | None = None):
        form = {"MessageSid": provider_id, "MessageStatus": status, "AccountSid": TWILIO_SID,
                "SmsSid": provider_id, "SmsStatus": status, "ApiVersion": "2010-04-01",
                "From": TWILIO_FROM, "To": "+525512345678"}
        if error_code:
            form["ErrorCode"] = error_code
        path = "/webhooks/twilio/status"
        signature = twilio_signature(PUBLIC_URL + path, form)
        return self.client.post(path, data=form, headers={"X-Twilio-Signature": signature})

    # -- running the queue -------------------------------------------------------------------------------

    def settle(self) -> int:
        """Run queued jobs until nothing is left (inbound processing, then sending)."""
        return self.rt.dispatcher.run_pending()

    def sweep(self) -> dict[str, int]:
        from workers.sweeper import sweep

        result = sweep()
        self.settle()
        return result

    # -- reading results ----------------------------------------------------------------------------------

    def texts_to(self, address: str) -> list[str]:
        return [m.text for m in self.providers.to(address)]

    def api(self, path: str, token: str | None = None):
        return self.client.get(path, headers={"Authorization": f"Bearer {token or self.staff_token}"})

    def responses(self, survey: str = "reintegracion-mx") -> list[dict[str, Any]]:
        response = self.api(f"/api/v1/surveys/{survey}/responses?include_contact=true")
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.get_json()

    def count(self, sql: str, **params: Any) -> int:
        with self.rt.engine.connect() as connection:
            return connection.execute(text(sql), params).scalar_one()
