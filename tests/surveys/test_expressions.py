"""Tests for the `when:` condition language in surveys/expressions.py."""

from __future__ import annotations

import inspect
import io
import pickle
import sys
import tokenize
from decimal import Decimal
from pathlib import Path

import pytest

from surveys import expressions
from surveys.expressions import MAX_DEPTH, MAX_LENGTH, Expression, ExpressionError, compile_expression

try:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
except ImportError:  # pragma: no cover - hypothesis is in the test extras
    st = None

RETURNEE = {"returned": "returnee", "age": 34, "needs": ["health", "work"], "children": 2, "income": None}

# (source, answers, expected)
VALID_CASES = [
    # single choice
    pytest.param("returned == 'returnee'", RETURNEE, True, id="choice-equal"),
    pytest.param("returned == 'migrant'", RETURNEE, False, id="choice-not-equal"),
    pytest.param('returned == "returnee"', RETURNEE, True, id="double-quotes"),
    pytest.param("returned = 'returnee'", RETURNEE, True, id="single-equals-is-equality"),
    pytest.param("returned='returnee'", RETURNEE, True, id="single-equals-no-spaces"),
    pytest.param("returned != 'migrant'", RETURNEE, True, id="choice-differs"),
    pytest.param("'returnee' == returned", RETURNEE, True, id="literal-on-the-left"),
    pytest.param("returned == 'returnee' and age >= 18", RETURNEE, True, id="brief-example"),
    pytest.param(
        "returned == 'returnee' and age >= 18", {"returned": "returnee", "age": 17}, False, id="minor"
    ),
    # multi choice
    pytest.param("selected(needs, 'health')", RETURNEE, True, id="selected-multi"),
    pytest.param("selected(needs, 'housing')", RETURNEE, False, id="selected-multi-missing"),
    pytest.param("selected(needs, 'housing', 'work')", RETURNEE, True, id="selected-any-of"),
    pytest.param("selected(needs, ['housing', 'work'])", RETURNEE, True, id="selected-list-value"),
    pytest.param("selected(returned, 'returnee')", RETURNEE, True, id="selected-single-choice"),
    pytest.param("selected(needs, 'health')", {"needs": []}, False, id="selected-empty-list"),
    pytest.param("selected(needs, 'health')", {}, False, id="selected-null"),
    pytest.param("selected(needs, 'health') or not answered(income)", {"needs": []}, True, id="brief-or"),
    pytest.param("Selected(needs, 'health')", RETURNEE, True, id="function-case-insensitive"),
    pytest.param("'deported' in return_type", {"return_type": ["deported", "robbed"]}, True, id="in-multi"),
    pytest.param("'deported' in return_type", {"return_type": ["robbed"]}, False, id="in-multi-missing"),
    pytest.param("'deported' not in return_type", {"return_type": ["robbed"]}, True, id="not-in-multi"),
    pytest.param("return_type in ['deported', 'forced']", {"return_type": "forced"}, True, id="in-list"),
    pytest.param(
        "return_type in ['deported', 'forced']", {"return_type": "voluntary"}, False, id="in-list-no"
    ),
    pytest.param(
        "return_type not in ['deported', 'forced']", {"return_type": "voluntary"}, True, id="not-in"
    ),
    pytest.param("return_type NOT IN ['deported']", {"return_type": "voluntary"}, True, id="not-in-upper"),
    pytest.param("'port' in return_type", {"return_type": "deported"}, True, id="substring"),
    pytest.param("return_type in []", {"return_type": "deported"}, False, id="in-empty-list"),
    pytest.param("return_type in ['a', 'b',]", {"return_type": "b"}, True, id="trailing-comma"),
    pytest.param("needs == ['health', 'work']", RETURNEE, True, id="list-equality"),
    pytest.param("count(needs) == 2", RETURNEE, True, id="count-multi"),
    pytest.param("count(needs) == 0", {"needs": []}, True, id="count-empty"),
    pytest.param("count(returned) == 1", RETURNEE, True, id="count-single"),
    pytest.param("count(income) == 0", RETURNEE, True, id="count-null"),
    pytest.param("len(needs) > 1", RETURNEE, True, id="len-alias"),
    pytest.param("answered(age)", RETURNEE, True, id="answered"),
    pytest.param("answered(income)", RETURNEE, False, id="answered-none"),
    pytest.param("answered(missing)", RETURNEE, False, id="answered-missing"),
    pytest.param("answered(needs)", {"needs": []}, False, id="answered-empty-list"),
    pytest.param("answered(children)", {"children": 0}, True, id="answered-zero"),
    # numbers
    pytest.param("children > 0", RETURNEE, True, id="number-greater"),
    pytest.param("children > 0", {"children": 0}, False, id="number-zero"),
    pytest.param("age >= 18", {"age": 18}, True, id="greater-or-equal"),
    pytest.param("age <= 17.5", {"age": 17}, True, id="int-vs-decimal"),
    pytest.param("age < 18", {"age": 17.9}, True, id="float-answer"),
    pytest.param("age == 18", {"age": 18.0}, True, id="int-equals-float"),
    pytest.param("income > 1000.5", {"income": Decimal("2000.25")}, True, id="decimal-answer"),
    pytest.param("age == -3", {"age": -3}, True, id="negative-literal"),
    pytest.param("-age == 3", {"age": -3}, True, id="negated-answer"),
    pytest.param("age == '34'", RETURNEE, False, id="no-text-to-number-coercion"),
    pytest.param("age != '34'", RETURNEE, True, id="text-differs-from-number"),
    pytest.param("age > '3'", RETURNEE, False, id="no-mixed-ordering"),
    pytest.param("name < 'n'", {"name": "maria"}, True, id="text-ordering"),
    pytest.param("flag == 1", {"flag": True}, False, id="bool-is-not-number"),
    pytest.param("flag == TRUE", {"flag": True}, True, id="bool-literal"),
    pytest.param("flag == false", {"flag": False}, True, id="false-literal"),
    # arithmetic and precedence
    pytest.param("adults + children > 4", {"adults": 3, "children": 2}, True, id="addition"),
    pytest.param("1 + 2 * 3 == 7", {}, True, id="product-before-sum"),
    pytest.param("(1 + 2) * 3 == 9", {}, True, id="parentheses"),
    pytest.param("10 - 4 - 3 == 3", {}, True, id="left-associative"),
    pytest.param("7 / 2 == 3.5", {}, True, id="true-division"),
    pytest.param("7 % 4 == 3", {}, True, id="modulo"),
    pytest.param("-2 * -3 == 6", {}, True, id="unary-minus"),
    pytest.param("- - 2 == 2", {}, True, id="double-minus"),
    pytest.param("income / people > 100", {"income": 500, "people": 0}, False, id="division-by-zero-null"),
    pytest.param("income % people == null", {"income": 5, "people": 0}, True, id="modulo-by-zero-null"),
    pytest.param("income + 1 > 0", {}, False, id="arithmetic-with-null"),
    pytest.param("name + 1 == null", {"name": "x"}, True, id="arithmetic-with-text"),
    pytest.param("true or false and false", {}, True, id="and-before-or"),
    pytest.param("(true or false) and false", {}, False, id="parenthesised-or"),
    pytest.param("not a == 1", {"a": 2}, True, id="not-before-comparison"),
    pytest.param("not not a", {"a": 1}, True, id="double-not"),
    pytest.param("not a and b", {"a": 0, "b": 1}, True, id="not-before-and"),
    # nulls
    pytest.param("income == null", RETURNEE, True, id="equals-null"),
    pytest.param("missing == null", {}, True, id="missing-equals-null"),
    pytest.param("income != null", RETURNEE, False, id="not-null"),
    pytest.param("age != null", RETURNEE, True, id="answered-not-null"),
    pytest.param("null == income", RETURNEE, True, id="null-on-the-left"),
    pytest.param("income == 0", RETURNEE, False, id="null-compared-false"),
    pytest.param("income != 0", RETURNEE, False, id="null-differs-false"),
    pytest.param("income < 10", RETURNEE, False, id="null-ordering-false"),
    pytest.param("income in [1, 2]", RETURNEE, False, id="null-in-false"),
    pytest.param("income not in [1, 2]", RETURNEE, False, id="null-not-in-false"),
    pytest.param("not (income in [1, 2])", RETURNEE, True, id="not-of-null-in"),
    pytest.param("'a' in income", RETURNEE, False, id="in-null-false"),
    pytest.param("a == b", {}, False, id="two-nulls-compared"),
    pytest.param("income", RETURNEE, False, id="null-is-falsy"),
    pytest.param("needs", {"needs": []}, False, id="empty-list-is-falsy"),
    pytest.param("name", {"name": ""}, False, id="empty-text-is-falsy"),
    pytest.param("children", {"children": 2}, True, id="number-is-truthy"),
    # keywords and layout
    pytest.param("a == 1 AND b == 2", {"a": 1, "b": 2}, True, id="upper-and"),
    pytest.param("a == 1 Or b == 2", {"a": 0, "b": 2}, True, id="mixed-case-or"),
    pytest.param("NOT a", {"a": 0}, True, id="upper-not"),
    pytest.param("a == Null", {}, True, id="mixed-case-null"),
    pytest.param("a == 'yes'", {"a": "yes"}, True, id="yes-is-text"),
    pytest.param("yes == 'x'", {"yes": "x"}, True, id="yes-is-a-question-id"),
    pytest.param("Age == 1 and age == 2", {"Age": 1, "age": 2}, True, id="ids-case-sensitive"),
    pytest.param("a ==\n  'x'\n  and b", {"a": "x", "b": 1}, True, id="multi-line"),
    pytest.param("a\u00a0==\u00a01", {"a": 1}, True, id="non-breaking-spaces"),
    pytest.param(r"a == 'it\'s'", {"a": "it's"}, True, id="escaped-quote"),
    pytest.param(r'a == "C:\\x"', {"a": "C:\\x"}, True, id="escaped-backslash"),
    pytest.param(r"a == 'a\nb'", {"a": "a\\nb"}, True, id="other-backslash-kept"),
    pytest.param("a == .5", {"a": 0.5}, True, id="leading-dot-decimal"),
    pytest.param("count > 1", {"count": 2}, True, id="function-name-as-question-id"),
    pytest.param("needs == ['health', 'work']", {"needs": ("health", "work")}, True, id="tuple-answer"),
]

