"""The small, safe language of `when:` conditions (skip logic over earlier answers).

Programme staff write conditions such as::

    returned == 'returnee' and age >= 18
    selected(needs, 'health') or not answered(income)
    return_type in ['deported', 'forced']

`compile_expression` turns the text into an `Expression` (or raises `ExpressionError` with a
plain-English message and a 1-based column); `Expression.evaluate(answers)` gives a bool.
Nothing here uses Python's eval: a tokenizer and a recursive-descent parser build a tiny tree.

Grammar, lowest to highest precedence::

    or  ->  and  ->  not  ->  comparison  ->  + -  ->  * / %  ->  unary -  ->  atom

* Comparisons: `==` (a single `=` means the same), `!=`, `<`, `<=`, `>`, `>=`, `in`, `not in`.
  They do not chain: `a < b < c` is an error (write `a < b and b < c`).
* Atoms: numbers (`3`, `2.5`), text in single or double quotes (a backslash escapes the quote
  or a backslash; any other backslash is kept as written), `true` / `false` / `null`, question
  ids (`[A-Za-z_][A-Za-z0-9_]*`, case-sensitive), lists `[a, b, c]`, parentheses and calls.
* Keywords `and or not in true false null` and function names are case-insensitive; a keyword
  can therefore never be a question id. `yes` is not a keyword: write `'yes'`.
* Functions (their first argument must be a bare question id):
  `selected(q, v1, v2, ...)` - the answer equals one of the values, or (multi choice) contains
  one; a list among the values counts as its items. `answered(q)` - the answer is neither null
  nor an empty list. `count(q)` (alias `len(q)`) - list length for a multi choice, 1 for any
  other answer, 0 for null.
* Trailing commas are accepted in lists and calls. Columns count characters from the start of
  the whole source (a newline counts as one character).

Semantics:

* An answer missing from the mapping, or None, is null. Decimal answers count as numbers;
  tuples and sets count as lists.
* Any comparison involving null is false - including `!=`, `in` and `not in` - except the
  literal tests `x == null` (x has no answer) and `x != null` (x has an answer).
* `==` / `!=` never coerce: numbers equal numbers (`2 == 2.0`), text equals text, booleans
  equal booleans, lists equal lists item by item; `'3' == 3` and `true == 1` are false.
* `< <= > >=` compare two numbers, or two texts alphabetically; any other pair gives false.
* `x in list` tests membership (with `==` above); `x in text` tests for a substring (x must
  be text); anything else, or a null on either side, gives false.
* Arithmetic needs two numbers; with null, text, booleans or lists it gives null, as does
  division or remainder by zero (or a number too large for a decimal).
* `and`, `or` and `not` use truthiness: null, false, 0, '' and [] are false; they give bools.
* `evaluate` always returns a bool and never raises: should anything unexpected happen while
  evaluating (say, an answer object whose comparison fails), the result is false.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal

__all__ = ["FUNCTIONS", "MAX_DEPTH", "MAX_LENGTH", "Expression", "ExpressionError", "compile_expression"]

MAX_LENGTH = 2000
MAX_DEPTH = 50
FUNCTIONS = ("selected", "answered", "count", "len")

_EXAMPLES = {
    "selected": "selected(needs, 'health')",
    "answered": "answered(income)",
    "count": "count(needs)",
    "len": "len(needs)",
}
_KEYWORDS = frozenset({"and", "or", "not", "in", "true", "false", "null"})
_CONSTANTS: dict[str, object] = {"true": True, "false": False, "null": None}
_OPERATORS = ("==", "!=", "<=", ">=", "=", "<", ">", "+", "-", "*", "/", "%", "(", ")", "[", "]", ",")
_COMPARISONS = frozenset({"==", "!=", "<", "<=", ">", ">="})
_CLOSERS = {"(": ")", "[": "]"}
_TWO_CHAR_MISTAKES = {
    "&&": "use 'and' instead of '&&'",
    "||": "use 'or' instead of '||'",
    "<>": "use '!=' for 'is not equal to'",
    "=>": "'=>' is not an operator; did you mean '>='?",
    "=<": "'=<' is not an operator; did you mean '<='?",
}
_ONE_CHAR_MISTAKES = {
    "&": "use 'and' instead of '&'",
    "|": "use 'or' instead of '|'",
    "!": "use 'not' instead of '!' (or '!=' for 'is not equal to')",
}
_CURLY_QUOTES = "\u2018\u2019\u201a\u201b\u201c\u201d\u201e\u201f\u00ab\u00bb\u2039\u203a"
_PLAIN = (type(None), bool, int, float, str, tuple)
_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]+)?|\.[0-9]+")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_WORD = re.compile(r"[A-Za-z0-9_.]*")


class ExpressionError(ValueError):
    """A `when` condition that cannot be compiled; `column` is 1-based."""

    def __init__(self, message: str, column: int) -> None:
        super().__init__(f"column {column}: {message}")
        self.message = message
        self.column = column

    def __reduce__(self) -> tuple[type[ExpressionError], tuple[str, int]]:
        return (type(self), (self.message, self.column))


# ---------------------------------------------------------------------------------------------
# Tokens


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # number, string, name, keyword, op, end
    value: object
    text: str
    column: int


def _tokenize(source: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    while position < len(source):
        if source[position].isspace():
            position += 1
            continue
        token = _read_token(source, position)
        tokens.append(token)
        position += len(token.text)
    tokens.append(_Token("end", None, "", len(source) + 1))
    return tokens


def _read_token(source: str, position: int) -> _Token:
    char = source[position]
    if char in "'\"":
        return _read_string(source, position)
    if _NUMBER.match(source, position):
        return _read_number(source, position)
    if match := _NAME.match(source, position):
        word = match.group()
        if word.lower() in _KEYWORDS:
            return _Token("keyword", word.lower(), word, position + 1)
        return _Token("name", word, word, position + 1)
    return _read_operator(source, position)


def _read_string(source: str, position: int) -> _Token:
    quote = source[position]
    chars: list[str] = []
    index = position + 1
    while index < len(source):
        char = source[index]
        if char == "\\" and index + 1 < len(source) and source[index + 1] in (quote, "\\"):
            chars.append(source[index + 1])
            index += 2
        elif char == quote:
            return _Token("string", "".join(chars), source[position : index + 1], position + 1)
        else:
            chars.append(char)
            index += 1
    raise ExpressionError(
        f"unclosed quote: the {quote} at column {position + 1} is never closed", position + 1
    )


def _read_number(source: str, position: int) -> _Token:
    text = _NUMBER.match(source, position).group()  # type: ignore[union-attr]
    end = position + len(text)
    if end < len(source) and (source[end].isalpha() or source[end] == "_"):
        word = text + _WORD.match(source, end).group()  # type: ignore[union-attr]
        raise ExpressionError(
            f"'{_shorten(word)}' is not a number or a question id (question ids start with a letter)",
            position + 1,
        )
    value: object = float(text) if "." in text else int(text)
    return _Token("number", value, text, position + 1)


def _read_operator(source: str, position: int) -> _Token:
    column = position + 1
    pair = source[position : position + 2]
    if pair in _TWO_CHAR_MISTAKES:
        raise ExpressionError(_TWO_CHAR_MISTAKES[pair], column)
    for operator in _OPERATORS:
        if source.startswith(operator, position):
            return _Token("op", operator, operator, column)
    char = source[position]
    if char in _ONE_CHAR_MISTAKES:
        raise ExpressionError(_ONE_CHAR_MISTAKES[char], column)
    if char in _CURLY_QUOTES:
        raise ExpressionError(
            f"curly quote {char} cannot start or end text; type a straight quote ' or \"", column
        )
    shown = f"'{char}'" if char.isprintable() else f"U+{ord(char):04X}"
    hint = " (question ids may only use the letters A-Z, digits and '_')" if char.isalnum() else ""
    raise ExpressionError(f"unexpected character {shown}{hint}", column)


def _shorten(text: str, limit: int = 30) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _show(token: _Token) -> str:
    """How a token is quoted in an error message."""
    if token.kind == "end":
        return "the end of the condition"
    text = _shorten(token.text)
    return text if token.kind == "string" else f"'{text}'"


# ---------------------------------------------------------------------------------------------
# The tree and its evaluation


class _Node:
    __slots__ = ()

    def evaluate(self, answers: Mapping[str, object]) -> object:
        raise NotImplementedError

    def children(self) -> tuple[_Node, ...]:
        return ()


@dataclass(frozen=True, slots=True)
class _Literal(_Node):
    value: object

    def evaluate(self, answers: Mapping[str, object]) -> object:
        return self.value


@dataclass(frozen=True, slots=True)
class _Name(_Node):
    name: str

    def evaluate(self, answers: Mapping[str, object]) -> object:
        return _answer(answers, self.name)


@dataclass(frozen=True, slots=True)
class _List(_Node):
    items: tuple[_Node, ...]

    def evaluate(self, answers: Mapping[str, object]) -> object:
        return tuple(item.evaluate(answers) for item in self.items)

    def children(self) -> tuple[_Node, ...]:
        return self.items


@dataclass(frozen=True, slots=True)
class _Not(_Node):
    operand: _Node

    def evaluate(self, answers: Mapping[str, object]) -> object:
        return not _truthy(self.operand.evaluate(answers))

    def children(self) -> tuple[_Node, ...]:
        return (self.operand,)


@dataclass(frozen=True, slots=True)
class _Negate(_Node):
    operand: _Node

    def evaluate(self, answers: Mapping[str, object]) -> object:
        value = self.operand.evaluate(answers)
        return -value if _is_number(value) else None  # type: ignore[operator]

    def children(self) -> tuple[_Node, ...]:
        return (self.operand,)


@dataclass(frozen=True, slots=True)
class _Logic(_Node):
    operator: str  # "and" or "or"
    operands: tuple[_Node, ...]

    def evaluate(self, answers: Mapping[str, object]) -> object:
        values = (_truthy(operand.evaluate(answers)) for operand in self.operands)
        return all(values) if self.operator == "and" else any(values)

    def children(self) -> tuple[_Node, ...]:
        return self.operands


@dataclass(frozen=True, slots=True)
class _Arithmetic(_Node):
    first: _Node
    rest: tuple[tuple[str, _Node], ...]

    def evaluate(self, answers: Mapping[str, object]) -> object:
        result = self.first.evaluate(answers)
        for operator, operand in self.rest:
            result = _arithmetic(operator, result, operand.evaluate(answers))
        return result

    def children(self) -> tuple[_Node, ...]:
        return (self.first, *(operand for _, operand in self.rest))


@dataclass(frozen=True, slots=True)
class _Compare(_Node):
    operator: str
    left: _Node
    right: _Node

    def evaluate(self, answers: Mapping[str, object]) -> object:
        return _compare(self.operator, self.left.evaluate(answers), self.right.evaluate(answers))

    def children(self) -> tuple[_Node, ...]:
        return (self.left, self.right)


@dataclass(frozen=True, slots=True)
class _IsNull(_Node):
    operand: _Node
    negated: bool

    def evaluate(self, answers: Mapping[str, object]) -> object:
        return (self.operand.evaluate(answers) is None) != self.negated

    def children(self) -> tuple[_Node, ...]:
        return (self.operand,)


@dataclass(frozen=True, slots=True)
class _Call(_Node):
    function: str
    question: str
    values: tuple[_Node, ...]

    def evaluate(self, answers: Mapping[str, object]) -> object:
        answer = _answer(answers, self.question)
        if self.function == "selected":
            return _selected(answer, [value.evaluate(answers) for value in self.values])
        if self.function == "answered":
            return answer is not None and not (isinstance(answer, tuple) and not answer)
        return _count(answer)

    def children(self) -> tuple[_Node, ...]:
        return self.values


def _answer(answers: Mapping[str, object], name: str) -> object:
    """The answer to a question, normalized: Decimal -> number, tuple/list/set -> tuple."""
    value = answers.get(name)
    if isinstance(value, list | tuple | set | frozenset):
        return tuple(_scalar(item) for item in value)
    return _scalar(value)


def _scalar(value: object) -> object:
    if not isinstance(value, Decimal):
        return value
    if not value.is_finite():
        return None
    number = float(value)
    return int(value) if number.is_integer() and abs(number) < 2**53 else number


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _truthy(value: object) -> bool:
    return value is not None and bool(value)


def _arithmetic(operator: str, left: object, right: object) -> object:
    if not (_is_number(left) and _is_number(right)):
        return None
    if operator in "/%" and right == 0:
        return None
    try:
        if operator == "+":
            return left + right  # type: ignore[operator]
        if operator == "-":
            return left - right  # type: ignore[operator]
        if operator == "*":
            return left * right  # type: ignore[operator]
        if operator == "/":
            return left / right  # type: ignore[operator]
        return left % right  # type: ignore[operator]
    except ArithmeticError:  # e.g. an integer too large to divide as a decimal
        return None


def _compare(operator: str, left: object, right: object) -> bool:
    if operator in ("in", "not in"):
        found = _contains(right, left)
        return found is not None and found == (operator == "in")
    if left is None or right is None:
        return False
    if operator == "==":
        return _equal(left, right)
    if operator == "!=":
        return not _equal(left, right)
    return _ordered(operator, left, right)


def _equal(left: object, right: object) -> bool:
    """Equality without coercion between numbers, text, booleans and lists."""
    if _is_number(left) and _is_number(right):
        return left == right
    if isinstance(left, tuple) and isinstance(right, tuple):
        return len(left) == len(right) and all(_equal(a, b) for a, b in zip(left, right, strict=True))
    for kind in (str, bool):
        if isinstance(left, kind) and isinstance(right, kind):
            return left == right
    if isinstance(left, _PLAIN) or isinstance(right, _PLAIN):
        return False
    return bool(left == right)  # other answer objects, such as dates


def _ordered(operator: str, left: object, right: object) -> bool:
    both_numbers = _is_number(left) and _is_number(right)
    if not (both_numbers or (isinstance(left, str) and isinstance(right, str))):
        return False
    if operator == "<":
        return left < right  # type: ignore[operator]
    if operator == "<=":
        return left <= right  # type: ignore[operator]
    if operator == ">":
        return left > right  # type: ignore[operator]
    return left >= right  # type: ignore[operator]


def _contains(container: object, item: object) -> bool | None:
    """Whether `item` is in `container`, or None when the question makes no sense (null, types)."""
    if item is None:
        return None
    if isinstance(container, tuple):
        return any(_equal(item, element) for element in container)
    if isinstance(container, str) and isinstance(item, str):
        return item in container
    return None


def _selected(answer: object, values: list[object]) -> bool:
    if answer is None:
        return False
    wanted = [
        v for value in values for v in (value if isinstance(value, tuple) else (value,)) if v is not None
    ]
    chosen = answer if isinstance(answer, tuple) else (answer,)
    return any(_equal(item, value) for item in chosen for value in wanted)


def _count(answer: object) -> int:
    if answer is None:
        return 0
    return len(answer) if isinstance(answer, tuple) else 1


def _walk(root: _Node) -> Iterator[_Node]:
    """Every node of the tree, in source order, without recursion."""
    stack = [root]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(reversed(node.children()))


def _compared_values(node: _Node) -> Iterator[tuple[str, object]]:
    """The (question id, literal) pairs one node compares directly."""
    if isinstance(node, _Call) and node.function == "selected":
        for value in node.values:
            yield from ((node.question, literal) for literal in _literals(value))
    elif isinstance(node, _Compare) and node.operator in ("==", "!="):
        for name, other in ((node.left, node.right), (node.right, node.left)):
            if isinstance(name, _Name) and isinstance(other, _Literal) and other.value is not None:
                yield (name.name, other.value)
    elif isinstance(node, _Compare) and node.operator in ("in", "not in"):
        if isinstance(node.left, _Name):
            yield from ((node.left.name, literal) for literal in _literals(node.right))
        elif (
            isinstance(node.right, _Name) and isinstance(node.left, _Literal) and node.left.value is not None
        ):
            yield (node.right.name, node.left.value)


def _literals(node: _Node) -> Iterator[object]:
    """The non-null literal values of a literal or a list of literals."""
    items = node.items if isinstance(node, _List) else (node,)
    for item in items:
        if isinstance(item, _Literal) and item.value is not None:
            yield item.value


# ---------------------------------------------------------------------------------------------
# The parser


_ParseLevel = Callable[[], _Node]


class _Parser:
    """Recursive descent over the token list; one method per precedence level."""

    def __init__(self, source: str) -> None:
        self.tokens = _tokenize(source)
        self.position = 0
        self.depth = 0

    @property
    def current(self) -> _Token:
        return self.tokens[self.position]

    def parse(self) -> _Node:
        if self.current.kind == "end":
            raise ExpressionError("the condition is empty", 1)
        node = self._or()
        if self.current.kind != "end":
            raise self._leftover_error()
        return node

    # -- helpers ---------------------------------------------------------------------------------

    def _advance(self) -> _Token:
        token = self.current
        if token.kind != "end":
            self.position += 1
        return token

    def _previous(self) -> _Token | None:
        return self.tokens[self.position - 1] if self.position else None

    def _at(self, kind: str, *values: object, offset: int = 0) -> bool:
        token = self.tokens[min(self.position + offset, len(self.tokens) - 1)]
        return token.kind == kind and (not values or token.value in values)

    @contextmanager
    def _nested(self, token: _Token) -> Iterator[None]:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ExpressionError(
                f"the condition is nested too deeply (more than {MAX_DEPTH} levels of brackets, "
                "'not' or '-'); split it into simpler parts",
                token.column,
            )
        try:
            yield
        finally:
            self.depth -= 1

    # -- precedence levels -----------------------------------------------------------------------

    def _or(self) -> _Node:
        return self._logic("or", self._and)

    def _and(self) -> _Node:
        return self._logic("and", self._not)

    def _logic(self, keyword: str, operand: _ParseLevel) -> _Node:
        operands = [operand()]
        while self._at("keyword", keyword):
            self._advance()
            operands.append(operand())
        return operands[0] if len(operands) == 1 else _Logic(keyword, tuple(operands))

    def _not(self) -> _Node:
        if not self._at("keyword", "not"):
            return self._comparison()
        with self._nested(self._advance()):
            return _Not(self._not())

    def _comparison(self) -> _Node:
        left = self._sum()
        if not self._at_comparison():
            return left
        operator = self._take_comparison()
        right = self._sum()
        if self._at_comparison():
            raise ExpressionError(
                "comparisons cannot be chained; join them with 'and', e.g. 18 <= age and age < 60",
                self.current.column,
            )
        return _comparison_node(operator, left, right)

    def _at_comparison(self) -> bool:
        return (
            self._at("op", "=", *_COMPARISONS)
            or self._at("keyword", "in")
            or (self._at("keyword", "not") and self._at("keyword", "in", offset=1))
        )

    def _take_comparison(self) -> str:
        token = self._advance()
        if token.value == "not":
            self._advance()
            return "not in"
        return "==" if token.value == "=" else str(token.value)

    def _sum(self) -> _Node:
        return self._arithmetic(("+", "-"), self._product)

    def _product(self) -> _Node:
        return self._arithmetic(("*", "/", "%"), self._unary)

    def _arithmetic(self, operators: tuple[str, ...], operand: _ParseLevel) -> _Node:
        first = operand()
        rest: list[tuple[str, _Node]] = []
        while self._at("op", *operators):
            rest.append((str(self._advance().value), operand()))
        return _Arithmetic(first, tuple(rest)) if rest else first

    def _unary(self) -> _Node:
        if not self._at("op", "-"):
            return self._atom()
        with self._nested(self._advance()):
            operand = self._unary()
        if isinstance(operand, _Literal) and _is_number(operand.value):
            return _Literal(-operand.value)  # type: ignore[operator]
        return _Negate(operand)

    def _atom(self) -> _Node:
        token = self.current
        if token.kind in ("number", "string"):
            self._advance()
            return _Literal(token.value)
        if token.kind == "keyword" and token.value in _CONSTANTS:
            self._advance()
            return _Literal(_CONSTANTS[str(token.value)])
        if token.kind == "name":
            self._advance()
            return self._call(token) if self._at("op", "(") else _Name(str(token.value))
        if self._at("op", "("):
            return self._group()
        if self._at("op", "["):
            opener = self.current
            return _List(tuple(node for node, _ in self._items(opener, "the list")))
        raise self._expected_value()

    def _group(self) -> _Node:
        opener = self._advance()
        with self._nested(opener):
            node = self._or()
        if self._at("op", ")"):
            self._advance()
            return node
        raise self._unclosed(opener, f"expected ')' to close the '(' at column {opener.column}")

    def _items(self, opener: _Token, context: str) -> list[tuple[_Node, _Token]]:
        """Comma-separated expressions up to the closing bracket, each with its first token."""
        closer = _CLOSERS[str(opener.value)]
        self._advance()
        items: list[tuple[_Node, _Token]] = []
        with self._nested(opener):
            while not self._at("op", closer):
                if self._at("end"):
                    raise self._unclosed(opener, "")
                start = self.current
                items.append((self._or(), start))
                if self._at("op", ","):
                    self._advance()
                elif not self._at("op", closer):
                    raise self._unclosed(opener, f"expected ',' or '{closer}' in {context}")
        self._advance()
        return items

    def _call(self, name: _Token) -> _Node:
        function = str(name.value).lower()
        if function not in FUNCTIONS:
            raise _unknown_function(name)
        arguments = self._items(self.current, f"{function}(...)")
        closer = self.tokens[self.position - 1]
        example = _EXAMPLES[function]
        if not arguments:
            raise ExpressionError(
                f"{function}() needs a question id inside the brackets, e.g. {example}", closer.column
            )
        (question, start), *values = arguments
        if not isinstance(question, _Name):
            raise ExpressionError(
                f"the first thing inside {function}(...) must be a question id, e.g. {example}", start.column
            )
        if function == "selected" and not values:
            raise ExpressionError(
                f"selected() needs a question id and at least one value to look for, e.g. {example}",
                closer.column,
            )
        if function != "selected" and values:
            raise ExpressionError(
                f"{function}() takes only one question id, e.g. {example}", values[0][1].column
            )
        return _Call(function, question.name, tuple(node for node, _ in values))

    # -- errors ----------------------------------------------------------------------------------

    def _expected_value(self) -> ExpressionError:
        token = self.current
        previous = self._previous()
        if previous is None:
            return ExpressionError(f"the condition cannot start with {_show(token)}", token.column)
        found = "" if token.kind == "end" else f", found {_show(token)}"
        return ExpressionError(f"expected a value after {_show(previous)}{found}", token.column)

    def _unclosed(self, opener: _Token, expectation: str) -> ExpressionError:
        token = self.current
        if token.kind == "end":
            noun = "parenthesis" if opener.value == "(" else "bracket"
            return ExpressionError(
                f"unclosed {noun}: the '{opener.value}' at column {opener.column} is never closed",
                opener.column,
            )
        return ExpressionError(f"{expectation}, found {_show(token)}", token.column)

    def _leftover_error(self) -> ExpressionError:
        token = self.current
        if token.kind == "op" and token.value in (")", "]"):
            opener = "(" if token.value == ")" else "["
            return ExpressionError(
                f"unmatched '{token.value}': there is no '{opener}' before it for it to close", token.column
            )
        if token.kind == "op" and token.value == ",":
            return ExpressionError(
                "unexpected ',': commas only separate values inside [...] or a function call "
                "(use '.' for decimals, e.g. 2.5)",
                token.column,
            )
        if token.kind == "keyword" and token.value == "not":
            return ExpressionError(
                "'not' here must be followed by 'in', e.g. x not in ['a', 'b']", token.column
            )
        return ExpressionError(f"unexpected text {_show(token)}{_leftover_hint(token)}", token.column)


def _leftover_hint(token: _Token) -> str:
    if token.kind == "name" and len(token.text) <= 4:
        close = difflib.get_close_matches(token.text.lower(), ("and", "or", "not", "in"), n=1)
        if close:
            return f" (did you mean '{close[0]}'?)"
    if token.kind in ("name", "number", "string", "keyword") or token.value in ("(", "["):
        return " (is 'and', 'or' or an operator such as '==' missing before it?)"
    return ""


def _unknown_function(name: _Token) -> ExpressionError:
    close = difflib.get_close_matches(str(name.value).lower(), FUNCTIONS, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else f" (the functions are {', '.join(FUNCTIONS)})"
    return ExpressionError(f"unknown function '{_shorten(name.text)}'{hint}", name.column)


def _comparison_node(operator: str, left: _Node, right: _Node) -> _Node:
    """A comparison; `== null` and `!= null` become explicit null tests."""
    if operator in ("==", "!="):
        for operand, other in ((left, right), (right, left)):
            if isinstance(other, _Literal) and other.value is None:
                return _IsNull(operand, negated=operator == "!=")
    return _Compare(operator, left, right)


# ---------------------------------------------------------------------------------------------
# Public API


@dataclass(frozen=True)
class Expression:
    """A compiled `when` condition: its source, the question ids it reads and what it compares."""

    source: str
    names: frozenset[str]
    comparisons: tuple[tuple[str, object], ...]
    _root: _Node = field(repr=False, compare=False)

    def evaluate(self, answers: Mapping[str, object]) -> bool:
        """True when the condition holds for these answers; never raises."""
        try:
            return _truthy(self._root.evaluate(answers))
        except Exception:  # an answer object that misbehaves must not crash a conversation
            return False

    def __str__(self) -> str:
        return self.source


def compile_expression(source: str) -> Expression:
    """Parse a `when` condition, raising ExpressionError with a column for any problem."""
    if not isinstance(source, str):
        raise ExpressionError(f"the condition must be text, not {type(source).__name__}", 1)
    if len(source) > MAX_LENGTH:
        raise ExpressionError(
            f"the condition is too long ({len(source)} characters; the limit is {MAX_LENGTH})", MAX_LENGTH + 1
        )
    try:
        root = _Parser(source).parse()
    except RecursionError:  # only when the caller's own stack is already deep
        raise ExpressionError("the condition is too complex; split it into simpler parts", 1) from None
    nodes = list(_walk(root))
    names = {node.name for node in nodes if isinstance(node, _Name)}
    names.update(node.question for node in nodes if isinstance(node, _Call))
    comparisons = _unique(pair for node in nodes for pair in _compared_values(node))
    return Expression(source, frozenset(names), comparisons, root)


def _unique(pairs: Iterator[tuple[str, object]]) -> tuple[tuple[str, object], ...]:
    """The pairs in order without repeats (1, 1.0 and true stay distinct)."""
    seen: set[tuple[str, type, object]] = set()
    unique = []
    for name, value in pairs:
        key = (name, type(value), value)
        if key not in seen:
            seen.add(key)
            unique.append((name, value))
    return tuple(unique)
