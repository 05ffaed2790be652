"""Database engine and sessions: PostgreSQL in production, SQLite on a bare machine, migrations by Alembic."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import orjson
from sqlalchemy import BindParameter, Engine, bindparam, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).parent / "migrations"


def make_engine(url: str, pool_size: int = 5) -> Engine:
    """An engine tuned per dialect: WAL and a busy timeout for SQLite, a small pool for PostgreSQL."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin_immediate)
        return engine
    return create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        pool_recycle=1800,
        json_deserializer=orjson.loads,
        connect_args={"connect_timeout": 5, "application_name": "retorno"},
    )


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _sqlite_begin_immediate(connection) -> None:
    """Take SQLite's write lock at BEGIN, so concurrent writers queue instead of failing to upgrade."""
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def many(name: str) -> BindParameter:
    """A parameter holding a list, for `column.in_(many("ids"))` in a statement built once: the list is expanded
    at execution, where `in_(a_list)` makes a statement with a bound parameter per item each time."""
    return bindparam(name, expanding=True)


def json_rows(rows: list[dict]) -> str:
    """Rows as one JSON document for PostgreSQL's `jsonb_to_recordset`: a batch's rows in one parameter, far cheaper
    to encode than a multi-row VALUES list. Datetimes in ISO 8601 with their zone (UTC when they have none)."""
    return orjson.dumps(rows, option=orjson.OPT_NAIVE_UTC | orjson.OPT_NON_STR_KEYS).decode()


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session whose work is committed at the end of the block, or rolled back on error."""
    with factory() as session, session.begin():
        yield session


def upgrade(url: str, revision: str = "heads") -> None:
    """Apply Alembic migrations up to `revision`."""
    from alembic import command

    command.upgrade(alembic_config(url), revision)


def alembic_config(url: str):
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config
