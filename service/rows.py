"""Rows written in bulk, described once beside the models (service/models.py): their columns and statements.

PostgreSQL gets a batch's rows as one JSON document (`jsonb_to_recordset`), typed as the model's table types them;
the statements are built here from the column names, so a new column is one more name, not six edits.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import Column, Connection, insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from service.db import json_rows
from service.models import Base, InboundMessage, SurveySession
from surveys.engine import State

SESSION_CHANGING = ("status", "question", "language", "region", "state", "consented_at", "completed_at")
"""The survey_sessions columns a message can change (with `last_activity_at` and `updated_at`)."""
SESSION_STAMPS = ("started_at", "last_activity_at", "updated_at")
"""Set by the batch when it writes a new session."""
OUTBOUND_NEW = ("contact_id", "session_id", "channel", "kind", "body", "payload", "status", "error", "attempts",
                "created_at")
"""The outbound_messages columns of a reply the inbound batch queues."""
ANSWER_COLUMNS = ("session_id", "question_id", "value", "skipped", "in_gap", "inbound_id", "answered_at")
INBOUND_NEW = ("channel", "provider_id", "address_hash", "address_enc", "body", "payload", "sequence", "received_at",
               "status", "attempts")
"""The inbound_messages columns a webhook stores (service.inbox.row_for)."""

_PG = postgresql.dialect()
_RECORD_TYPES = {"BIGINT": "bigint", "INTEGER": "int", "JSONB": "jsonb", "BOOLEAN": "boolean",
                 "TIMESTAMP WITH TIME ZONE": "timestamptz"}


def table_columns(model: type[Base], names: Sequence[str]) -> list[Column]:
    """The model's table columns of these names, in this order (a name the table lacks raises KeyError)."""
    return [model.__table__.c[name] for name in names]


def _record_type(column: Column) -> str:
    """How `jsonb_to_recordset` reads the column: text for strings, else the column's own type."""
    return _RECORD_TYPES.get(column.type.dialect_impl(_PG).compile(dialect=_PG), "text")


def recordset(model: type[Base], names: Sequence[str], document: str = "CAST(:rows AS jsonb)",
              as_text: Sequence[str] = ()) -> str:
    """`jsonb_to_recordset(DOCUMENT) AS r(name type, ...)`, typed as the table types the columns (`as_text`: read
    as text, for the statement to convert)."""
    typed = ", ".join(f"{column.name} {'text' if column.name in as_text else _record_type(column)}"
                      for column in table_columns(model, names))
    return f"jsonb_to_recordset({document}) AS r({typed})"


def insert_from_json(model: type[Base], names: Sequence[str], constants: Mapping[str, str] | None = None,
                     as_text: Mapping[str, str] | None = None, tail: str = "",
                     document: str = "CAST(:rows AS jsonb)") -> str:
    """INSERT of every row of the JSON document; `constants`: columns given as SQL, `as_text`: SQL reading a
    column given as text; `tail`: ON CONFLICT, ORDER BY or RETURNING."""
    constants, as_text = constants or {}, as_text or {}
    targets = [*names, *constants]
    selected = [as_text.get(name, name) for name in names] + list(constants.values())
    statement = (f"INSERT INTO {model.__tablename__} ({', '.join(targets)}) SELECT {', '.join(selected)} "
                 f"FROM {recordset(model, names, document, tuple(as_text))}")
    return f"{statement} {tail}" if tail else statement


def update_from_json(model: type[Base], names: Sequence[str], constants: Mapping[str, str] | None = None) -> str:
    """UPDATE of the rows the JSON document names by `id`: these columns from the document, `constants` as SQL."""
    sets = [f"{name} = r.{name}" for name in names] + [f"{name} = {value}" for name, value in (constants or {}).items()]
    return (f"UPDATE {model.__tablename__} AS t SET {', '.join(sets)} "
            f"FROM {recordset(model, ['id', *names])} WHERE t.id = r.id")


