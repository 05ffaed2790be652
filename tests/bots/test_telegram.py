"""Telegram: the case tables in bots/telegram/testdata, the keyboard, and what tables cannot say."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict

import pytest
from hypothesis import given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st

from bots.base import Incoming, Rejected
from bots.telegram import (
    TelegramSender,
    inline_keyboard,
    parse_body,
    parse_update,
    render,
    set_webhook,
    verify,
)
from surveys.engine import Reply, ReplyChoice
from tests.bots.fakes import (
    case_ids,
    check_requests,
    check_result,
    fake_session,
    load_table,
    make_settings,
    outgoing,
)

INCOMING = load_table("telegram/testdata/incoming.json")
OUTGOING = load_table("telegram/testdata/outgoing.json")
SETTINGS = make_settings(INCOMING["settings"])


def secret_header(settings, case) -> str | None:
    signed = case["signed"]
    if signed is False:
        return None
    if signed == "wrong":
        return settings.telegram_webhook_secret + "x"
    assert signed is True
    return settings.telegram_webhook_secret


def webhook(settings, case):
    """What the webhook does with the raw body: verify, decode, parse; (HTTP status, result or Rejected)."""
    raw = json.dumps(case["body"], ensure_ascii=False).encode("utf-8")
    try:
        verify(settings, secret_header(settings, case))
        return 200, parse_update(parse_body(raw))
    except Rejected as rejected:
        return rejected.status, rejected


# -- tables -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", INCOMING["cases"], ids=case_ids(INCOMING))
def test_incoming(case):
    status, result = webhook(SETTINGS, case)
    assert status == case["status"]
    if status != 200:
        assert result.code == case["error_code"]
    elif case["message"] is None:
        assert result is None
    else:
        assert result == Incoming(**case["message"])


ACCEPTED = [case for case in INCOMING["cases"] if case["status"] == 200]


@pytest.mark.parametrize("case", ACCEPTED, ids=[case["label"] for case in ACCEPTED])
def test_table_updates_are_real_bot_api_updates(case):
    """python-telegram-bot's model of the Bot API reads every accepted update of the table, and agrees with our parser
    on the update and the person it comes from (our parser stays dependency-free and tolerant: this keeps its
    table honest)."""
    import telegram

    update = telegram.Update.de_json(case["body"], None)
    assert update.update_id == case["body"]["update_id"]
    if case["message"] is not None:
        assert case["message"]["provider_id"] == str(update.update_id)
        assert case["message"]["address"] == str(update.effective_user.id)


@pytest.mark.parametrize("case", OUTGOING["cases"], ids=case_ids(OUTGOING))
def test_outgoing(case):
    settings = make_settings(OUTGOING["settings"], case.get("settings"))
    session, provider = fake_session(case["responses"])
    result = TelegramSender(settings, session).send(outgoing(case["outgoing"]))
    check_result(result, case["result"])
    check_requests(provider, case["requests"])
    assert all(recorded.timeout == (3.05, 10) for recorded in provider.requests)
    assert OUTGOING["settings"]["telegram_bot_token"] not in (result.error or "")


def test_no_names_are_kept():
    for case in INCOMING["cases"]:
        status, result = webhook(SETTINGS, case)
        if isinstance(result, Incoming):
            kept = json.dumps(asdict(result), ensure_ascii=False)
            for name in ("María", "López", "maria_lopez", "Juan", "VCARD", "Zócalo", "file_id", "AgAC"):
                assert name not in kept, (case["label"], name)


# -- webhook details ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("header", [None, "", "x", "Xq7_s3cret-Webhook_Toke", "ñ", "Xq7_s3cret-Webhook_Token "])
def test_wrong_secrets(header):
    with pytest.raises(Rejected) as rejected:
        verify(SETTINGS, header)
    assert (rejected.value.status, rejected.value.code) == (403, "bad_secret")


def test_unconfigured_secret_rejects_everything():
    with pytest.raises(Rejected) as rejected:
        verify(make_settings(), "anything")
    assert rejected.value.status == 403


@pytest.mark.parametrize("raw", [b"", b"{", b"\xff\xfe", "nope", b"[1,"])
def test_bodies_that_are_not_json(raw):
    with pytest.raises(Rejected) as rejected:
        parse_body(raw)
    assert (rejected.value.status, rejected.value.code) == (400, "malformed")


def test_start_payload_outside_the_deep_link_alphabet_is_dropped():
    update = {"update_id": 1, "message": {"message_id": 2, "date": 0, "text": "/start hola mundo",
                                          "from": {"id": 5, "is_bot": False, "first_name": "A"},
                                          "chat": {"id": 5, "type": "private", "first_name": "A"}}}
    incoming = parse_update(update)
    assert (incoming.text, incoming.extra) == ("/start", {})


def test_messages_from_bots_are_ignored():
    update = {"update_id": 1, "message": {"message_id": 2, "date": 0, "text": "hola",
                                          "from": {"id": 5, "is_bot": True, "first_name": "B"},
                                          "chat": {"id": 5, "type": "private", "first_name": "B"}}}
    assert parse_update(update) is None


def test_text_that_only_mentions_start_is_left_alone():
    update = {"update_id": 1, "message": {"message_id": 2, "date": 0, "text": "/started",
                                          "from": {"id": 5, "is_bot": False, "first_name": "A"},
                                          "chat": {"id": 5, "type": "private", "first_name": "A"}}}
    assert parse_update(update).text == "/started"


# -- keyboard -----------------------------------------------------------------------------------------------


def choices(*labels: str, question: str = "q") -> tuple[ReplyChoice, ...]:
    return tuple(ReplyChoice(f"v{i}", label, f"{question}=v{i}") for i, label in enumerate(labels, 1))


def test_short_labels_go_two_per_row():
    keyboard = inline_keyboard(choices("Sí", "No", "No sé"))
    assert keyboard == {"inline_keyboard": [
        [{"text": "Sí", "callback_data": "q=v1"}, {"text": "No", "callback_data": "q=v2"}],
        [{"text": "No sé", "callback_data": "q=v3"}],
    ]}


def test_long_labels_go_one_per_row():
    keyboard = inline_keyboard(choices("Empleo formal", "No"))
    assert [len(row) for row in keyboard["inline_keyboard"]] == [1, 1]
    assert [len(row) for row in inline_keyboard(choices("a" * 12, "b" * 12))["inline_keyboard"]] == [2]


def test_callback_data_limit_is_64_bytes_never_truncated():
    inline_keyboard([ReplyChoice("x", "X", "q=" + "x" * 62)])
    with pytest.raises(ValueError, match="64 bytes"):
        inline_keyboard([ReplyChoice("x", "X", "q=" + "x" * 63)])
    with pytest.raises(ValueError, match="64 bytes"):
        inline_keyboard([ReplyChoice("ñ", "Ñ", "q=" + "ñ" * 32)])
    with pytest.raises(ValueError):
        inline_keyboard([ReplyChoice("x", "X", "")])
    with pytest.raises(ValueError):
        inline_keyboard([])


def test_empty_label_falls_back_to_the_value():
    assert inline_keyboard([ReplyChoice("yes", " ", "q=yes")])["inline_keyboard"] == [
        [{"text": "yes", "callback_data": "q=yes"}]]


def test_render():
    single = Reply("¿Trabaja?", "q", choices("Sí", "No"), numbered=True)
    text, payload = render(single)
    assert text == "¿Trabaja?"
    assert payload == {"reply_markup": inline_keyboard(single.choices)}
    confirm = Reply("¿Quiso decir Sí?", "q", choices("Sí", "No"))
    assert render(confirm)[1]["reply_markup"]["inline_keyboard"][0][0]["text"] == "Sí"
    multi = Reply("¿Qué apoyos recibió?", "q", choices("Salud", "Vivienda"), numbered=True, multi=True)
    assert render(multi) == ("¿Qué apoyos recibió?\n1) Salud\n2) Vivienda", {})
    assert render(Reply("Gracias")) == ("Gracias", {})


# -- sending details ----------------------------------------------------------------------------------------


def test_string_chat_ids_pass_through():
    session, provider = fake_session([{"status": 200, "json": {"ok": True, "result": {"message_id": 5}}}])
    TelegramSender(make_settings(OUTGOING["settings"]), session).send(
        outgoing({"id": 1, "channel": "telegram", "address": "@canal", "body": "hola"}))
    assert provider.requests[0].decoded()["json"]["chat_id"] == "@canal"


def test_429_without_parameters_uses_retry_after_header():
    session, _ = fake_session([{"status": 429, "headers": {"Retry-After": "7"}, "text": "slow down"}])
    result = TelegramSender(make_settings(OUTGOING["settings"]), session).send(
        outgoing({"id": 1, "channel": "telegram", "address": "5", "body": "hola"}))
    assert (result.retry, result.retry_after) == (True, 7.0)


def test_real_connection_refused_keeps_the_token_out(closed_port):
    settings = make_settings(OUTGOING["settings"], {"telegram_api_base": f"http://127.0.0.1:{closed_port}"})
    result = TelegramSender(settings).send(outgoing({"id": 1, "channel": "telegram", "address": "5", "body": "x"}))
    assert (result.ok, result.retry, result.error_code) == (False, True, "connection")
    assert settings.telegram_bot_token not in result.error
    assert "/bot***/sendMessage" in result.error


def test_logs_carry_no_chat_id_nor_text(caplog):
    session, _ = fake_session([{"status": 403, "json": {"ok": False, "error_code": 403,
                                                        "description": "Forbidden: bot was blocked by the user"}}])
    with caplog.at_level(logging.DEBUG):
        TelegramSender(make_settings(OUTGOING["settings"]), session).send(
            outgoing({"id": 3, "channel": "telegram", "address": "987654321", "body": "secreto"}))
    assert caplog.records
    assert "987654321" not in caplog.text and "secreto" not in caplog.text


def test_set_webhook():
    settings = make_settings(OUTGOING["settings"], {"telegram_webhook_secret": "Xq7_s3cret-Webhook_Token"})
    session, provider = fake_session([{"status": 200, "json": {"ok": True, "result": True,
                                                               "description": "Webhook was set"}}])
    assert set_webhook(settings, session) == {"ok": True, "result": True, "description": "Webhook was set"}
    check_requests(provider, [{
        "method": "POST",
        "url": f"https://api.telegram.org/bot{settings.telegram_bot_token}/setWebhook",
        "json": {"url": "https://retorno.example.org/webhooks/telegram", "secret_token": "Xq7_s3cret-Webhook_Token",
                 "allowed_updates": ["message", "edited_message", "callback_query"], "drop_pending_updates": False},
    }])


def test_set_webhook_refuses_a_secret_telegram_would_refuse():
    settings = make_settings(OUTGOING["settings"], {"telegram_webhook_secret": "has spaces!"})
    session, provider = fake_session([])
    assert set_webhook(settings, session)["ok"] is False
    assert provider.requests == []


# -- whatever arrives, the parser only ever rejects ----------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=25,
)
FIELDS = ["message_id", "from", "chat", "text", "caption", "contact", "photo", "sticker", "voice", "location",
          "venue", "date", "id", "type", "is_bot", "language_code", "phone_number", "user_id", "data", "message",
          "inline_message_id", "game_short_name"]
objects = st.recursive(
    json_values,
    lambda children: st.dictionaries(st.sampled_from(FIELDS), children | st.sampled_from(["private", "group"]),
                                     max_size=6),
    max_leaves=30,
)
updates = st.fixed_dictionaries(
    {"update_id": st.integers() | json_values},
    optional={kind: objects for kind in ("message", "edited_message", "callback_query", "channel_post")},
)


def only_rejections(value):
    try:
        result = parse_update(value)
    except Rejected as rejected:
        assert (rejected.status, rejected.code) == (400, "malformed")
    else:
        assert result is None or isinstance(result, Incoming)


@hyp_settings(max_examples=300)
@given(json_values)
def test_random_json_only_ever_rejects(value):
    only_rejections(value)


@hyp_settings(max_examples=500)
@given(updates)
def test_random_updates_only_ever_reject(update):
    only_rejections(update)


def maybe(strategy):
    """Mostly the right type, sometimes anything."""
    return strategy | json_values


users = st.fixed_dictionaries(
    {"id": maybe(st.integers())},
    optional={"is_bot": maybe(st.booleans()), "language_code": maybe(st.text(max_size=6))},
)
chats = st.fixed_dictionaries({"id": maybe(st.integers()), "type": maybe(st.sampled_from(["private", "group"]))})
messages = st.fixed_dictionaries(
    {"message_id": maybe(st.integers()), "chat": maybe(chats)},
    optional={
        "from": maybe(users),
        "text": maybe(st.text(max_size=30) | st.sampled_from(["/start", "/start abc", "/start@Bot x y"])),
        "caption": maybe(st.text(max_size=10)),
        "contact": maybe(st.fixed_dictionaries({"phone_number": maybe(st.text(max_size=15))},
                                               optional={"user_id": maybe(st.integers())})),
        "sticker": json_values,
        "photo": json_values,
        "location": json_values,
    },
)
queries = st.fixed_dictionaries(
    {"id": maybe(st.text(max_size=20)), "from": maybe(users)},
    optional={"message": maybe(messages), "data": maybe(st.text(max_size=70))},
)
shaped = st.fixed_dictionaries({"update_id": maybe(st.integers())}).flatmap(
    lambda base: st.one_of(
        st.builds(lambda m: {**base, "message": m}, maybe(messages)),
        st.builds(lambda m: {**base, "edited_message": m}, maybe(messages)),
        st.builds(lambda q: {**base, "callback_query": q}, maybe(queries)),
    )
)


@hyp_settings(max_examples=400)
@given(shaped)
def test_nearly_right_updates_only_ever_reject(update):
    only_rejections(update)


def test_texts_are_made_storable():
    base = {"message_id": 2, "date": 0, "from": {"id": 5, "is_bot": False, "first_name": "A"},
            "chat": {"id": 5, "type": "private", "first_name": "A"}}
    assert parse_update({"update_id": 1, "message": {**base, "text": "s\x00í"}}).text == "sí"
    with pytest.raises(Rejected):
        parse_update({"update_id": 1, "message": {**base, "text": "\ud83d"}})
    assert parse_update(parse_body(b'{"update_id": 1, "message": {"message_id": 2, "date": 0, '
                                   b'"chat": {"id": 5, "type": "private"}, "text": "\\ud83d\\udc4d"}}')).text == "👍"
