"""The gap SQL each dialect runs, pinned (tests/snapshots/gaps.DIALECT.sql; `pytest --update-snapshots` after a
reviewed change), for the bundled survey and for a variant with a dimension weighted zero (indices counted apart)."""

from __future__ import annotations

import json

import pytest

from service.gaps import aggregate
from surveys.loader import load_text
from tests import snapshot
from tests.gaps.conftest import survey_text


def _sql(dialect: str, text: str) -> str:
    definition = load_text(text, "survey.yaml")
    plan = aggregate._Plan(dialect, definition, aggregate.indicators(definition),
                           aggregate.group_questions(definition))
    return f"{plan.sql}\n-- parameters: {json.dumps(plan.params, sort_keys=True)}\n-- width: {plan.width}\n"


@pytest.mark.parametrize("dialect", ["postgresql", "sqlite"])
def test_the_gap_sql_is_pinned(request, dialect):
    weighted_zero = survey_text().replace("psychosocial: 0.5", "psychosocial: 0", 1)
    assert "psychosocial: 0\n" in weighted_zero
    text = "\n\n".join(_sql(dialect, source) for source in (survey_text(), weighted_zero))
    snapshot.check(request.config, f"gaps.{dialect}.sql", text)
