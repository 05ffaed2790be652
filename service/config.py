"""Configuration from the environment (see CONTRACT.md), with embedded defaults for a bare machine."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path


class ConfigError(RuntimeError):
    """A setting is missing or wrong; the message says which and how to fix it."""


@dataclass(frozen=True)
class Settings:
    database_url: str
    redis_url: str | None
    secret_key: str
    data_dir: Path
    public_url: str
    default_survey: str = "reintegracion-mx"
    default_region: str = "MX"
    surveys_dir: Path | None = None
    twilio_account_sid: str | None = None
    twilio_auth_token: str | None = None
    twilio_from_number: str | None = None
    twilio_messaging_service_sid: str | None = None
    twilio_api_base: str = "https://api.twilio.com"
    telegram_bot_token: str | None = None
    telegram_webhook_secret: str | None = None
    telegram_api_base: str = "https://api.telegram.org"
    console_channel: bool = False
    sender_rate: float | None = None
    test_clock: bool = False
    # Incentives
    incentive_provider: str = "ledger"
    incentive_max_attempts: int = 6
    incentive_retry_seconds: float = 60.0
    incentive_hold_days: float = 30.0
    reloadly_client_id: str | None = None
    reloadly_client_secret: str | None = None
    reloadly_api_base: str = "https://topups.reloadly.com"
    reloadly_auth_url: str = "https://auth.reloadly.com/oauth/token"
    reloadly_timeout: float = 30.0
    # Privacy
    old_secret_keys: tuple[str, ...] = ()
    retention_days: float = 30.0
    """Message bodies and provider payloads are purged this long after processing (paid numbers after payment)."""
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def embedded_database(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def embedded_queue(self) -> bool:
        return not self.redis_url

    @property
    def twilio_inbound(self) -> bool:
        return bool(self.twilio_auth_token)

    @property
    def twilio_outbound(self) -> bool:
        return bool(
            self.twilio_account_sid
            and self.twilio_auth_token
            and (self.twilio_from_number or self.twilio_messaging_service_sid)
        )

    @property
    def telegram(self) -> bool:
        return bool(self.telegram_bot_token)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, port: int = 8000) -> Settings:
        env = os.environ if env is None else env

        def get(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        data_dir = Path(get("RETORNO_DATA_DIR") or "retorno-data").resolve()
        database_url = get("DATABASE_URL")
        if database_url is None:
            private_folder(data_dir)
            database_url = f"sqlite:///{data_dir / 'retorno.sqlite3'}"
        elif database_url.startswith("postgres://"):
            database_url = "postgresql+psycopg://" + database_url.removeprefix("postgres://")
        elif database_url.startswith("postgresql://"):
            database_url = "postgresql+psycopg://" + database_url.removeprefix("postgresql://")
        secret_key = get("RETORNO_SECRET_KEY")
        if secret_key is None:
            if not database_url.startswith("sqlite"):
                raise ConfigError(
                    "RETORNO_SECRET_KEY is required with DATABASE_URL: it encrypts contact addresses. "
                    "Generate one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'"
                )
            secret_key = _embedded_secret(data_dir)
        if len(secret_key) < 16:
            raise ConfigError("RETORNO_SECRET_KEY must be at least 16 characters long")
        surveys_dir = get("RETORNO_SURVEYS_DIR")
        if surveys_dir and not Path(surveys_dir).is_dir():
            raise ConfigError(f"RETORNO_SURVEYS_DIR={surveys_dir} is not a folder")
        rate = get("RETORNO_SEND_RATE")
        incentives = _incentive_settings(get)
        old_keys = tuple(k.strip() for k in (get("RETORNO_OLD_SECRET_KEYS") or "").split(",") if k.strip())
        retention = get("RETORNO_RETENTION_DAYS")
        try:
            retention_days = float(retention) if retention else 30.0
        except ValueError:
            raise ConfigError(f"RETORNO_RETENTION_DAYS={retention} is not a number of days") from None
        if retention_days <= 0:
            raise ConfigError("RETORNO_RETENTION_DAYS must be more than 0")
        return cls(
            database_url=database_url,
            redis_url=get("REDIS_URL"),
            secret_key=secret_key,
            data_dir=data_dir,
            public_url=(get("RETORNO_PUBLIC_URL") or f"http://127.0.0.1:{port}").rstrip("/"),
            default_survey=get("RETORNO_DEFAULT_SURVEY") or "reintegracion-mx",
            default_region=(get("RETORNO_DEFAULT_REGION") or "MX").upper(),
            surveys_dir=Path(surveys_dir) if surveys_dir else None,
            twilio_account_sid=get("TWILIO_ACCOUNT_SID"),
            twilio_auth_token=get("TWILIO_AUTH_TOKEN"),
            twilio_from_number=get("TWILIO_FROM_NUMBER"),
            twilio_messaging_service_sid=get("TWILIO_MESSAGING_SERVICE_SID"),
            twilio_api_base=(get("TWILIO_API_BASE") or "https://api.twilio.com").rstrip("/"),
            telegram_bot_token=get("TELEGRAM_BOT_TOKEN"),
            telegram_webhook_secret=get("TELEGRAM_WEBHOOK_SECRET"),
            telegram_api_base=(get("TELEGRAM_API_BASE") or "https://api.telegram.org").rstrip("/"),
            console_channel=(get("RETORNO_CONSOLE_CHANNEL") or "").lower() in ("1", "true", "yes"),
            sender_rate=float(rate) if rate else None,
            test_clock=(get("RETORNO_TEST_CLOCK") or "").lower() in ("1", "true", "yes"),
            old_secret_keys=old_keys,
            retention_days=retention_days,
            **incentives,
        )


def _incentive_settings(get) -> dict:
    """RETORNO_INCENTIVE_* and RELOADLY_* (see README, Incentives); a wrong value is a ConfigError."""
    provider = (get("RETORNO_INCENTIVE_PROVIDER") or "ledger").lower()
    if provider not in ("ledger", "reloadly"):
        raise ConfigError(f"RETORNO_INCENTIVE_PROVIDER={provider} is unknown; use ledger or reloadly")
    values: dict = {
        "incentive_provider": provider,
        "reloadly_client_id": get("RELOADLY_CLIENT_ID"),
        "reloadly_client_secret": get("RELOADLY_CLIENT_SECRET"),
        "reloadly_api_base": (get("RELOADLY_API_BASE") or "https://topups.reloadly.com").rstrip("/"),
        "reloadly_auth_url": get("RELOADLY_AUTH_URL") or "https://auth.reloadly.com/oauth/token",
    }
    if provider == "reloadly" and not (values["reloadly_client_id"] and values["reloadly_client_secret"]):
        raise ConfigError("RETORNO_INCENTIVE_PROVIDER=reloadly needs RELOADLY_CLIENT_ID and RELOADLY_CLIENT_SECRET")
    numbers = (
        ("RETORNO_INCENTIVE_MAX_ATTEMPTS", "incentive_max_attempts", int),
        ("RETORNO_INCENTIVE_RETRY_SECONDS", "incentive_retry_seconds", float),
        ("RETORNO_INCENTIVE_HOLD_DAYS", "incentive_hold_days", float),
        ("RELOADLY_TIMEOUT", "reloadly_timeout", float),
    )
    for name, field_name, kind in numbers:
        raw = get(name)
        if raw is None:
            continue
        try:
            value = kind(raw)
        except ValueError:
            raise ConfigError(f"{name}={raw} is not a number") from None
        if value <= 0:
            raise ConfigError(f"{name} must be more than 0")
        values[field_name] = value
    return values


def private_folder(folder: Path) -> None:
    """Make `folder` (the data folder) if needed, readable by its owner only (0700)."""
    folder.mkdir(parents=True, exist_ok=True)
    if folder.stat().st_mode & 0o077:
        os.chmod(folder, 0o700)


def _embedded_secret(data_dir: Path) -> str:
    """The secret of an embedded install: made once, kept in the data folder, readable by its owner only."""
    path = data_dir / "secret_key"
    if path.exists():
        if path.stat().st_mode & 0o077:
            os.chmod(path, 0o600)
        return path.read_text().strip()
    private_folder(data_dir)
    key = secrets.token_urlsafe(32)
    temporary = data_dir / f".secret_key.{os.getpid()}"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
    try:
        os.link(temporary, path)
    except FileExistsError:
        key = path.read_text().strip()
    finally:
        temporary.unlink()
    return key
