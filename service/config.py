"""Configuration from the environment (see docs/api.md), with embedded defaults for a bare machine."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path


class ConfigError(RuntimeError):
    """A setting is missing or wrong; the message says which and how to fix it."""


EMBEDDED_DATABASE = "retorno.sqlite3"
DATABASE_FORMS = "postgresql://USER:PASSWORD@HOST:5432/DATABASE or sqlite:///PATH"


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
    voice_callback: bool = False
    """RETORNO_VOICE_CALLBACK=on: incoming calls are rejected (free for the caller) and called back."""
    voice_quiet_hours: str = "21:00-08:00"
    voice_timezone: str = "America/Mexico_City"
    sender_rate: float | None = None
    test_clock: bool = False
    access_log: bool = False
    """RETORNO_ACCESS_LOG (on unless 0/false/no/off): a web process writes one line per request (service.access_log)."""
    # The local spool of webhooks the database could not take (service.spool)
    spool_dir: Path | None = None
    spool_max_mb: float = 256.0
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
    def spool_path(self) -> Path:
        """Where this machine spools webhooks while the database is down: RETORNO_SPOOL_DIR, else the data folder."""
        return self.spool_dir or self.data_dir / "spool"

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

        data_dir = _data_dir(get)
        database_url = get("DATABASE_URL")
        if database_url is None:
            private_folder(data_dir)
            database_url = f"sqlite:///{data_dir / EMBEDDED_DATABASE}"
        elif database_url.startswith("postgres://"):
            database_url = "postgresql+psycopg://" + database_url.removeprefix("postgres://")
        elif database_url.startswith("postgresql://"):
            database_url = "postgresql+psycopg://" + database_url.removeprefix("postgresql://")
        _check_database_url(database_url)
        _check_redis_url(get("REDIS_URL"))
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
        spool_dir = get("RETORNO_SPOOL_DIR")
        spool_max_mb = _positive(get, "RETORNO_SPOOL_MAX_MB", float, 256.0)
        old_keys = tuple(k.strip() for k in (get("RETORNO_OLD_SECRET_KEYS") or "").split(",") if k.strip())
        retention_days = _positive(get, "RETORNO_RETENTION_DAYS", float, 30.0)
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
            voice_callback=(get("RETORNO_VOICE_CALLBACK") or "").lower() in ("1", "on", "true", "yes"),
            voice_quiet_hours=get("RETORNO_VOICE_QUIET_HOURS") or "21:00-08:00",
            voice_timezone=get("RETORNO_VOICE_TIMEZONE") or "America/Mexico_City",
            sender_rate=float(rate) if rate else None,
            test_clock=(get("RETORNO_TEST_CLOCK") or "").lower() in ("1", "true", "yes"),
            access_log=(get("RETORNO_ACCESS_LOG") or "on").lower() not in ("0", "false", "no", "off"),
            spool_dir=Path(spool_dir).resolve() if spool_dir else None,
            spool_max_mb=spool_max_mb,
            old_secret_keys=old_keys,
            retention_days=retention_days,
            **incentives,
        )


def embedded_database(env: Mapping[str, str] | None = None) -> Path | None:
    """The SQLite file the embedded mode uses (None with DATABASE_URL): RETORNO_DATA_DIR's, or ./retorno-data's."""
    env = os.environ if env is None else env
    if env.get("DATABASE_URL", "").strip():
        return None
    return _data_dir(lambda name: env.get(name, "").strip() or None) / EMBEDDED_DATABASE


def sqlite_file(url: str) -> Path | None:
    """The file of a `sqlite:///PATH` DATABASE_URL (None for any other URL, or an in-memory database)."""
    url = url.strip()
    if not url.startswith("sqlite") or "///" not in url:
        return None
    path = url.split("///", 1)[1].split("?", 1)[0]
    return Path(path).resolve() if path and path != ":memory:" else None


def _data_dir(get) -> Path:
    return Path(get("RETORNO_DATA_DIR") or "retorno-data").resolve()


def _check_database_url(url: str) -> None:
    """A URL SQLAlchemy can read, for PostgreSQL through psycopg or for SQLite; ConfigError naming the fix otherwise."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        raise ConfigError(f"DATABASE_URL is not a database URL; write it as {DATABASE_FORMS}") from None
    backend, driver = parsed.get_backend_name(), parsed.get_driver_name()
    if backend not in ("postgresql", "sqlite"):
        raise ConfigError(f"DATABASE_URL is a {backend} URL; Retorno runs on PostgreSQL or SQLite: {DATABASE_FORMS}")
    if backend == "postgresql" and driver != "psycopg":
        raise ConfigError(
            f"DATABASE_URL asks for the {driver} driver; write it as postgresql://... (Retorno uses psycopg 3)"
        )
    if backend == "postgresql" and not parsed.database:
        raise ConfigError(f"DATABASE_URL names no database; write it as {DATABASE_FORMS}")
    if backend == "sqlite" and parsed.database and parsed.database != ":memory:":
        folder = Path(parsed.database).resolve().parent
        if not folder.is_dir():
            raise ConfigError(
                f"DATABASE_URL is a SQLite file in {folder}, which does not exist; create the folder first"
            )


def _check_redis_url(url: str | None) -> None:
    """A Redis URL redis-py can read; ConfigError naming the fix otherwise."""
    if url is None:
        return
    from redis.connection import ConnectionPool

    try:
        ConnectionPool.from_url(url)
    except ValueError as error:
        raise ConfigError(f"REDIS_URL is not a Redis URL ({error}); write it as redis://HOST:6379/0") from None


def masked(url: str) -> str:
    """A database or Redis URL without its password, fit for messages and logs."""
    from urllib.parse import urlsplit, urlunsplit

    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        host = parts.netloc.rpartition("@")[2]
        return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))
    except ValueError:
        return "(unreadable URL)"


def check_reachable(settings: Settings, timeout: float = 5.0) -> None:
    """Connect once to the database and to Redis (when configured); ConfigError with what failed and the fix."""
    if not settings.embedded_database:
        import psycopg
        from sqlalchemy.engine import make_url

        url = make_url(settings.database_url)
        try:
            psycopg.connect(url.set(drivername="postgresql").render_as_string(hide_password=False),
                            connect_timeout=max(1, int(timeout))).close()
        except psycopg.Error as error:
            reason = " ".join(str(error).split())
            raise ConfigError(
                f"DATABASE_URL {masked(settings.database_url)} cannot be reached ({reason}); "
                "check its host, port, user, password and database name, and that PostgreSQL is running"
            ) from None
    if settings.redis_url:
        from redis import Redis
        from redis.exceptions import RedisError

        try:
            Redis.from_url(settings.redis_url, socket_connect_timeout=timeout, socket_timeout=timeout).ping()
        except RedisError as error:
            raise ConfigError(
                f"REDIS_URL {masked(settings.redis_url)} cannot be reached ({error}); "
                "check its host, port and password, and that Redis is running"
            ) from None


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
        value = _positive(get, name, kind, None)
        if value is not None:
            values[field_name] = value
    return values


def _positive(get, name: str, kind, default):
    """A positive number from the environment, or `default` when unset; a wrong value is a ConfigError."""
    raw = get(name)
    if raw is None:
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw} is not a number") from None
    if not value > 0:
        raise ConfigError(f"{name} must be more than 0")
    return value


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