def upsert(key: Sequence[str], names: Sequence[str]) -> str:
    """ON CONFLICT (key) DO UPDATE of these columns from the row that was refused."""
    return (f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET "
            f"{', '.join(f'{name} = excluded.{name}' for name in names)}")


@dataclass(slots=True, eq=False)
class SessionRow:
    """A survey session as an inbound batch reads and changes it (plain values; the batch writes them itself)."""

    id: int
    contact_id: int
    survey_id: str
    version: int
    wave: int
    status: str
    question: str | None
    language: str
    region: str | None
    state: dict[str, Any]
    consented_at: datetime | None
    completed_at: datetime | None
    unwritten: bool = False
    """Created in this batch and not in the database yet."""
    live: State | None = None
    """The engine's state after the batch's latest message here: turned into `state` only when written."""

    def engine_state(self) -> State:
        """The state the next message starts from."""
        return self.live if self.live is not None else State.from_dict(self.state)

    def columns(self) -> dict[str, Any]:
        """Every column the batch knows, for an INSERT (without `id` until it has one)."""
        values = {"contact_id": self.contact_id, "survey_id": self.survey_id, "version": self.version,
                  "wave": self.wave, **self.changes()}
        if not self.id:
            del values["id"]
        return values

    def changes(self) -> dict[str, Any]:
        """The id and the columns a message can change, for an UPDATE."""
        values = {"id": self.id, **{name: getattr(self, name) for name in SESSION_CHANGING}}
        if self.live is not None:
            values["state"] = self.live.to_dict()
        return values


SESSION_READ = tuple(field.name for field in fields(SessionRow) if field.name in SurveySession.__table__.c)
"""What the inbound batch reads of a session: SessionRow's columns, in its order."""




def insert_new(session: Session | Connection, rows: list[dict]) -> list[int | None]:
    """One INSERT ... ON CONFLICT DO NOTHING for all rows; per row its new id, or None if it was already stored."""
    if not rows:
        return []
    unique: dict[tuple[str, str], dict] = {}
    for row in rows:
        unique.setdefault((row["channel"], row["provider_id"]), row)
    dialect = session.get_bind().dialect.name if isinstance(session, Session) else session.dialect.name
    if dialect == "postgresql":
        returned = _insert_postgres(session, list(unique.values()))
    else:
        returned = _insert_portable(session, list(unique.values()))
    new = {(channel, provider_id): id_ for id_, channel, provider_id in returned}
    return [new.pop((row["channel"], row["provider_id"]), None) for row in rows]


_INSERT_JSON = insert_from_json(InboundMessage, INBOUND_NEW, document="%s::jsonb",
                                tail="ON CONFLICT (channel, provider_id) DO NOTHING RETURNING id, channel, provider_id")


def _insert_postgres(session: Session | Connection, rows: list[dict]) -> list:
    """One prepared statement for the whole batch, its rows sent as one JSON document.

    Straight on the driver: encoding one JSON text costs a third of the CPU of per-column arrays through the ORM,
    and the committer thread's CPU is shared with every request thread of its process.
    """
    connection = session.connection() if isinstance(session, Session) else session
    driver = connection.connection.driver_connection
    document = json_rows(rows)
    with driver.cursor() as cursor:
        cursor.execute(_INSERT_JSON, (document,), prepare=True)
        return cursor.fetchall()


def _insert_portable(session: Session, rows: list[dict]) -> list:
    dialect = session.get_bind().dialect.name
    statement = {"sqlite": sqlite.insert}.get(dialect, insert)(InboundMessage)
    if dialect == "sqlite":
        statement = statement.on_conflict_do_nothing(index_elements=["channel", "provider_id"])
    returning = statement.returning(
        InboundMessage.id, InboundMessage.channel, InboundMessage.provider_id, sort_by_parameter_order=True
    )
    return session.execute(returning, rows).all()
