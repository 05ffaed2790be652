"""WhatsApp's rules: the 24-hour session window, Content API templates, and template quick-reply buttons.

WhatsApp lets a business send free text only within 24 hours of the person's last message (the customer service
window). Anything else (an invitation to someone on an imported list, a reminder a day later, a wave months later,
the credit-sent notice) must be an approved template, sent with `ContentSid` and `ContentVariables` and no `Body`,
or Twilio refuses it (error 63016).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from surveys.messages import OPT_OUT_KEYWORDS

WINDOW = timedelta(hours=24)
MARGIN = timedelta(minutes=10)
"""Free text is sent only until this long before the window closes (the message may wait in a queue a while)."""
WINDOW_CLOSED = "63016"
"""Twilio's error for free text outside the window."""
CONTENT_SID = re.compile(r"HX[0-9a-fA-F]{32}", re.ASCII)
STOP_PAYLOADS = OPT_OUT_KEYWORDS | {"opt_out", "optout", "opt-out"}
"""Quick-reply button ids that mean "no more messages" (`stop`, or any of Retorno's STOP words, like `baja`); any
other button, like `start`, opens the conversation."""


def window_open(last_inbound_at: datetime | None, now: datetime) -> bool:
    """Whether free text may go to a person who last wrote at `last_inbound_at` (None: never)."""
    return last_inbound_at is not None and now < _aware(last_inbound_at) + WINDOW - MARGIN


def awaiting_reply(last_template_at: datetime | None, last_inbound_at: datetime | None) -> bool:
    """Whether a template went out after the person's last message: their next message answers the template."""
    if last_template_at is None:
        return False
    return last_inbound_at is None or _aware(last_inbound_at) < _aware(last_template_at)


def template(content_sid: str, variables: dict[str, str] | None = None) -> dict[str, Any]:
    """The outbound payload of a template message (what the Twilio sender turns into ContentSid/ContentVariables)."""
    return {"content_sid": content_sid, "content_variables": dict(variables or {})}


def is_template(payload: dict[str, Any] | None) -> bool:
    """Whether an outbound message's payload is a template's."""
    return bool((payload or {}).get("content_sid"))


def button_stops(button_payload: str | None) -> bool:
    """Whether a template's quick-reply button means STOP."""
    return (button_payload or "").strip().lower() in STOP_PAYLOADS


def _aware(moment: datetime) -> datetime:
    """SQLite gives naive UTC datetimes back."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
