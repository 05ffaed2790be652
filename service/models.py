"""The database: contacts, their survey sessions and answers, messages in and out, survey versions, tokens.

Addresses are never stored in clear: `address_enc` is AES-GCM ciphertext, `address_hash` a keyed hash to find it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from service.vocabulary import (
    CampaignMessageStatus,
    CampaignState,
    InboundStatus,
    OutboundStatus,
    SessionStatus,
)

Id = BigInteger().with_variant(Integer, "sqlite")
Json = JSON().with_variant(JSONB(), "postgresql")


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: DateTime(timezone=True), dict[str, Any]: Json, list[Any]: Json}


class Contact(Base):
    """A person we talk to on one channel; `public_id` is the pseudonymous respondent id in exports."""

    __tablename__ = "contacts"
    __table_args__ = (
        UniqueConstraint("channel", "address_hash", name="uq_contacts_channel_address"),
        Index("ix_contacts_test", "id", postgresql_where=text("test"), sqlite_where=text("test")),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(24), unique=True)
    channel: Mapped[str] = mapped_column(String(16))
    address_hash: Mapped[str] = mapped_column(String(64))
    address_enc: Mapped[str] = mapped_column(Text)
    phone_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    phone_enc: Mapped[str | None] = mapped_column(Text)
    language: Mapped[str | None] = mapped_column(String(8))
    tags: Mapped[list[Any]] = mapped_column(default=list)
    timezone: Mapped[str | None] = mapped_column(String(64))
    opted_out: Mapped[bool] = mapped_column(Boolean, default=False)
    opted_out_at: Mapped[datetime | None]
    unreachable: Mapped[bool] = mapped_column(Boolean, default=False)
    test: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    """A test contact (the console channel): never paid, never in gap maps, in exports only when asked."""
    erase_requested_at: Mapped[datetime | None]
    """The respondent confirmed BORRAR: erased by the privacy job once the last reply has gone out."""
    last_inbound_at: Mapped[datetime | None]
    """When the person last wrote (kept for WhatsApp: free text may answer them for 24 hours after)."""
    last_template_at: Mapped[datetime | None]
    """When a WhatsApp template last went to them (their next message answers it, not the survey's question)."""
    opt_in_at: Mapped[datetime | None]
    opt_in_source: Mapped[str | None] = mapped_column(String(128))
    opt_in_withdrawn_at: Mapped[datetime | None]
    """A STOP on any channel withdraws the opt-in; an opt-in dated later gives it again."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class SurveyVersion(Base):
    """One published version of a survey, kept so that respondents finish on the version they started."""

    __tablename__ = "survey_versions"

    survey_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    digest: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(Text)
    definition: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SurveySession(Base):
    """One respondent's run through one survey wave; `state` is the engine's state."""

    __tablename__ = "survey_sessions"
    __table_args__ = (
        UniqueConstraint("contact_id", "survey_id", "wave", name="uq_sessions_contact_survey_wave"),
        Index("ix_sessions_survey_status", "survey_id", "status"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), index=True)
    survey_id: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    wave: Mapped[int] = mapped_column(Integer, default=1)
    campaign_id: Mapped[int | None] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), index=True)
    status: Mapped[str] = mapped_column(String(16), default=SessionStatus.IN_PROGRESS)
    question: Mapped[str | None] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(8))
    region: Mapped[str | None] = mapped_column(String(16))
    state: Mapped[dict[str, Any]]
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    consented_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    last_activity_at: Mapped[datetime] = mapped_column(default=utcnow)
    reminders_sent: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Answer(Base):
    """One stored answer; `in_gap` is set for indicator questions (true when the value means an unmet need)."""

    __tablename__ = "answers"
    __table_args__ = (UniqueConstraint("session_id", "question_id", name="uq_answers_session_question"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("survey_sessions.id"))
    question_id: Mapped[str] = mapped_column(String(64))
    value: Mapped[Any] = mapped_column(Json, nullable=True)
    skipped: Mapped[bool] = mapped_column(Boolean, default=False)
    in_gap: Mapped[bool | None] = mapped_column(Boolean)
    inbound_id: Mapped[int | None] = mapped_column(Id)
    answered_at: Mapped[datetime] = mapped_column(default=utcnow)


class InboundMessage(Base):
    """A message as a provider delivered it; unique per provider message id, so redeliveries are stored once."""

    __tablename__ = "inbound_messages"
    __table_args__ = (
        UniqueConstraint("channel", "provider_id", name="uq_inbound_channel_provider_id"),
        Index("ix_inbound_pending_address", "address_hash", "id",
              postgresql_where=text(f"status = '{InboundStatus.PENDING}'"),
              sqlite_where=text(f"status = '{InboundStatus.PENDING}'")),
        Index("ix_inbound_address", "channel", "address_hash", "id"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    provider_id: Mapped[str] = mapped_column(String(128))
    address_hash: Mapped[str] = mapped_column(String(64))
    address_enc: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text, default="")
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    sequence: Mapped[int | None] = mapped_column(BigInteger)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    status: Mapped[str] = mapped_column(String(16), default=InboundStatus.PENDING)
    contact_id: Mapped[int | None] = mapped_column(Id)
    processed_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)


_DUE = f"status IN ('{OutboundStatus.QUEUED}', '{OutboundStatus.SENDING}')"
"""The outbound rows still to send: only they are indexed by status (a sent row leaves that index)."""
_HANDED = "provider_id IS NOT NULL"
"""The outbound rows a provider took: only they are indexed by provider id (the status callbacks' read)."""


class OutboundMessage(Base):
    """A message to send; the sender claims `queued` rows, so each is handed to the provider once."""

    __tablename__ = "outbound_messages"
    __table_args__ = (
        Index("ix_outbound_status_due", "status", "next_attempt_at",
              postgresql_where=text(_DUE), sqlite_where=text(_DUE)),
        Index("ix_outbound_provider_id", "provider_id",
              postgresql_where=text(_HANDED), sqlite_where=text(_HANDED)),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), index=True)
    session_id: Mapped[int | None] = mapped_column(Id)
    campaign_id: Mapped[int | None] = mapped_column(Id)
    channel: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(16), default="reply")
    body: Mapped[str] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(16), default=OutboundStatus.QUEUED)
    provider_id: Mapped[str | None] = mapped_column(String(128))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error_code: Mapped[str | None] = mapped_column(String(32))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    next_attempt_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]


