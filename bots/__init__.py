"""Channel adapters: each folder turns a provider's webhook into an `Incoming`, renders and sends `Outgoing`
messages, and registers what Retorno must know of its channels (`bots.base.Channel`) in its `CHANNELS`.

A new channel is a new folder with its `CHANNELS` (and `WEBHOOKS`: its POST routes under /webhooks, served by
service.webhooks), and one more entry in `_FOLDERS` below.

    render(channel, reply)              -> (body, payload) to store as an outbound message
    make_sender(channel, settings, http) -> an object whose send(Outgoing) returns a SendResult, never raising
"""

from __future__ import annotations

from typing import Any, Protocol

from bots import console, telegram, twilio, voice
from bots._http import Http
from bots.base import Channel, Outgoing, SendResult, Webhook
from surveys.engine import Reply

_FOLDERS = (twilio, telegram, console, voice)
REGISTRY: dict[str, Channel] = {channel.name: channel for folder in _FOLDERS for channel in folder.CHANNELS}
CHANNELS = tuple(REGISTRY)
WEBHOOKS: tuple[Webhook, ...] = tuple(hook for folder in _FOLDERS for hook in getattr(folder, "WEBHOOKS", ()))
PHONE_CHANNELS = tuple(name for name, channel in REGISTRY.items() if channel.phone)
TEST_CHANNELS = tuple(name for name, channel in REGISTRY.items() if channel.test)
SPOKEN = tuple(name for name, channel in REGISTRY.items() if channel.spoken)
"""Channels whose replies are the webhook's own answer (TwiML said in the call): stored as sent, never queued."""


class Sender(Protocol):
    def send(self, outgoing: Outgoing) -> SendResult: ...


def channel(name: str) -> Channel:
    """The registered channel of this name; ValueError naming the known ones."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown channel {name!r}; known: {', '.join(CHANNELS)}") from None


def render(channel_name: str, reply: Reply) -> tuple[str, dict[str, Any]]:
    """What to send on the channel for the engine's reply: buttons on Telegram, numbered text elsewhere."""
    return channel(channel_name).render(reply)


def make_sender(channel_name: str, settings: Any, http: Http | None = None) -> Sender:
    """The channel's sender, sharing `http` (a requests.Session or a bots._http.Client) when given."""
    make = channel(channel_name).sender
    if make is None:
        raise ValueError(f"the {channel_name} channel answers inline: it has no sender")
    return make(settings, http)
