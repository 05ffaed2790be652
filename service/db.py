"""Database engine and sessions: PostgreSQL in production, SQLite on a bare machine, migrations by Alembic."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import orjson
from sqlalchemy import Boolean, ColumnElement, Engine, any_, bindparam, create_engine, event
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql.visitors import InternalTraversal

MIGRATIONS = Path(__file__).parent / "migrations"

UNAVAILABLE, INVALID, CONFLICT, FAULT = "unavailable", "invalid", "conflict", "fault"
"""Why a database call failed (see `cause`)."""
_CAUSE_BY_SQLSTATE_CLASS = {
    "22": INVALID, "54": INVALID,  # data exception; program limit exceeded (a value too big to index, say)
    "23": CONFLICT,  # integrity constraint violation
    "08": UNAVAILABLE, "40": UNAVAILABLE, "53": UNAVAILABLE, "57": UNAVAILABLE, "58": UNAVAILABLE,
}
"""SQLSTATE classes: connection lost, deadlock or serialization failure, out of resources, shutdown or statement
timeout, system error: each worth trying again later."""


def aware(moment: datetime | None) -> datetime | None:
    """A time read back from the database, with its zone: SQLite gives naive UTC datetimes back, PostgreSQL aware
    ones."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def make_engine(url: str, pool_size: int = 5) -> Engine:
    """An engine tuned per dialect: WAL and a busy timeout for SQLite, a small pool for PostgreSQL."""
    if url.startswith("sqlite"):
        private_sqlite_file(url)
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


def private_sqlite_file(url: str) -> None:
    """Create the SQLite file readable by its owner only (0600), or make it so: SQLite gives its WAL and
    shared-memory files the database file's permissions."""
    path = url.split("///", 1)[1].split("?", 1)[0] if "///" in url else ""
    if not path or path == ":memory:":
        return
    file = Path(path)
    if not file.parent.exists():
        return
    if not file.exists():
        os.close(os.open(file, os.O_WRONLY | os.O_CREAT, 0o600))
    for part in (file, file.with_name(file.name + "-wal"), file.with_name(file.name + "-shm")):
        if part.exists() and part.stat().st_mode & 0o077:
            os.chmod(part, 0o600)


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


class among(ColumnElement[bool]):  # noqa: N801 - used like the SQL functions it stands for
    """`column IN (the list passed as parameter `name`)`, for statements built once and run with lists of any length.

    PostgreSQL gets one array parameter (`column = ANY(:name)`): the same SQL text whatever the list's length, so
    neither SQLAlchemy nor the driver renders and parses a parameter per item each time. Other databases get an
    expanding `IN`. (`column.in_(a_list)` would build a new statement, a bound parameter per item, every time.)
    """

    inherit_cache = True
    type = Boolean()
    _traverse_internals = [("column", InternalTraversal.dp_clauseelement), ("name", InternalTraversal.dp_string)]

    def __init__(self, column: ColumnElement, name: str):
        self.column = column
        self.name = name


@compiles(among)
def _among(element: among, compiler, **kw) -> str:
    return compiler.process(element.column.in_(bindparam(element.name, expanding=True)), **kw)


@compiles(among, "postgresql")
def _among_postgresql(element: among, compiler, **kw) -> str:
    values = bindparam(element.name, type_=postgresql.ARRAY(element.column.type))
    return compiler.process(element.column == any_(values), **kw)


def cause(error: BaseException) -> str:
    """Why a database call failed: UNAVAILABLE (lost or refused connection, timeout: try again later), INVALID (the
    database refused a value: the client's fault), CONFLICT (a constraint refused it) or FAULT (a bug of ours)."""
    if isinstance(error, TimeoutError) or getattr(error, "connection_invalidated", False):
        return UNAVAILABLE
    if isinstance(error, OverflowError):  # sqlite3 binding an integer beyond 64 bits
        return INVALID
    original = getattr(error, "orig", None) or error
    state = getattr(original, "sqlstate", None) or ""
    found = _CAUSE_BY_SQLSTATE_CLASS.get(state[:2]) or (UNAVAILABLE if state == "55P03" else None)
    if found:
        return found
    if state:
        return FAULT
    for kinds, why in ((("DataError",), INVALID), (("IntegrityError",), CONFLICT),
                       (("OperationalError", "InterfaceError"), UNAVAILABLE)):
        if any(kind in kinds for kind in _error_kinds(error, original)):
            return why
    return FAULT


def _error_kinds(*errors: BaseException) -> set[str]:
    """The DB-API exception class names of `errors` (same names for psycopg, sqlite3 and SQLAlchemy's wrappers)."""
    return {kind.__name__ for error in errors for kind in type(error).__mro__}


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

    if url.startswith("sqlite"):
        private_sqlite_file(url)
    command.upgrade(alembic_config(url), revision)


def alembic_config(url: str):
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config