class EarlyReport(Base):
    """A delivery report that came before its message's provider id was recorded; applied once it is."""

    __tablename__ = "early_reports"

    provider_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    error_code: Mapped[str | None] = mapped_column(String(32))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiToken(Base):
    """A bearer token for the JSON API and dashboard; only its SHA-256 is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), default="")
    role: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]


class DashboardSession(Base):
    """A dashboard login: the cookie holds a random id (only its SHA-256 is stored), never the token."""

    __tablename__ = "dashboard_sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    token_id: Mapped[int] = mapped_column(ForeignKey("api_tokens.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


# -- Privacy ------------------------------------------------------------------------------------------------


class AuditEntry(Base):
    """Who did what with people's data, when: append-only (the database refuses updates and deletes).

    `actor` is a token's name (or `token #id`), `cli:<user>` or `respondent`; `target` a survey, campaign,
    token or respondent id; never a phone number.
    """

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_at", "at"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(160))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str | None] = mapped_column(String(160))
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)


class OptOutMarker(Base):
    """What remains of an erased person: keyed hashes of their addresses, so that no campaign reaches them."""

    __tablename__ = "opt_out_markers"

    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    """A channel (sms, whatsapp, telegram, console) for an address hash, or `phone` for a phone hash."""
    hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class RetentionMark(Base):
    """How far the retention purge got in a table of messages (ids at or below `last_id` are purged)."""

    __tablename__ = "retention_marks"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    last_id: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class VaultKey(Base):
    """A key kept sealed under the current secret key (`hash`: the stable hashing key, after a rotation)."""

    __tablename__ = "vault_keys"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    sealed: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


# -- Gap maps -----------------------------------------------------------------------------------------------


class GapSnapshot(Base):
    """Published gap figures of one survey (one wave, or all) in one release, after disclosure control.

    `respondents` and `latest_completion` fingerprint the completed sessions it was computed from: when they
    change, the snapshot is stale. `payload` holds only publishable figures (suppressed cells are nulled).
    `basis` is never served: what the next release must know (figures held back, the size of hidden cells when
    they were hidden; see service.gaps.disclosure).
    """

    __tablename__ = "gap_snapshots"
    __table_args__ = (Index("ix_gap_snapshots_latest", "survey_id", "wave", "computed_at"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    survey_id: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    digest: Mapped[str] = mapped_column(String(64))
    wave: Mapped[int | None] = mapped_column(Integer)
    computed_at: Mapped[datetime] = mapped_column(default=utcnow)
    duration_ms: Mapped[int] = mapped_column(Integer, default=0)
    respondents: Mapped[int] = mapped_column(Integer, default=0)
    latest_completion: Mapped[datetime | None]
    payload: Mapped[dict[str, Any]]
    basis: Mapped[dict[str, Any] | None]


# -- Incentives ---------------------------------------------------------------------------------------------


class IncentiveBudget(Base):
    """What one survey wave has promised: reservations plus earned credits, never above `budget_cents`."""

    __tablename__ = "incentive_budgets"

    survey_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    wave: Mapped[int] = mapped_column(Integer, primary_key=True)
    currency: Mapped[str] = mapped_column(String(8))
    budget_cents: Mapped[int | None] = mapped_column(BigInteger)
    committed_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class IncentiveReservation(Base):
    """Credit held for a respondent who consented, until they complete (it becomes an Incentive) or leave."""

    __tablename__ = "incentive_reservations"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("survey_sessions.id"), unique=True)
    survey_id: Mapped[str] = mapped_column(String(64))
    wave: Mapped[int] = mapped_column(Integer)
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Incentive(Base):
    """One earned credit: once per respondent and survey wave, and once per phone number and survey wave.

    status: awaiting_phone (Telegram, no number yet) -> pending -> submitted -> succeeded | failed
    (failed ones are retried until `attempts` reaches the limit); duplicate when the number was already paid.
    """

    __tablename__ = "incentives"
    __table_args__ = (
        UniqueConstraint("contact_id", "survey_id", "wave", name="uq_incentives_contact_survey_wave"),
        UniqueConstraint("phone_hash", "survey_id", "wave", name="uq_incentives_phone_survey_wave"),
        Index("ix_incentives_status_due", "status", "next_attempt_at"),
        Index("ix_incentives_survey", "survey_id", "wave", "id"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"))
    """None on an anonymous ledger line: a paid record of a person who was erased."""
    session_id: Mapped[int | None] = mapped_column(ForeignKey("survey_sessions.id"), unique=True)
    survey_id: Mapped[str] = mapped_column(String(64))
    wave: Mapped[int] = mapped_column(Integer)
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16))
    provider: Mapped[str] = mapped_column(String(16))
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)
    phone_hash: Mapped[str | None] = mapped_column(String(64))
    phone_enc: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    transaction_id: Mapped[str | None] = mapped_column(String(128))
    error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[datetime | None]
    submitted_at: Mapped[datetime | None]
    paid_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


# -- Campaigns ----------------------------------------------------------------------------------------------


class Campaign(Base):
    """Invitations to one survey wave for the contacts with a tag: a sending rate, quiet hours, reminders, expiry.

    status: draft -> running <-> paused -> finished. Durations are in seconds; quiet hours are local "HH:MM" times
    in each respondent's time zone (the contact's, else the campaign's).
    """

    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    survey_id: Mapped[str] = mapped_column(String(64))
    version: Mapped[int | None] = mapped_column(Integer)
    tag: Mapped[str] = mapped_column(String(64))
    wave: Mapped[int] = mapped_column(Integer, default=1)
    status: Mapped[str] = mapped_column(String(16), default=CampaignState.DRAFT)
    rate: Mapped[float | None] = mapped_column(Float)
    quiet_start: Mapped[str | None] = mapped_column(String(5))
    quiet_end: Mapped[str | None] = mapped_column(String(5))
    timezone: Mapped[str] = mapped_column(String(64))
    remind_after: Mapped[int | None] = mapped_column(Integer)
    max_reminders: Mapped[int] = mapped_column(Integer, default=0)
    expire_after: Mapped[int | None] = mapped_column(Integer)
    channel: Mapped[str | None] = mapped_column(String(16))
    """Only the tagged contacts on this channel (None: every channel)."""
    templates: Mapped[dict[str, Any] | None] = mapped_column(Json, nullable=True)
    """WhatsApp Content API templates: {"invite"|"reminder"|"credit": {language: "HX..."}}."""
    fallback: Mapped[str | None] = mapped_column(String(16))
    """'sms': a WhatsApp invitation WhatsApp would not deliver goes to the same number by SMS."""
    opt_in_required: Mapped[bool] = mapped_column(Boolean, default=True)
    """WhatsApp contacts are invited only with a recorded opt-in."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class CampaignMessage(Base):
    """One invitation or reminder of a campaign, and how far it got.

    status: pending -> sending (claimed in the transaction that creates its survey session, committed before the
    provider is called) -> sent | failed; `interrupted` when a worker died during the call (never sent again);
    `skipped` with a `reason` (opted out, unreachable, already answering this wave, finished...).
    """

    __tablename__ = "campaign_messages"
    __table_args__ = (
        UniqueConstraint("campaign_id", "contact_id", "kind", "number", name="uq_campaign_messages_once"),
        Index("ix_campaign_messages_due", "campaign_id", "status", "due_at"),
        Index("ix_campaign_messages_session", "session_id"),
        Index("ix_campaign_messages_outbound", "outbound_id"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"))
    session_id: Mapped[int | None] = mapped_column(Id)
    outbound_id: Mapped[int | None] = mapped_column(Id)
    fallback_of: Mapped[int | None] = mapped_column(Id)
    """The WhatsApp invitation this SMS invitation stands in for (its status is then `fallback`)."""
    kind: Mapped[str] = mapped_column(String(16))
    number: Mapped[int] = mapped_column(Integer, default=0)
    channel: Mapped[str] = mapped_column(String(16))
    timezone: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default=CampaignMessageStatus.PENDING)
    reason: Mapped[str | None] = mapped_column(String(32))
    due_at: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sending_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]


class SendSlot(Base):
    """A shared rate limiter: the next free sending moment (epoch seconds) of a sender or a campaign."""

    __tablename__ = "send_slots"

    key: Mapped[str] = mapped_column(String(160), primary_key=True)
    next_at: Mapped[float] = mapped_column(Float)
    interval: Mapped[float] = mapped_column(Float)


class SenderLease(Base):
    """Which worker runs the campaign sender now; it beats every half second, and a silent holder loses it."""

    __tablename__ = "sender_leases"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    holder: Mapped[str | None] = mapped_column(String(160))
    beat_at: Mapped[float] = mapped_column(Float, default=0.0)
    expires_at: Mapped[float] = mapped_column(Float, default=0.0)
