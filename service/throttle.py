"""Sending rates shared by every worker: one row per sender (and per campaign) holding its next free moment.

The rule is GCRA (a leaky bucket with a schedule): each message takes the next moment, `interval` = 1/rate after
the previous one. Moments are taken in the database, under a row lock, so any number of workers on any number of
machines together stay within the rate. After a short pause (a worker restarting) the sender may catch up on at
most `CATCH_UP` seconds of missed moments; after a long one it starts afresh. Replies to respondents are not held
back, but they use up moments too (`debit`), so a campaign slows down while people are answering.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from service.models import SendSlot

log = logging.getLogger(__name__)

CATCH_UP = 2.0
"""Seconds of missed sending moments that may be used late (a burst of at most rate x CATCH_UP messages)."""

DEFAULT_RATES = {"twilio_number": 1.0, "twilio_service": 10.0, "telegram": 25.0, "console": 50.0, "twilio_calls": 1.0}
"""Messages per second when RETORNO_SEND_RATE is not set: a Twilio long code sends about 1 per second, a messaging
service (or short code) more; Telegram allows about 30 per second per bot; Twilio places 1 call per second per
account unless the account's CPS was raised."""

_EPSILON = 1e-6


@dataclass(frozen=True)
class Sender:
    """Where a channel's messages leave from, and how fast they may."""

    key: str
    rate: float


def sender_for(settings, channel: str) -> Sender | None:
    """The sender of `channel` with this configuration; None when the channel cannot send."""
    if channel in ("sms", "whatsapp"):
        if not settings.twilio_outbound:
            return None
        service = settings.twilio_messaging_service_sid
        default = DEFAULT_RATES["twilio_service" if service else "twilio_number"]
        return Sender(f"twilio:{service or settings.twilio_from_number}", settings.sender_rate or default)
    if channel == "telegram":
        if not settings.telegram:
            return None
        bot = (settings.telegram_bot_token or "").split(":")[0]
        return Sender(f"telegram:{bot}", settings.sender_rate or DEFAULT_RATES["telegram"])
    if channel == "voice":
        if not (settings.twilio_outbound and settings.twilio_from_number):
            return None
        return Sender(f"twilio-calls:{settings.twilio_from_number}", settings.sender_rate or DEFAULT_RATES["twilio_calls"])
    if channel == "console":
        if not settings.console_channel:
            return None
        return Sender("console", settings.sender_rate or DEFAULT_RATES["console"])
    return None


class Throttle:
    """The limits one send must respect (a sender's, a campaign's), locked for the current transaction."""

    def __init__(self, session: Session, limits: Iterable[tuple[str, float]], now: float):
        self.session = session
        self.now = now
        self.limits = sorted({key: rate for key, rate in limits if rate > 0}.items())
        self.rows = _locked(session, [key for key, _ in self.limits], now)
        self.starts = {key: self._start(key, rate) for key, rate in self.limits}

    def _start(self, key: str, rate: float) -> float:
        interval = 1.0 / rate
        return max(self.rows[key].next_at, self.now - max(CATCH_UP, interval))

    @property
    def available(self) -> int:
        """How many messages may go out now."""
        counts = []
        for key, rate in self.limits:
            ahead = self.now - self.starts[key]
            counts.append(0 if ahead < -_EPSILON else math.floor(ahead * rate + _EPSILON) + 1)
        return min(counts, default=1_000_000)

    def take(self, count: int) -> None:
        """Use `count` moments of every limit."""
        for key, rate in self.limits:
            row = self.rows[key]
            row.interval = 1.0 / rate
            row.next_at = self.starts[key] + count / rate

    def next_free(self) -> float:
        """When the next message may go (epoch seconds), after what was taken."""
        return max((self.rows[key].next_at for key, _ in self.limits), default=self.now)


def _locked(session: Session, keys: list[str], now: float) -> dict[str, SendSlot]:
    """The limits' rows, locked; missing ones are created first (once per sender and campaign)."""
    if not keys:
        return {}
    query = select(SendSlot).where(SendSlot.key.in_(keys)).order_by(SendSlot.key).with_for_update()
    rows = {row.key: row for row in session.scalars(query)}
    missing = [key for key in keys if key not in rows]
    if missing:
        dialect = session.get_bind().dialect.name
        statement = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}[dialect]
        session.execute(
            statement(SendSlot).on_conflict_do_nothing(index_elements=["key"]),
            [{"key": key, "next_at": now, "interval": 1.0} for key in missing],
        )
        rows = {row.key: row for row in session.scalars(query.execution_options(populate_existing=True))}
    return rows


def debit(rt, channels: Iterable[str]) -> None:
    """Messages sent outside campaigns (replies) use up their sender's moments, so campaigns leave room for them."""
    counts = Counter(sender.key for channel in channels if (sender := sender_for(rt.settings, channel)) is not None)
    if not counts:
        return
    now = rt.now().timestamp()
    try:
        with rt.sessions() as session, session.begin():
            rows = session.scalars(
                select(SendSlot).where(SendSlot.key.in_(sorted(counts))).order_by(SendSlot.key).with_for_update()
            ).all()
            for row in rows:
                start = max(row.next_at, now - max(CATCH_UP, row.interval))
                row.next_at = start + counts[row.key] * row.interval
    except Exception as error:  # noqa: BLE001 - accounting must never stop a reply
        log.warning("could not count %d replies against the sending rate: %s", sum(counts.values()), type(error).__name__)
