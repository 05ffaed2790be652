"""The console channel: bots/console/testdata/incoming.json and the sender."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st

from bots.base import Incoming, Rejected
from bots.console import ConsoleSender, parse_message, render
from surveys.engine import Reply, ReplyChoice
from tests.bots.fakes import case_ids, load_table, outgoing

INCOMING = load_table("console/testdata/incoming.json")


@pytest.mark.parametrize("case", INCOMING["cases"], ids=case_ids(INCOMING))
def test_incoming(case):
    try:
        status, result = 200, parse_message(case["body"])
    except Rejected as rejected:
        status, result = rejected.status, rejected
    assert status == case["status"]
    if status != 200:
        assert result.code == case["error_code"]
        return
    expected = dict(case["message"])
    if expected["provider_id"] is None:
        assert re.fullmatch(r"[0-9a-f]{32}", result.provider_id)
        expected["provider_id"] = result.provider_id
    assert result == Incoming(**expected)


def test_fresh_ids_differ():
    first, second = parse_message({"from": "a", "text": "x"}), parse_message({"from": "a", "text": "x"})
    assert first.provider_id != second.provider_id


def test_render_and_send():
    reply = Reply("¿Sexo?", "q", (ReplyChoice("f", "Mujer", "q=f"), ReplyChoice("m", "Hombre", "q=m")), numbered=True)
    assert render(reply) == ("¿Sexo?\n1) Mujer\n2) Hombre", {})
    result = ConsoleSender().send(outgoing({"id": 5, "channel": "console", "address": "ana", "body": "hola"}))
    assert (result.ok, result.provider_id) == (True, "console-5")


def test_text_is_made_storable():
    assert parse_message({"from": "a", "text": "a\x00b"}).text == "ab"
    with pytest.raises(Rejected):
        parse_message({"from": "a", "text": "\ud800"})


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(
        st.sampled_from(["from", "text", "button", "id", "language"]) | st.text(max_size=5), children, max_size=5),
    max_leaves=15,
)


@hyp_settings(max_examples=300)
@given(json_values)
def test_random_values_only_ever_reject(value):
    try:
        assert isinstance(parse_message(value), Incoming)
    except Rejected as rejected:
        assert (rejected.status, rejected.code) == (400, "malformed")