# (source, expected names)
NAMES_CASES = [
    pytest.param("a == 1", {"a"}, id="one"),
    pytest.param("a == b and not c", {"a", "b", "c"}, id="several"),
    pytest.param("selected(needs, other) or answered(income)", {"needs", "other", "income"}, id="functions"),
    pytest.param("count(needs) + len(kids) > 2", {"needs", "kids"}, id="count-and-len"),
    pytest.param("[a, [b]] == x", {"a", "b", "x"}, id="inside-lists"),
    pytest.param("true and 1 == 1", set(), id="no-names"),
]

# (source, expected comparisons)
COMPARISONS_CASES = [
    pytest.param("q == 'a'", (("q", "a"),), id="equals"),
    pytest.param("q = 'a'", (("q", "a"),), id="single-equals"),
    pytest.param("'a' != q", (("q", "a"),), id="literal-left"),
    pytest.param("q in ['a', 'b']", (("q", "a"), ("q", "b")), id="in-list"),
    pytest.param("q not in ['a', other, 'b']", (("q", "a"), ("q", "b")), id="not-in-list-skips-names"),
    pytest.param("'a' in q", (("q", "a"),), id="literal-in-question"),
    pytest.param("'a' not in q", (("q", "a"),), id="literal-not-in-question"),
    pytest.param("selected(q, 'a', 'b')", (("q", "a"), ("q", "b")), id="selected"),
    pytest.param("selected(q, ['a', 'b'], 'c')", (("q", "a"), ("q", "b"), ("q", "c")), id="selected-list"),
    pytest.param("q == 'a' or q == 'a'", (("q", "a"),), id="deduplicated"),
    pytest.param("q == 1 or q == true", (("q", 1), ("q", True)), id="one-and-true-distinct"),
    pytest.param("q == -2", (("q", -2),), id="negative-number"),
    pytest.param("q == null or q != null", (), id="null-tests-excluded"),
    pytest.param("q > 3 and q < 'z'", (), id="ordering-excluded"),
    pytest.param("q == r", (), id="two-questions"),
    pytest.param("q + 1 == 2", (), id="arithmetic-excluded"),
    pytest.param(
        "a == 'x' and (b in ['y'] or selected(c, 'z'))",
        (("a", "x"), ("b", "y"), ("c", "z")),
        id="source-order",
    ),
]

