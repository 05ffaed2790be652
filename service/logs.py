"""Logging that never writes a phone number or a secret, whatever the level.

Two layers: the HTTP and framework libraries that log URLs and bodies (urllib3 logs every request line, with the
phone number Reloadly's operator lookup puts in its path) are held at WARNING, whatever RETORNO_LOG_LEVEL says;
and every record this process makes, from any logger, is scrubbed as it is created: digit runs that may be phone
numbers become `[number]`, tokens and configured secrets become `[secret]`, in the message and in the traceback.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from typing import Any

QUIET_LOGGERS = ("urllib3", "requests", "httpx", "httpcore", "twilio", "werkzeug", "hpack", "charset_normalizer")
"""Libraries that log URLs, headers or bodies at INFO or DEBUG: never below WARNING."""

_ENCODED_SEPARATOR = r"%(?:25)?(?:2[0BbDdEe89]|09|0[AaDd]|[Cc]2%(?:25)?[Aa]0)"
"""A separator as a URL writes it (also encoded twice): space, plus, dash, dot, parentheses, tab, newlines, nbsp."""
_SEPARATOR = rf"(?:[\s().+_-]|{_ENCODED_SEPARATOR})"
_PLUS = r"(?:\+|%(?:25)?2[Bb])"
_PHONE = re.compile(
    rf"(?<!\d)(?:{_ENCODED_SEPARATOR}|{_PLUS})+\d(?:{_SEPARATOR}{{0,3}}\d){{7,}}(?!\w)"  # +52..., %2B52%2055...
    rf"|(?<![\w.%-])\d(?:{_SEPARATOR}{{0,3}}\d){{7,}}(?!\w)"  # 55 1234 5678, 52.55.1234.5678, /phone/5255.../
)
"""Eight digits or more, written with any separators a person or a URL uses: +52 55 1234 5678, 55-1234-5678,
(55) 1234 5678, 52.55.1234.5678, 52+55+1234+5678 (a form's spaces), %2B52%2055%201234%205678, %252B52... (encoded
twice), whatsapp:+521..., /phone/525512345678/ in a path."""
_NOT_A_NUMBER = re.compile(
    r"\d{4}-\d{2}-\d{2}(?:[ T]\d{2})?"  # a date written 2026-03-02 or 2026-03-02 18
    r"|\d{1,3}(?:\.\d{1,3}){3}"  # an IPv4 address (gunicorn's access log starts with one)
    r"|\d{1,3}\.\d{1,6}"  # a figure as Python writes it: 0.123456, 412.5 (not 52.5512345678)
    r"|\d{2}\.\d+[+-]\d{2}"  # the seconds of an ISO time and its offset: 18:00:00.123456+00:00
)
_TOKENS = re.compile(
    r"\d{6,12}:[A-Za-z0-9_-]{30,}"            # Telegram bot tokens (also inside /bot<token>/ paths)
    r"|rt_[A-Za-z0-9_-]{20,}"                  # Retorno API tokens
    r"|(?i:bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}"  # Authorization headers
)
_HIGH_LATIN1 = re.compile("[\x80-\xff]")
_secrets: set[str] = set()
_installed = threading.Lock()
_factory: Any = None


def scrub(text: str) -> str:
    """`text` without phone numbers, tokens or configured secrets."""
    text = _as_utf8(text)
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, "[secret]")
    text = _TOKENS.sub("[secret]", text)
    return _PHONE.sub(_number, text)


def _as_utf8(text: str) -> str:
    """UTF-8 read as Latin-1 (a WSGI path, as granian logs it: `+52\xc2\xa055`) decoded as the UTF-8 it is, so
    its separators are seen as separators."""
    if not text.isascii() and _HIGH_LATIN1.search(text):
        try:
            return text.encode("latin-1").decode("utf-8")
        except UnicodeError:
            pass
    return text


def _number(found: re.Match) -> str:
    if _NOT_A_NUMBER.fullmatch(found.group(0)):
        return found.group(0)
    return "[number]"


def protect(*secrets: str | None) -> None:
    """Secrets (provider tokens, keys) to replace wherever a log record would show them."""
    _secrets.update(s for s in secrets if s and len(s) >= 6)


def quiet_libraries() -> None:
    for name in QUIET_LOGGERS:
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET or logger.level < logging.WARNING:
            logger.setLevel(logging.WARNING)


def install(settings: Any = None) -> None:
    """Scrub every log record of this process from now on (idempotent), hold the noisy libraries at WARNING,
    and protect `settings`' secrets."""
    global _factory
    if settings is not None:
        protect(settings.secret_key, settings.twilio_auth_token, settings.telegram_bot_token,
                settings.telegram_webhook_secret, settings.reloadly_client_secret,
                *(getattr(settings, "old_secret_keys", ()) or ()))
    quiet_libraries()
    with _installed:
        if _factory is not None:
            return
        previous = logging.getLogRecordFactory()

        def scrubbed(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            _scrub_record(record)
            return record

        _factory = scrubbed
        logging.setLogRecordFactory(scrubbed)


def _scrub_record(record: logging.LogRecord) -> None:
    try:
        message = record.getMessage()
    except Exception:  # noqa: BLE001 - a bad format string: logging reports it later, as it would
        return
    clean = scrub(message)
    if clean != message or record.args:
        record.msg, record.args = clean, None
    if record.exc_info and not record.exc_text:
        record.exc_text = scrub(logging.Formatter().formatException(record.exc_info))
    if record.stack_info:
        record.stack_info = scrub(record.stack_info)


def setup(level: str = "INFO") -> None:
    """The command line's logging: RETORNO_LOG_LEVEL (default `level`), scrubbed, libraries held at WARNING."""
    logging.basicConfig(
        level=os.environ.get("RETORNO_LOG_LEVEL", level).upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    install()
