"""`retorno surveys check`: the bundled survey is valid; each broken survey reports its problems by file and line."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from service.cli import main
from surveys import sms
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

    survey = load_file(bundled_files()[0])
    for question in survey.questions:
        for language in survey.languages:
            state = engine.State(survey.id, survey.version, language, status="in_progress", question=question.id)
            body = engine.remind(survey, state).replies[0].plain()
            assert sms.segments(body) == 1, f"{question.id} ({language}) takes {sms.segments(body)} segments: {body!r}"


def test_disclosure_settings_are_checked_and_loaded():
    """min_cell below 5 and release intervals that are not durations (or under an hour) are refused (issue 15)."""
    from surveys.loader import SurveyError, load_text

    text = bundled_files()[0].read_text(encoding="utf-8")
    assert load_file(bundled_files()[0]).release_interval == 86400
    assert load_text(text.replace("release_interval: 1d", "release_interval: 12h")).release_interval == 43200
    assert load_text(text.replace("min_cell: 10", "min_cell: 5")).min_cell == 5
    for setting, fragment in (("min_cell: 4", "min_cell: 4 is below 5"),
                              ("min_cell: 0", "min_cell: 0 is below 5"),
                              ("release_interval: soon", "release_interval: 'soon' is not a duration"),
                              ("release_interval: 12", "release_interval: 12 is not a duration"),
                              ("release_interval: 59m", "release_interval: 59m is shorter than 1h")):
        changed = text.replace("min_cell: 10", setting) if setting.startswith("min_cell") \
            else text.replace("release_interval: 1d", setting)
        problems = check_text(changed)
        assert len(problems) == 1 and fragment in problems[0].message, (setting, problems)
        assert problems[0].line == changed.splitlines().index(setting) + 1
        with pytest.raises(SurveyError, match=fragment):
            load_text(changed, "survey.yaml")


def test_a_clean_check_says_what_it_checked(tmp_path):
    bundled = bundled_files()[0]
    second = tmp_path / "second.yaml"
    second.write_text(bundled.read_text().replace("id: reintegracion-mx", "id: segunda"))
    questions = len(load_file(bundled).questions) - 1  # the consent question aside
    result = CliRunner().invoke(main, ["surveys", "check", str(bundled), str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == f"2 surveys, {2 * questions} questions, no problems"
    one = CliRunner().invoke(main, ["surveys", "check", str(bundled)])
    assert one.output.splitlines()[-1] == f"1 survey, {questions} questions, no problems"


def test_a_folder_without_surveys_is_not_a_clean_check(tmp_path):
    result = CliRunner().invoke(main, ["surveys", "check", str(tmp_path)])
    assert result.exit_code == 1
    assert result.output == f"{tmp_path}:1: no survey files here (*.yaml, *.yml)\n"


# -- SMS cost and collisions (issue 13) -------------------------------------------------------------------------

SHORT = """\
id: short
version: 1
title: {es: Corta, en: Short}
languages: [es, en]
default_language: es
consent: {text: {es: ¿Acepta?, en: Agree?}}
questions:
  - id: long
    type: yes_no
    text:
      es: TEXT_ES
      en: Is this short?
  - id: help
    type: choice
    required: false
    text: {es: ¿Qué recibió?, en: What did you get?}
    choices:
      - {value: gov, label: {es: Ayuda del gobierno, en: Government help}}
      - value: other
        label: {es: Otra o prefiero no decir, en: Other}
        synonyms: {es: [gobierno]}
  - id: state
    type: region
    text: {es: ¿Estado?, en: State?}
