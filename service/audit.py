"""The audit log: who did what with people's data, and when. Append-only; never a phone number.

Actions: responses.exported (detail: with_contacts), incentives.exported, contact.erased, contact.shown,
token.created, token.revoked, survey.published, campaign.started, dashboard.login, dashboard.logout, keys.rotated;
from the staff console also survey.checked, survey.simulated, contacts.imported, contact.looked_up, campaign.created,
campaign.paused, campaign.cancelled, incentives.retried, incentives.marked_paid.
"""

from __future__ import annotations

import getpass
import re
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.db import aware
from service.models import AuditEntry

ACTIONS = (
    "responses.exported", "incentives.exported", "contact.erased", "contact.shown", "token.created", "token.revoked",
    "survey.published", "campaign.started", "dashboard.login", "dashboard.logout", "keys.rotated",
    "survey.checked", "survey.simulated", "contacts.imported", "contact.looked_up", "campaign.created",
    "campaign.paused", "campaign.cancelled", "incentives.retried", "incentives.marked_paid",
)


def cli_actor() -> str:
    """Who runs a command: `cli:<user>`."""
    try:
        user = getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name in a container: still an actor
        user = "unknown"
    return f"cli:{user}"


def add(session: Session, at: datetime, actor: str, action: str, target: str | None = None,
        **detail: Any) -> None:
    """One entry, in the caller's transaction (so an action and its entry commit together)."""
    session.add(AuditEntry(at=at, actor=actor[:160], action=action, target=(target or None) and target[:160],
                           detail=detail))


def record(rt, actor: str, action: str, target: str | None = None, **detail: Any) -> None:
    """One entry in its own transaction."""
    with rt.sessions() as session, session.begin():
        add(session, rt.now(), actor, action, target, **detail)


def entries(rt, since: datetime | None = None, limit: int | None = None) -> list[dict[str, Any]]:
    """The log, oldest first: `[{at, actor, action, target, detail}]`."""
    query = select(AuditEntry).order_by(AuditEntry.at, AuditEntry.id)
    if since is not None:
        query = query.where(AuditEntry.at >= since)
    if limit is not None:
        query = query.limit(limit)
    with rt.sessions() as session:
        rows = session.scalars(query).all()
    return [
        {"at": aware(row.at).isoformat(), "actor": row.actor, "action": row.action, "target": row.target,
         "detail": row.detail or {}}
        for row in rows
    ]


def moment(text: str) -> datetime:
    """An ISO date or time ('2026-03-01', '2026-03-01T10:00', '...Z', '...+00:00'; UTC when no zone is given);
    ValueError otherwise. A '+' decoded as a space in a query string is read back as '+'."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    value = re.sub(r"(\d) (\d{2}:?\d{2})$", r"\1+\2", value) if "T" in value else value
    parsed = datetime.fromisoformat(value)
    return aware(parsed)
