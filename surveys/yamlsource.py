"""A survey's YAML source read safely, and its syntax errors explained at the line a person would fix.

The parser reports where it noticed a problem, often far below where it is (an indent at line 32 is "while
parsing a block collection" at line 15). `explain` turns that into the line to edit and what to do there, in
a survey author's words, with the parser's own message after it. Aliases (`*name`) are refused: a few lines of
them can expand into billions of nodes (the "billion laughs"), and a survey never needs them.
"""

from __future__ import annotations

import re
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.composer import Composer, ComposerError
from ruamel.yaml.constructor import DuplicateKeyError
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import AliasEvent

MAX_DEPTH = 40
_KEY = re.compile(r"^(\s*)(?:-\s+)*([^\s:#'\"{}\[\],]+|\"[^\"]*\"|'[^']*')\s*:(?:\s|$)")
_LEAD = re.compile(r"^ *(?:- +)*")
_DUPLICATE = re.compile(r'found duplicate key "(.*?)"')


class YamlProblem(ValueError):
    """The source cannot be read as YAML; `line` (1-based) is where to fix it, `message` says how."""

    def __init__(self, line: int, message: str):
        self.line = line
        self.message = message
        super().__init__(f"{line}: {message}")


class _NoAliases(Composer):
    """A composer that refuses aliases before they can be expanded."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.parser.check_event(AliasEvent):
            event = self.parser.get_event()
            raise ComposerError(None, None, f"found alias *{event.anchor}", event.start_mark)
        return super().compose_node(parent, index)


def load(text: str) -> Any:
    """The YAML document in `text` (ruamel's round-trip tree, which keeps line numbers); raises YamlProblem."""
    yaml = YAML(typ="rt")
    yaml.Composer = _NoAliases
    yaml.max_depth = MAX_DEPTH
    try:
        return yaml.load(text)
    except YAMLError as error:
        raise YamlProblem(*explain(error, text)) from None


def explain(error: YAMLError, text: str) -> tuple[int, str]:
    """(line, message) for a parser error: the line a person would edit, what is wrong there, the parser's words."""
    if not isinstance(error, MarkedYAMLError):
        return 1, f"YAML: the file cannot be read as YAML (parser: {error})"
    lines = text.splitlines()
    problem = (error.problem or "").split(", if necessary")[0]
    context = error.context or ""
    problem_line = error.problem_mark.line if error.problem_mark else 0
    context_line = error.context_mark.line if error.context_mark else problem_line
    line, advice = _advice(error, problem, context, problem_line, context_line, lines)
    parser = "; ".join(part for part in (context, problem) if part)
    return line + 1, f"YAML: {advice} (parser: {parser})"


def _advice(error: MarkedYAMLError, problem: str, context: str, problem_line: int, context_line: int,
            lines: list[str]) -> tuple[int, str]:
    if problem.startswith("found alias"):
        return problem_line, ("aliases (*name) are not allowed in a survey file: write the text out in full "
                              "(aliases can make a few lines expand without end)")
    if "maximum depth" in problem:
        return problem_line, f"the survey is nested more than {MAX_DEPTH} levels deep"
    if "'\\t'" in problem or "\t" in problem:
        return problem_line, "a tab character: YAML is indented with spaces only; replace the tab with spaces"
    if isinstance(error, DuplicateKeyError):
        return _duplicate(problem, problem_line, context_line, lines)
    if "quoted scalar" in context:
        quote = _char(lines, error.context_mark) if error.context_mark else '"'
        return context_line, f"the quote ({quote}) opened on this line is never closed"
    unclosed = _unclosed_quote(lines, problem_line)
    if unclosed is not None:
        return unclosed[0], f"the quote ({unclosed[1]}) opened on this line is not closed on it"
    if "simple key" in context and "expected ':'" in problem:
        return context_line, f"a colon is missing after {_first_word(lines, context_line)}: write it as 'key: value'"
    if "flow mapping" in context or "flow sequence" in context:
        bracket = "{" if "mapping" in context else "["
        closing = "}" if bracket == "{" else "]"
        if "got ':'" in problem and problem_line == context_line:
            return problem_line, (f"a text inside {bracket}...{closing} contains a colon: put the text in quotes, "
                                  f'like {{es: "Hora: 10", en: "Time: 10"}}')
        return context_line, f"the {bracket} opened on this line is never closed with {closing}"
    if "expected <block end>" in problem or "<document start>" in problem or "mapping values are not" in problem:
        found = _indentation(problem_line, lines)
        if found:
            return found
        if "mapping values are not allowed" in problem:
            return _colon_in_value(lines, problem_line)
    if "found '<scalar>'" in problem and problem_line < len(lines) and any(q in lines[problem_line] for q in "'\""):
        return problem_line, ("more text follows a closing quote: put the whole text in quotes, and write a quote "
                              "inside it twice ('It''s') or with a backslash (\"Say \\\"yes\\\"\")")
    return problem_line, "this line cannot be read as YAML"


def _unclosed_quote(lines: list[str], last: int) -> tuple[int, str] | None:
    """The first line up to `last` that leaves a quote open while the next line starts a new key or item."""
    for number, line in enumerate(lines[: last + 1]):
        quote = _open_quote(line)
        following = _next_content(lines, number) if quote else None
        if following is None:
            continue
        after = lines[following]
        if (_key_of(after) is not None or after.lstrip().startswith("- ")) \
                and _indent(after) <= _content_column(line):
            return number, quote
    return None


def _open_quote(line: str) -> str | None:
    """The quote character left open at the end of `line` ('"' or "'"), or None."""
    quote = None
    before = ""
    i = 0
    while i < len(line):
        char = line[i]
        if quote is None:
            if char in "\"'" and before in ("", ":", "{", "[", ",", "-"):
                quote = char
            elif char == "#" and (i == 0 or line[i - 1] == " "):
                break
            elif not char.isspace():
                before = char
        elif quote == '"' and char == "\\":
            i += 1
        elif char == quote:
            if quote == "'" and line[i + 1:i + 2] == "'":
                i += 1
            else:
                quote, before = None, char
        i += 1
    return quote


def _duplicate(problem: str, problem_line: int, context_line: int, lines: list[str]) -> tuple[int, str]:
    found = _DUPLICATE.search(problem)
    key = found.group(1) if found else "a key"
    column = _key_column(lines[problem_line]) if problem_line < len(lines) else None
    first = next(
        (i for i in range(context_line, problem_line)
         if _key_of(lines[i]) == key and _key_column(lines[i]) == column),
        None,
    )
    where = f" (first on line {first + 1})" if first is not None else ""
    return problem_line, f"'{key}' is given twice in the same block{where}: keep one"


def _indentation(number: int, lines: list[str]) -> tuple[int, str] | None:
    """The line whose indentation is wrong near line `number` and what is wrong, or None when it lines up."""
    if number >= len(lines):
        return None
    line = lines[number]
    here = _indent(line)
    previous = _previous_content(lines, number)
    if previous is None:
        return None
    if line.lstrip().startswith("-"):
        items = [i for i in range(number - 1, -1, -1) if lines[i].lstrip().startswith("-")
                 and _indent(lines[i]) != here]
        if items:
            there = _indent(lines[items[0]])
            return number, (f"this list item is indented {_spaces(here)} but the item above it (line "
                            f"{items[0] + 1}) {_spaces(there)}: line them up")
    above = lines[previous]
    column = _content_column(above)
    if here == column or (here > column and above.rstrip().endswith(":")):
        return None
    if _opens_block(lines, previous) and here in (_indent_after(lines, number), _usual_child(lines, previous)):
        how = "more" if column > here else "less"
        return previous, (f"this line is indented {how} than the lines below it ({_spaces(column)} instead of "
                          f"{here})")
    how = "more" if here > column else "less"
    return number, f"this line is indented {how} than the line above it ({_spaces(here)} instead of {column})"


def _colon_in_value(lines: list[str], number: int) -> tuple[int, str]:
    line = lines[number] if number < len(lines) else ""
    previous = _previous_content(lines, number)
    if previous is not None and _key_of(lines[previous]) is None and _key_of(line) is not None \
            and _content_column(lines[previous]) == _key_column(line):
        number = previous
    elif _key_of(line) is not None:
        return number, "a text with ': ' in it needs quotes, like text: \"Hora: 10\""
    return number, f"a colon is missing after {_first_word(lines, number)}: write it as 'key: value'"


def _opens_block(lines: list[str], number: int) -> bool:
    """Line `number` is the first of its block: the document's first line, or the first under a 'key:'."""
    before = _previous_content(lines, number)
    return before is None or lines[before].rstrip().endswith(":")


def _usual_child(lines: list[str], number: int) -> int:
    """Where the first line under the opener of line `number` would start, by the file's other blocks."""
    opener = _previous_content(lines, number)
    if opener is None:
        return 0
    steps: dict[int, int] = {}
    for i, line in enumerate(lines):
        child = _next_content(lines, i) if line.rstrip().endswith(":") and i != opener else None
        if child is not None:
            step = _indent(lines[child]) - _content_column(line)
            steps[step] = steps.get(step, 0) + 1
    return _content_column(lines[opener]) + (max(steps, key=steps.__getitem__) if steps else 2)


def _content_column(line: str) -> int:
    """Where a line's content starts after its indentation and list dashes ('  - id: x' -> 4)."""
    return _LEAD.match(line).end()


def _indent_after(lines: list[str], number: int) -> int | None:
    following = _next_content(lines, number)
    return None if following is None else _indent(lines[following])


def _next_content(lines: list[str], number: int) -> int | None:
    for i in range(number + 1, len(lines)):
        stripped = lines[i].strip()
        if stripped and not stripped.startswith("#"):
            return i
    return None


def _previous_content(lines: list[str], number: int) -> int | None:
    for i in range(number - 1, -1, -1):
        stripped = lines[i].strip()
        if stripped and not stripped.startswith("#"):
            return i
    return None


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _key_column(line: str) -> int | None:
    """Where the key of a line starts ('  - id: x' -> 4), or None when the line holds no key."""
    found = _KEY.match(line)
    return found.start(2) if found else None


def _key_of(line: str) -> str | None:
    found = _KEY.match(line)
    return found.group(2).strip().strip("'\"") if found else None


def _first_word(lines: list[str], number: int) -> str:
    words = lines[number].split() if number < len(lines) else []
    words = [w for w in words if w != "-"]
    return f"'{words[0]}'" if words else "the key"


def _char(lines: list[str], mark: Any) -> str:
    line = lines[mark.line] if mark.line < len(lines) else ""
    return line[mark.column] if mark.column < len(line) else '"'


def _spaces(n: int) -> str:
    return f"{n} space" if n == 1 else f"{n} spaces"
