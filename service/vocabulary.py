"""Every named status of Retorno's rows, in one place for the models, the SQL and the workers.

StrEnum members are equal to their strings (`InboundStatus.PENDING == "pending"`), so the stored values, the JSON
API and docs/api.md are unchanged; a misspelt member fails at import, not in production. The engine's own values
(a session's status, the kinds of event a step reports) live in surveys.vocabulary and are re-exported here.
"""

from __future__ import annotations

from enum import StrEnum

from surveys.vocabulary import EventKind, SessionStatus

__all__ = [
    "CampaignMessageStatus", "CampaignState", "EventKind", "InboundStatus", "IncentiveState", "OutboundStatus",
    "SessionStatus",
]


class InboundStatus(StrEnum):
    """inbound_messages.status: pending -> done | ignored | failed."""

    PENDING = "pending"
    DONE = "done"
    IGNORED = "ignored"
    FAILED = "failed"


class OutboundStatus(StrEnum):
    """outbound_messages.status: queued -> sending -> sent, then what the provider reports (Twilio's names)."""

    QUEUED = "queued"
    ACCEPTED = "accepted"
    SCHEDULED = "scheduled"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    UNDELIVERED = "undelivered"
    FAILED = "failed"
    CANCELED = "canceled"
    CANCELLED = "cancelled"
    """Retorno's own: taken back before sending (the respondent opted out or asked for erasure)."""


class CampaignMessageStatus(StrEnum):
    """campaign_messages.status (see service.models.CampaignMessage)."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    SKIPPED = "skipped"
    FALLBACK = "fallback"


class IncentiveState(StrEnum):
    """incentives.status: awaiting_phone -> pending -> submitted -> succeeded | failed; duplicate."""

    AWAITING_PHONE = "awaiting_phone"
    PENDING = "pending"
    SUBMITTED = "submitted"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    DUPLICATE = "duplicate"


class CampaignState(StrEnum):
    """campaigns.status: draft -> running <-> paused -> finished."""

    DRAFT = "draft"
    RUNNING = "running"
    PAUSED = "paused"
    FINISHED = "finished"
