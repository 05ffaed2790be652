"""The bulk statements built from the models' tables (service/rows.py), pinned in tests/snapshots/rows.postgresql.sql
(`pytest --update-snapshots` after a reviewed change)."""

from __future__ import annotations

from dataclasses import fields

from service import rows
from service.models import SurveySession
from tests import snapshot
from workers import inbound


def test_the_bulk_statements_are_pinned(request):
    statements = {
        "inbound_messages (webhooks)": rows._INSERT_JSON,
        "new survey_sessions": inbound._NEW_SESSIONS_JSON.text,
        "changed survey_sessions": inbound._SESSIONS_JSON.text,
        "outbound_messages": inbound._OUTBOUND_JSON.text,
        "handled inbound_messages": inbound._HANDLED_JSON.text,
        "answers": inbound._ANSWERS_JSON.text,
    }
    text = "".join(f"-- {name}\n{sql};\n\n" for name, sql in statements.items())
    snapshot.check(request.config, "rows.postgresql.sql", text)


def test_a_session_row_is_the_table_s_columns_in_its_order():
    table = SurveySession.__table__.c
    assert rows.SESSION_READ == tuple(f.name for f in fields(rows.SessionRow) if f.name in table)
    assert set(rows.SESSION_CHANGING) <= set(rows.SESSION_READ)
    assert [c.name for c in inbound._SESSION_COLUMNS] == list(rows.SESSION_READ)
