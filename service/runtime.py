"""The per-process wiring that webhooks and jobs share: settings, database, vault, survey catalog, queue, clock."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from service.catalog import Catalog
from service.config import Settings
from service.db import make_engine, session_factory
from service.privacy import Vault
from service.queue import Dispatcher, EmbeddedDispatcher, RedisDispatcher


def system_clock() -> datetime:
    return datetime.now(UTC)


@dataclass(eq=False)
class Runtime:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    vault: Vault
    dispatcher: Dispatcher
    clock: Callable[[], datetime] = system_clock
    pid: int = field(default_factory=os.getpid)
    _catalog: Catalog | None = None

    @property
    def catalog(self) -> Catalog:
        if self._catalog is None:
            self._catalog = Catalog(self)
        return self._catalog

    def now(self) -> datetime:
        return self.clock()


_current: Runtime | None = None
_lock = threading.Lock()


def build(settings: Settings, dispatcher: Dispatcher | None = None, pool_size: int = 5) -> Runtime:
    from service import logs

    logs.install(settings)
    engine = make_engine(settings.database_url, pool_size=pool_size)
    vault = Vault(settings.secret_key, settings.old_secret_keys)
    vault.load_hash_key_with(lambda v: kept_hash_key(engine, v))
    if dispatcher is None:
        dispatcher = EmbeddedDispatcher() if settings.embedded_queue else RedisDispatcher(settings.redis_url)
    runtime = Runtime(
        settings=settings,
        engine=engine,
        sessions=session_factory(engine),
        vault=vault,
        dispatcher=dispatcher,
    )
    if settings.test_clock and settings.redis_url:
        from service.testclock import SharedClock

        runtime.clock = SharedClock(settings.redis_url)
    return runtime


def kept_hash_key(engine: Engine, vault: Vault) -> bytes | None:
    """The hashing key kept in the database by `retorno keys rotate`, or None (never rotated, or not migrated).

    Read on a plain driver connection: the first hash may come inside a SQLite write transaction, which a second
    transaction of this process would wait for forever."""
    try:
        connection = engine.raw_connection()
    except engine.dialect.loaded_dbapi.Error as error:  # the database is down: as any query would say it
        raise OperationalError("SELECT sealed FROM vault_keys", None, error) from error
    try:
        cursor = connection.cursor()
        try:
            cursor.execute("SELECT sealed FROM vault_keys WHERE name = 'hash'")
            row = cursor.fetchone()
        except Exception as error:  # no such table yet (before migrations): nothing kept; anything else is raised
            if "vault_keys" not in str(error):
                raise
            row = None
        finally:
            cursor.close()
        connection.rollback()
    finally:
        connection.close()
    return vault.open_key(row[0]) if row else None


def install(runtime: Runtime) -> Runtime:
    """Make `runtime` the one `current()` returns in this process."""
    global _current
    _current = runtime
    return runtime


def current() -> Runtime:
    """This process's runtime, built from the environment on first use (and rebuilt after a fork)."""
    global _current
    with _lock:
        if _current is None:
            _current = build(Settings.from_env())
        elif _current.pid != os.getpid():
            _current.engine.dispose(close=False)
            _current.pid = os.getpid()
        return _current


def reset() -> None:
    global _current
    with _lock:
        if _current is not None:
            _current.engine.dispose()
        _current = None
