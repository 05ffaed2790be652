"""A copy of the bundled survey under its own id, with other weights and min_cell, served by a Harness."""

from __future__ import annotations

import pytest

from surveys.loader import bundled_files

SURVEY = "gaps-test"


def survey_text(min_cell: int = 7) -> str:
    text = bundled_files()[0].read_text(encoding="utf-8")
    text = text.replace("id: reintegracion-mx", f"id: {SURVEY}", 1)
    text = text.replace("start_keywords: [ENCUESTA, RETORNO, SURVEY]", "start_keywords: [BRECHAS]", 1)
    text = text.replace("min_cell: 10", f"min_cell: {min_cell}", 1)
    text = text.replace("  economic: 1\n  social: 1\n  psychosocial: 1",
                        "  economic: 2\n  social: 1\n  psychosocial: 0.5", 1)
    assert f"id: {SURVEY}" in text and "economic: 2" in text
    return text


@pytest.fixture
def surveys_dir(tmp_path):
    folder = tmp_path / "surveys"
    folder.mkdir()
    (folder / f"{SURVEY}.yaml").write_text(survey_text(), encoding="utf-8")
    return folder


@pytest.fixture
def gaps_harness(database_url, providers, tmp_path, surveys_dir):
    from tests.support import Harness

    h = Harness(database_url, providers, tmp_path, surveys_dir=surveys_dir)
    yield h
    h.close()
