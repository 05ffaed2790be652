"""Console replies need no provider: the chat client reads them from the database through the API."""

from __future__ import annotations

from typing import Any

from bots.base import Outgoing, SendResult


class ConsoleSender:
    """Always succeeds; the message id doubles as the provider id."""

    channels = ("console",)

    def __init__(self, settings: Any = None, http: Any = None):
        self.settings = settings

    def send(self, outgoing: Outgoing) -> SendResult:
        return SendResult(ok=True, provider_id=f"console-{outgoing.id}")
