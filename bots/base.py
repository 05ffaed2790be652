"""What every channel hands to the pipeline, and what a sender reports back."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol


class Rejected(Exception):
    """A provider request that must be refused: `status` is 400 (malformed) or 403 (not signed by the provider)."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Incoming:
    """A respondent's message as a channel parsed it from the provider's request."""

    channel: str
    provider_id: str
    address: str
    text: str = ""
    kind: str = "text"
    button: str | None = None
    sequence: int | None = None
    language_hint: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def payload(self) -> dict[str, Any]:
        """The parts besides text that the worker needs; stored with the message."""
        data: dict[str, Any] = {"kind": self.kind}
        if self.button is not None:
            data["button"] = self.button
        if self.language_hint:
            data["language_hint"] = self.language_hint
        data.update(self.extra)
        return data


@dataclass(frozen=True)
class Received:
    """What the worker reads back of a stored message's payload (written by `Incoming.payload`): nothing else is
    stored."""

    kind: str = "text"
    button: str | None = None
    language_hint: str | None = None
    button_payload: str | None = None
    """A WhatsApp template's quick-reply button, as Twilio's ButtonPayload gives it."""
    callback_query_id: str | None = None
    """A Telegram button press, acknowledged with answerCallbackQuery."""

    @classmethod
    def of(cls, payload: dict[str, Any]) -> Received:
        return cls(
            kind=payload.get("kind", "text"),
            button=payload.get("button"),
            language_hint=payload.get("language_hint"),
            button_payload=payload.get("button_payload"),
            callback_query_id=payload.get("callback_query_id"),
        )


@dataclass(frozen=True)
class StatusUpdate:
    """A delivery report: the provider's message id and its new status."""

    provider_id: str
    status: str
    error_code: str | None = None


@dataclass(frozen=True)
class SendResult:
    """What happened when a message was handed to a provider."""

    ok: bool
    provider_id: str | None = None
    retry: bool = False
    unreachable: bool = False
    error_code: str | None = None
    error: str | None = None
    retry_after: float | None = None


@dataclass(frozen=True)
class Outgoing:
    """A message to hand to a provider."""

    id: int
    channel: str
    address: str
    body: str
    payload: dict[str, Any] = field(default_factory=dict)


class Delivery(Protocol):
    """What a webhook reads of a provider's POST: Flask's request, or the WSGI environ on service.fastpath."""

    path: str
    query_string: bytes
    mimetype: str

    def header(self, name: str) -> str | None: ...

    def form(self) -> list[tuple[str, str]]: ...

    def data(self) -> bytes: ...


@dataclass(frozen=True)
class Webhook:
    """A provider's POST to /webhooks/PATH that brings messages or delivery reports, registered by its folder.

    `read(settings, delivery)` verifies and parses it (Rejected when it must be refused; None: nothing to keep);
    once what it brings is stored, the answer is `answer()`: (body, mimetype), status 200. `fast`: also answered by
    service.fastpath, straight from the WSGI environ (the hot ones).
    """

    path: str
    read: Callable[[Any, Delivery], Incoming | StatusUpdate | None]
    answer: Callable[[], tuple[str, str]]
    fast: bool = False


@dataclass(frozen=True)
class Channel:
    """What Retorno knows of one channel, registered once: its folder's `CHANNELS` (bots/__init__.py lists them).

    `render(reply)` gives the body and payload to store; `sender(settings, http)` makes what sends them (None: the
    channel answers inline); `sends_from(settings)` is (the key that shares a send rate, its default messages per
    second), or None when the configuration cannot send; `phone`: addresses are phone numbers (hashed as E.164);
    `test`: a test channel (never paid, never in maps); `errors`: the provider's error codes and what they mean;
    `spoken`: replies are the webhook's own answer (TwiML said in a call), stored as sent, never queued.
    """

    name: str
    render: Callable[[Any], tuple[str, dict[str, Any]]]
    sender: Callable[[Any, Any], Any] | None
    sends_from: Callable[[Any], tuple[str, float] | None]
    phone: bool = False
    test: bool = False
    errors: Any = None
    spoken: bool = False