# (source, column, fragment of the message)
ERROR_CASES = [
    pytest.param("", 1, "the condition is empty", id="empty"),
    pytest.param("   ", 1, "the condition is empty", id="blank"),
    pytest.param("a == 1 and ", 12, "expected a value after 'and'", id="nothing-after-and"),
    pytest.param("a ==", 5, "expected a value after '=='", id="nothing-after-equals"),
    pytest.param("a == and b", 6, "expected a value after '==', found 'and'", id="keyword-as-value"),
    pytest.param("and a", 1, "cannot start with 'and'", id="starts-with-and"),
    pytest.param("a in", 5, "expected a value after 'in'", id="nothing-after-in"),
    pytest.param("a not in", 9, "expected a value after 'in'", id="nothing-after-not-in"),
    pytest.param("()", 2, "expected a value after '(', found ')'", id="empty-parentheses"),
    pytest.param("(a == 1", 1, "unclosed parenthesis", id="unclosed-parenthesis"),
    pytest.param(
        "x and (a == 1 b)", 15, "expected ')' to close the '(' at column 7, found 'b'", id="unclosed-found"
    ),
    pytest.param("a == 1)", 7, "unmatched ')'", id="unmatched-parenthesis"),
    pytest.param("a in ['x', 'y'", 6, "unclosed bracket", id="unclosed-list"),
    pytest.param("a in ['x' 'y']", 11, "expected ',' or ']' in the list, found 'y'", id="missing-comma"),
    pytest.param("a in ['x',, 'y']", 11, "expected a value after ','", id="double-comma"),
    pytest.param("a == 'x", 6, "unclosed quote", id="unclosed-quote"),
    pytest.param('a == "x', 6, 'the " at column 6 is never closed', id="unclosed-double-quote"),
    pytest.param("a == 1 foo", 8, "unexpected text 'foo'", id="unexpected-text"),
    pytest.param("age 18", 5, "missing before it", id="missing-operator"),
    pytest.param("a == 1 adn b == 2", 8, "did you mean 'and'?", id="keyword-typo"),
    pytest.param("a < b < c", 7, "comparisons cannot be chained", id="chained-comparison"),
    pytest.param("a == b == c", 8, "cannot be chained", id="chained-equality"),
    pytest.param("a == b in c", 8, "cannot be chained", id="chained-in"),
    pytest.param("a not b", 3, "'not' here must be followed by 'in'", id="not-without-in"),
    pytest.param(
        "selectd(x, 'a')", 1, "unknown function 'selectd' (did you mean 'selected'?)", id="typo-function"
    ),
    pytest.param("answerd(x)", 1, "did you mean 'answered'?", id="typo-answered"),
    pytest.param("a and frobnicate(x)", 7, "unknown function 'frobnicate'", id="unknown-function"),
    pytest.param("selected('needs', 'a')", 10, "must be a question id", id="selected-first-not-name"),
    pytest.param("answered(a + 1)", 10, "must be a question id", id="answered-expression"),
    pytest.param("count()", 7, "count() needs a question id", id="count-no-arguments"),
    pytest.param("selected(needs)", 15, "at least one value", id="selected-no-values"),
    pytest.param("answered(a, b)", 13, "takes only one question id", id="answered-two-arguments"),
    pytest.param("len(a b)", 7, "expected ',' or ')' in len(...)", id="call-missing-comma"),
    pytest.param("answered(a", 9, "unclosed parenthesis", id="unclosed-call"),
    pytest.param("a && b", 3, "use 'and' instead of '&&'", id="double-ampersand"),
    pytest.param("a || b", 3, "use 'or'", id="double-pipe"),
    pytest.param("!a", 1, "use 'not'", id="exclamation"),
    pytest.param("a <> 1", 3, "use '!='", id="angle-brackets"),
    pytest.param("a => 1", 3, "did you mean '>='?", id="arrow"),
    pytest.param("a =< 1", 3, "did you mean '<='?", id="reversed-less-equal"),
    pytest.param("a == \u2018x\u2019", 6, "curly quote", id="curly-quotes"),
    pytest.param("a == 2,5", 7, "use '.' for decimals", id="decimal-comma"),
    pytest.param("a == 12abc", 6, "'12abc' is not a number or a question id", id="digit-led-word"),
    pytest.param("a == 1.", 7, "unexpected character '.'", id="trailing-dot"),
    pytest.param("a == #", 6, "unexpected character '#'", id="unknown-character"),
    pytest.param("año == 1", 2, "only use the letters A-Z", id="non-ascii-letter"),
    pytest.param("a == \x00", 6, "U+0000", id="control-character"),
    pytest.param("a\n== 'x' and", 13, "expected a value after 'and'", id="columns-count-newlines"),
    pytest.param("x" * (MAX_LENGTH + 1), MAX_LENGTH + 1, "too long", id="too-long"),
    pytest.param(
        "(" * (MAX_DEPTH + 1) + "a" + ")" * (MAX_DEPTH + 1), MAX_DEPTH + 1, "nested too deeply", id="deep"
    ),
    pytest.param("not " * (MAX_DEPTH + 1) + "a", 4 * MAX_DEPTH + 1, "nested too deeply", id="deep-not"),
    pytest.param("-" * (MAX_DEPTH + 1) + "1", MAX_DEPTH + 1, "nested too deeply", id="deep-minus"),
    pytest.param(
        "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1), MAX_DEPTH + 1, "nested too deeply", id="deep-list"
    ),
]


