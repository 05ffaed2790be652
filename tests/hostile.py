"""Hostile input for property tests: the values, paths, queries, headers and bodies an attacker or a broken client
sends. Shared by the in-process fuzz tests (tests/faults/test_fuzz.py) and the ones over the wire
(tests/faults/test_hostile.py)."""

from __future__ import annotations

import json
import re
from urllib.parse import quote

from hypothesis import strategies as st

NUMBERS = [
    "0", "1", "-1", "9223372036854775807", "9223372036854775808", "-9223372036854775809", "18446744073709551616",
    "1" * 23, "9" * 400, "²", "٣", "１", "1e9", "0x10", " 1", "1 ", "+1", "00000000000000000000001", "NaN",
    "Infinity", "1.5", "2147483648",
]
"""Numbers as text: 64-bit edges, far beyond them, digits that are not ASCII, signs, floats, spaces."""
NASTY = [
    "\x00", "a\x00b", "\x00" * 50, "%00", "\x1b[31m", "\r\n", "\t", "\x7f", "\x85", "..", "../../etc/passwd",
    "é", "\u202e", "\ufeff", "\U0001f600", "x" * 5000, "'; DROP TABLE contacts; --", "<script>", "{{7*7}}", "%s%n",
    "\\", "/", "//", " ", "", "null", "[]", "{}", "true", "reintegracion-mx\x00", "REINTEGRACION-MX",
]
"""Text that broke, or could break, something: NUL and control characters, traversal, injections, huge lengths."""
KILLERS = ["\x00", "a\x00b", "\x1b", "²", "٣", "9223372036854775808", "18446744073709551616", "1" * 23, "-1",
           "x" * 5000, "../..", "\x85"]
"""One of each kind that has given a 5xx somewhere: swept through every position of every route."""
KNOWN_KEYS = ["format", "include_contact", "version", "wave", "group", "dimension", "indicator", "metric",
              "language", "refresh", "survey", "status", "address", "after", "lang", "by", "page", "since", "id"]
TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=60)
VALUES = st.sampled_from(NUMBERS) | st.sampled_from(NASTY) | TEXT | st.integers(-(2**70), 2**70).map(str)
SEGMENTS = VALUES | st.sampled_from(["reintegracion-mx", "1", "2", "dashboard.css"])
QUERY_KEYS = st.sampled_from(KNOWN_KEYS) | TEXT
QUERIES = st.lists(st.tuples(QUERY_KEYS, VALUES), max_size=4)
METHODS = st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"])
LATIN1 = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"), max_size=80)
HEADER_VALUES = LATIN1 | st.sampled_from(["", " ", "x" * 4000, "Bearer", "Bearer ", "Bearer \xff", "es;q=2, *;q=-1",
                                          "zz-ZZ, ,;q=", "application/json; charset=\xff"])
HEADER_NAMES = st.sampled_from([
    "Authorization", "Cookie", "Accept-Language", "Accept", "Content-Type", "X-Twilio-Signature",
    "X-Telegram-Bot-Api-Secret-Token", "X-Forwarded-For", "X-Forwarded-Proto", "Range", "If-None-Match",
    "User-Agent", "Origin", "Referer",
])
HEADERS = st.dictionaries(HEADER_NAMES, HEADER_VALUES, max_size=4)


def deep_json(depth: int) -> bytes:
    """A JSON array nested `depth` levels deep (beyond any parser's recursion limit for large depths)."""
    return b"[" * depth + b"]" * depth


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**80), 2**80) | st.floats(allow_nan=False) | TEXT
    | st.sampled_from(NASTY),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(TEXT | st.sampled_from(
        ["update_id", "message", "message_id", "chat", "id", "from", "text", "callback_query", "data", "language",
         "messages", "channel"]), children, max_size=4),
    max_leaves=20,
)
BODIES = (
    st.binary(max_size=500)
    | st.sampled_from([b"\xff\xfe\xfd", b"\x00" * 100, b"{" * 5000, deep_json(100_000), b'{"update_id": 1}',
                       b"a=" + b"x" * 200_000, b"%", b"=&=&&", "\ud800".encode("utf-8", "surrogatepass")])
    | JSON.map(lambda value: json.dumps(value).encode())
    | QUERIES.map(lambda pairs: "&".join(f"{quote(k)}={quote(v)}" for k, v in pairs).encode())
)
CONTENT_TYPES = st.sampled_from([
    "application/x-www-form-urlencoded", "application/json", "text/plain", "multipart/form-data",
    "multipart/form-data; boundary=x", "application/xml", "", "application/json; charset=utf-16",
])

_PLACEHOLDER = re.compile(r"<(?:(?P<converter>[a-z]+)(?:\([^)]*\))?:)?(?P<name>[a-z_]+)>")


def fill(rule: str, values: list[str]) -> str:
    """A route's rule (`/api/v1/surveys/<survey_id>`) with its placeholders replaced, percent-encoded, in order."""
    given = iter(values)
    return _PLACEHOLDER.sub(lambda found: quote(next(given, "x"), safe=""), rule)


def placeholders(rule: str) -> int:
    return len(_PLACEHOLDER.findall(rule))
