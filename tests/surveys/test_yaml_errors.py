"""YAML syntax errors are reported at the line a person would fix, in a survey author's words, with the parser's
own message after them; aliases are refused, so an alias bomb cannot hang `surveys check`."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from service.cli import main
from surveys.loader import check_text

SURVEY = """\
id: demo
version: 1
title: {es: Demo, en: Demo}
languages: [es, en]
default_language: es
consent:
  text: {es: ¿Acepta?, en: Agree?}
questions:
  - id: state
    type: region
    text: {es: ¿Estado?, en: State?}
  - id: income
    type: yes_no
    text: {es: ¿Alcanza?, en: Enough?}
    dimension: economic
    gap: ["no"]
"""

# label: (line to change, its new text, the line reported, words the report must have)
BROKEN = {
    "indented more than the line above": (13, "      type: yes_no", 13, "indented more than the line above it"),
    "indented less than the line above": (13, "   type: yes_no", 13, "indented less than the line above it"),
    "a key dedented out of its question": (14, "  text: {es: a, en: b}", 14, "indented less than the line above it"),
    "a list item out of line": (12, "    - id: income", 12, "this list item is indented 4 spaces"),
    "the first line of a block, too deep": (3, "title:\n    es: Demo\n  en: Demo", 4,
                                            "indented more than the lines below"),
    "a tab for indentation": (13, "\ttype: yes_no", 13, "a tab character"),
    "a tab after spaces": (15, "  \t dimension: economic", 15, "replace the tab with spaces"),
    "an unclosed double quote": (14, '    text: {es: "¿Alcanza?, en: Enough?}', 14, 'the quote (") opened'),
    "an unclosed single quote": (11, "    text: {es: '¿Estado?, en: State?}", 11, "the quote (') opened"),
    "an unclosed brace": (14, "    text: {es: ¿Alcanza?, en: Enough?", 14, "the { opened on this line is never closed"),
    "a duplicate key": (13, "    type: yes_no\n    type: choice", 14,
                        "'type' is given twice in the same block (first on line 13)"),
    "a duplicate top-level key": (2, "version: 1\nversion: 2", 3, "'version' is given twice"),
    "a missing colon": (13, "    type yes_no", 13, "a colon is missing after 'type'"),
    "a missing colon before a mapping": (14, "    text {es: a, en: b}", 14, "a colon is missing after 'text'"),
    "a missing colon on a list item": (12, "  - id income", 12, "a colon is missing after 'id'"),
    "a missing colon at the top": (5, "default_language es", 5, "a colon is missing after 'default_language'"),
    "a colon inside a text": (14, "    text: Hora: 10", 14, "needs quotes"),
    "a colon inside a text in braces": (14, "    text: {es: Hora: 10, en: Time}", 14,
                                        "contains a colon: put the text in quotes"),
}


def _broken(line: int, new: str) -> str:
    lines = SURVEY.splitlines()
    lines[line - 1] = new
    return "\n".join(lines) + "\n"


def test_the_base_survey_is_valid():
    assert check_text(SURVEY) == []


@pytest.mark.parametrize("label", BROKEN)
def test_each_yaml_error_is_reported_at_the_line_to_fix(label):
    line, new, reported, words = BROKEN[label]
    [problem] = check_text(_broken(line, new))
    assert problem.line == reported, problem
    assert words in problem.message, problem.message
    advice, parser = problem.message.split(" (parser: ", 1)
    assert advice.startswith("YAML: ") and parser.endswith(")"), "the parser's own message comes after the advice"
    assert "<block" not in advice and "scalar" not in advice, "the advice is in a survey author's words"


def test_the_cli_line_names_the_file_and_the_line(tmp_path):
    path = tmp_path / "m1-indent.yaml"
    path.write_text(_broken(13, "      type: yes_no"))
    result = CliRunner().invoke(main, ["surveys", "check", str(path)])
    assert result.exit_code == 1
    assert result.output.startswith(f"{path}:13: YAML: this line is indented more than the line above it "
                                    "(6 spaces instead of 4) (parser: mapping values are not allowed here)")


@pytest.mark.timeout(30)
def test_a_billion_laughs_is_refused_at_once(tmp_path):
    """Expanded, this file is 10**9 strings (minutes and gigabytes); refused, it takes milliseconds."""
    lines = ['lol0: &lol0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"lol{i}: &lol{i} [{', '.join([f'*lol{i - 1}'] * 9)}]" for i in range(1, 10)]
    path = tmp_path / "laughs.yaml"
    path.write_text(SURVEY.replace("title: {es: Demo, en: Demo}", "title: *lol9") + "\n".join(lines) + "\n")
    result = CliRunner().invoke(main, ["surveys", "check", str(path)])
    assert result.exit_code == 1
    [line] = result.output.splitlines()
    assert line.startswith(f"{path}:3: YAML: aliases (*name) are not allowed in a survey file"), line


def test_merge_keys_are_aliases_too():
    text = SURVEY.replace("consent:\n", "defaults: &d {required: true}\nconsent:\n").replace(
        "    type: region\n", "    type: region\n    <<: *d\n")
    [problem] = check_text(text)
    assert problem.line == 12 and "aliases" in problem.message


def test_deep_nesting_is_refused_without_a_crash():
    [problem] = check_text("id: " + "[" * 50_000 + "]" * 50_000 + "\n")
    assert problem.line == 1 and "nested more than" in problem.message
    assert "max_depth" not in problem.message, "no advice meant for programmers"
