"""`retorno surveys check`: the bundled survey is valid; each broken survey reports its problems by file and line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from service.cli import main
from surveys.loader import bundled_files, check_text, load_file

BROKEN = sorted((Path(__file__).parent / "data" / "broken").glob("*.yaml"))
EXPECT = re.compile(r"^# expect: (\d+): (.+)$", re.MULTILINE)
PROBLEM = re.compile(r"^(.+?):\d+: (?!warning: )")


def test_bundled_surveys_are_valid():
    assert bundled_files()
    for path in bundled_files():
        assert check_text(path.read_text()) == [], path


def test_bundled_survey_shape():
    survey = load_file(bundled_files()[0])
    assert survey.id == "reintegracion-mx"
    assert len(survey.questions) <= 22
    assert survey.questions[0].id == "consent"
    assert sum(q.type == "region" for q in survey.questions) == 1
    assert {q.dimension for q in survey.questions if q.dimension} == {"economic", "social", "psychosocial"}
    assert all(q.gap for q in survey.questions if q.dimension)
    assert {"returned", "return_type", "sex"} <= {q.id for q in survey.questions if q.group}
    never = ("migratoria", "papeles", "documentado", "immigration status", "legal status", "visa")
    for question in survey.questions:
        for text in question.text.values():
            assert not any(word in text.lower() for word in never), question.id


def test_cli_passes_the_bundled_survey():
    result = CliRunner().invoke(main, ["surveys", "check", *map(str, bundled_files())])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("path", BROKEN, ids=[p.stem for p in BROKEN])
def test_cli_reports_each_problem_with_file_and_line(path):
    result = CliRunner().invoke(main, ["surveys", "check", str(path)])
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines and all(line.startswith(f"{path}:") for line in lines), result.output
    expected = EXPECT.findall(path.read_text())
    assert expected, "a broken survey must say what it expects"
    for line, fragment in expected:
        assert any(
            out.startswith(f"{path}:{line}: ") and fragment in out for out in lines
        ), f"missing {line}: {fragment}\n{result.output}"


def test_cli_checks_several_files_and_folders_at_once():
    folder = BROKEN[0].parent
    result = CliRunner().invoke(main, ["surveys", "check", str(folder), *map(str, bundled_files())])
    assert result.exit_code == 1
    reported = {m.group(1) for line in result.output.splitlines() if (m := PROBLEM.match(line))}
    assert reported == {str(p) for p in BROKEN}


def test_cli_missing_file():
    result = CliRunner().invoke(main, ["surveys", "check", "/nonexistent/survey.yaml"])
    assert result.exit_code == 1
    assert result.output.startswith("/nonexistent/survey.yaml:1: ")


def test_every_bundled_question_fits_one_sms_segment():
    from surveys import engine
    from surveys.sms import segments as sms_segments

    survey = load_file(bundled_files()[0])
    for question in survey.questions:
        for language in survey.languages:
            state = engine.State(survey.id, survey.version, language, status="in_progress", question=question.id)
            body = engine.remind(survey, state).replies[0].plain()
            assert sms_segments(body) == 1, f"{question.id} ({language}) takes {sms_segments(body)} segments: {body!r}"