@pytest.mark.parametrize(("source", "answers", "expected"), VALID_CASES)
def test_evaluate(source: str, answers: dict[str, object], expected: bool) -> None:
    result = compile_expression(source).evaluate(answers)
    assert result is expected


@pytest.mark.parametrize(("source", "expected"), NAMES_CASES)
def test_names(source: str, expected: set[str]) -> None:
    assert compile_expression(source).names == frozenset(expected)


@pytest.mark.parametrize(("source", "expected"), COMPARISONS_CASES)
def test_comparisons(source: str, expected: tuple[tuple[str, object], ...]) -> None:
    comparisons = compile_expression(source).comparisons
    assert comparisons == expected
    assert [type(value) for _, value in comparisons] == [type(value) for _, value in expected]


@pytest.mark.parametrize(("source", "column", "fragment"), ERROR_CASES)
def test_syntax_errors(source: str, column: int, fragment: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        compile_expression(source)
    error = caught.value
    assert fragment in error.message
    assert error.column == column
    assert str(error) == f"column {column}: {error.message}"


def test_error_is_a_value_error_and_pickles() -> None:
    with pytest.raises(ValueError) as caught:
        compile_expression("a ==")
    copy = pickle.loads(pickle.dumps(caught.value))
    assert (copy.message, copy.column) == (caught.value.message, caught.value.column)


def test_non_text_source_is_an_expression_error() -> None:
    with pytest.raises(ExpressionError, match="must be text"):
        compile_expression(True)  # type: ignore[arg-type]


def test_limits_are_inclusive() -> None:
    assert compile_expression("(" * MAX_DEPTH + "a" + ")" * MAX_DEPTH).evaluate({"a": 1})
    assert compile_expression("not " * MAX_DEPTH + "a").evaluate({"a": 1})
    long_sum = "+".join(["1"] * (MAX_LENGTH // 2 - 2)) + " > 0"
    assert len(long_sum) <= MAX_LENGTH
    assert compile_expression(long_sum).evaluate({})


def test_running_out_of_stack_is_an_expression_error() -> None:
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(len(inspect.stack()) + 60)
    try:
        with pytest.raises(ExpressionError, match="too complex"):
            compile_expression("(" * MAX_DEPTH + "a" + ")" * MAX_DEPTH)
    finally:
        sys.setrecursionlimit(limit)


def test_long_chains_of_and_evaluate_without_recursion() -> None:
    source = " and ".join(["a"] * 300)
    assert compile_expression(source).evaluate({"a": 1})


def test_expression_is_a_frozen_value() -> None:
    expression = compile_expression("a == 'x'")
    assert isinstance(expression, Expression)
    assert expression == compile_expression("a == 'x'")
    assert str(expression) == expression.source == "a == 'x'"
    assert hash(expression) == hash(compile_expression("a == 'x'"))
    with pytest.raises(AttributeError):
        expression.source = "b"  # type: ignore[misc]


class _Hostile:
    """An answer whose every operation fails."""

    def __eq__(self, other: object) -> bool:
        raise RuntimeError("no")

    def __bool__(self) -> bool:
        raise RuntimeError("no")

    __hash__ = None  # type: ignore[assignment]


class _HostileMapping(dict):
    def get(self, key, default=None):  # type: ignore[no-untyped-def]
        raise KeyError(key)


@pytest.mark.parametrize(
    "answers",
    [
        pytest.param({"a": _Hostile()}, id="hostile-answer"),
        pytest.param({"a": [_Hostile()]}, id="hostile-list-item"),
        pytest.param(_HostileMapping(), id="hostile-mapping"),
        pytest.param({"a": 10**400}, id="huge-integer"),
        pytest.param({"a": float("nan")}, id="nan"),
        pytest.param({"a": Decimal("NaN")}, id="decimal-nan"),
        pytest.param({"a": {"nested": "dict"}}, id="dict-answer"),
    ],
)
def test_evaluate_never_raises_on_strange_answers(answers: object) -> None:
    for source in ("a == 'x'", "a", "a / 3 > 1", "selected(a, 'x')", "'x' in a", "a < 2", "count(a) > 0"):
        assert compile_expression(source).evaluate(answers) in (True, False)  # type: ignore[arg-type]


def test_module_source_uses_no_eval_or_exec() -> None:
    source = Path(expressions.__file__).read_text(encoding="utf-8")
    tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    forbidden = {"eval", "exec", "compile", "literal_eval", "__import__", "getattr"}
    used = {
        token.string
        for previous, token in zip(tokens, tokens[1:], strict=False)
        if token.type == tokenize.NAME and token.string in forbidden and previous.string != "."
    }
    assert not used  # re.compile is fine; the builtins are not


if st is not None:
    _FRAGMENTS = [
        "a", "b", "needs", "1", "2.5", "-", "+", "*", "/", "%", "(", ")", "[", "]", ",", "==", "=", "!=",
        "<", "<=", ">", ">=", "in", "not", "and", "or", "true", "NULL", "'x'", '"y"', "selected(", "answered(",
        "count(", "len(", "foo(", "'", "\\", "&&", "é", "\n",
    ]  # fmt: skip
    _SCALARS = (
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats()
        | st.text(max_size=5)
        | st.decimals(allow_nan=True, allow_infinity=True)
    )
    _ANSWERS = st.dictionaries(
        st.sampled_from(["a", "b", "needs"]),
        _SCALARS | st.lists(_SCALARS, max_size=4) | st.tuples(_SCALARS) | st.frozensets(st.text(max_size=3)),
    )
    _SOURCES = st.lists(st.sampled_from(_FRAGMENTS), max_size=25).map(" ".join)

    @given(st.text(max_size=300))
    def test_random_text_only_raises_expression_error(source: str) -> None:
        _compile_or_expression_error(source)

    @given(_SOURCES)
    def test_random_token_soup_only_raises_expression_error(source: str) -> None:
        _compile_or_expression_error(source)

    @settings(suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])
    @given(_SOURCES, _ANSWERS)
    def test_evaluate_never_raises_on_random_answers(source: str, answers: dict[str, object]) -> None:
        expression = _compile_or_expression_error(source)
        if expression is not None:
            assert expression.evaluate(answers) in (True, False)

    @given(st.sampled_from([case.values[0] for case in VALID_CASES]), _ANSWERS)
    def test_valid_cases_never_raise_on_random_answers(source: str, answers: dict[str, object]) -> None:
        assert compile_expression(source).evaluate(answers) in (True, False)


def _compile_or_expression_error(source: str) -> Expression | None:
    try:
        expression = compile_expression(source)
    except ExpressionError as error:
        assert error.message
        assert 1 <= error.column <= len(source) + 1
        return None
    assert all(name in source for name in expression.names)
    return expression
