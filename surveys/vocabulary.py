"""The engine's named values: a session's status and the kinds of event a step reports.

StrEnum members are equal to their strings (`SessionStatus.DECLINED == "declined"`), so stored states, JSON and
SQL see the same text as before; a misspelt member fails at import.
"""

from __future__ import annotations

from enum import StrEnum


class SessionStatus(StrEnum):
    NEW = "new"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    DECLINED = "declined"
    OPTED_OUT = "opted_out"
    EXPIRED = "expired"
    INELIGIBLE = "ineligible"


class EventKind(StrEnum):
    """What happened in one step of a conversation (`surveys.engine.Event.kind`)."""

    STARTED = "started"
    CONSENTED = "consented"
    DECLINED = "declined"
    ANSWERED = "answered"
    SKIPPED = "skipped"
    INVALID = "invalid"
    COMPLETED = "completed"
    EXPIRED = "expired"
    INELIGIBLE = "ineligible"
    OPTED_OUT = "opted_out"
    OPTED_IN = "opted_in"
    STOP_ASKED = "stop_asked"
    STOP_WITHDRAWN = "stop_withdrawn"
    PAUSED = "paused"
    RESUMED = "resumed"
    HELP = "help"
    IGNORED = "ignored"
    STALE_BUTTON = "stale_button"
    LANGUAGE_CHANGED = "language_changed"
    PAYOUT_PHONE = "payout_phone"
    PAYOUT_PHONE_REFUSED = "payout_phone_refused"
    ERASE_REQUESTED = "erase_requested"
    ERASE_CONFIRMED = "erase_confirmed"