"""
LONG_UCS2 = "¿" + "Cuántas personas viven en su casa, contando niños y adultos mayores, y cuántas de ellas " \
            "trabajan o estudian? Díganos el número más aproximado que sepa, por favor" + "?"


def _short(tmp_path, text_es: str = "¿Es corta?") -> Path:
    path = tmp_path / "short.yaml"
    path.write_text(SHORT.replace("TEXT_ES", text_es), encoding="utf-8")
    return path


def test_check_prints_the_segment_table_of_the_bundled_survey():
    [bundled] = bundled_files()
    result = CliRunner().invoke(main, ["surveys", "check", "--max-segments", "1", str(bundled)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith(f"{bundled}: reintegracion-mx v2, 21 questions (18 to 21 asked after consent)")
    assert re.match(r"^\s+question\s+lang\s+question\s+re-prompt\s+help$", lines[2])
    survey = load_file(bundled)
    rows = [line for line in lines[3:] if re.match(r"^\s+(\w+\s+)?(es|en)\s+GSM", line)]
    assert len(rows) == len(survey.questions) * 2
    for row in rows:
        assert re.findall(r"(GSM-7|UCS-2)\s+\d+ (\d+)", row) == [("GSM-7", "1")] * 3, row
    assert any(line.strip().startswith("other messages:") and "at most 1 SMS" in line for line in lines)
    assert any(line.strip().startswith("longest path") and "es 21 questions" in line for line in lines)


def test_a_long_ucs2_question_is_a_warning_and_an_error_past_max_segments(tmp_path):
    path = _short(tmp_path, LONG_UCS2)
    result = CliRunner().invoke(main, ["surveys", "check", str(path)])
    assert result.exit_code == 0, result.output
    [warning] = [line for line in result.output.splitlines() if "question 'long' (es) question" in line]
    characters = sms.characters(f"{LONG_UCS2} (SI/NO)")
    assert warning.startswith(f"{path}:8: warning: question 'long' (es) question takes 3 SMS (UCS-2, {characters} ")
    assert "'á' 'í' 'ú' force UCS-2" in warning
    result = CliRunner().invoke(main, ["surveys", "check", "--max-segments", "2", str(path)])
    assert result.exit_code == 1
    assert f"{path}:8: question 'long' (es) question takes 3 SMS" in result.output
    assert "more than --max-segments 2" in result.output
    result = CliRunner().invoke(main, ["surveys", "check", "--max-segments", "4", str(path)])
    assert result.exit_code == 0


def test_check_reports_labels_that_collide_with_skip_words_keywords_and_other_choices(tmp_path):
    path = _short(tmp_path)
    result = CliRunner().invoke(main, ["surveys", "check", str(path)])
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.output.splitlines() if ": warning: " in line]
    assert f"{path}:18: warning: question 'help': label 'Ayuda del gobierno' contains the keyword 'AYUDA'" \
           in "\n".join(warnings)
    assert any(w.startswith(f"{path}:20: warning: question 'help': label 'Otra o prefiero no decir' contains the "
                            "skip word 'prefiero no decir'") for w in warnings)
    assert not any("'Other'" in w for w in warnings)


def test_check_as_json(tmp_path):
    path = _short(tmp_path, LONG_UCS2)
    broken = BROKEN[0]
    result = CliRunner().invoke(main, ["surveys", "check", "--json", str(path), str(broken)])
    assert result.exit_code == 1
    assert result.output.endswith("}\n")
    found = json.loads(result.output)["files"]
    assert [f["file"] for f in found] == [str(path), str(broken)]
    short, bad = found
    assert short["valid"] and short["questions_asked"] == {"min": 3, "max": 3}
    assert {"question": "long", "language": "es", "kind": "question", "encoding": "UCS-2",
            "characters": sms.characters(f"{LONG_UCS2} (SI/NO)"), "segments": 3,
            "line": 8} == {k: v for k, v in short["over_limit"][0].items() if k != "text"}
    assert {m["kind"] for m in short["messages"]} == {"question", "reprompt", "help"}
    assert short["longest_path"]["en"]["segments"] >= 4
    assert any("keyword 'AYUDA'" in w["message"] for w in short["warnings"])
    assert not bad["valid"] and bad["problems"] and "messages" not in bad


def test_the_worst_path_counts_reprompts_and_help_and_warns_above_the_segment_budget(tmp_path):
    path = _short(tmp_path)
    result = CliRunner().invoke(main, ["surveys", "check", "--json", str(path)])
    [short] = json.loads(result.output)["files"]
    longest, worst = short["longest_path"]["es"], short["worst_path"]["es"]
    # consent + 3 questions, each asked again 3 times (max_reprompts), HELP once, the thanks
    assert worst["messages"] >= longest["messages"] + 4 * 3 + 1 and worst["segments"] > longest["segments"]
    assert short["segment_budget"] is None and short["over_budget"] == []
    result = CliRunner().invoke(main, ["surveys", "check", str(path)])
    assert "worst path (each question asked again 3 times, HELP once): es " in result.output
    assert "segment_budget" not in result.output

    path.write_text(path.read_text().replace("version: 1\n", "version: 1\nsegment_budget: 10\n"))
    result = CliRunner().invoke(main, ["surveys", "check", str(path)])
    assert result.exit_code == 0, result.output
    [warning, _] = [line for line in result.output.splitlines() if "segment_budget" in line]
    assert warning.startswith(f"{path}:3: warning: segment_budget: the worst path in es sends {worst['segments']} "
                              "SMS, more than the budget of 10")
    result = CliRunner().invoke(main, ["surveys", "check", "--json", str(path)])
    assert json.loads(result.output)["files"][0]["over_budget"] == ["es", "en"]


def test_the_reprompts_measured_include_refusals_minors_and_which_region(tmp_path):
    survey = load_file(bundled_files()[0])
    from surveys import engine

    for language in survey.languages:
        sent = engine.rehearse(survey, "age_band", language)
        texts = "\n".join(r.plain() for replies in sent["reprompt"] for r in replies)
        assert survey.message("confirm_age", language, age=17) in texts
        assert survey.message("refused", language) in texts
        sent = engine.rehearse(survey, "state", language)
        texts = "\n".join(r.plain() for replies in sent["reprompt"] for r in replies)
        assert "Baja California" in texts and "BAJA" in texts
