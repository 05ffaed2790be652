"""API tokens with roles: staff (everything) and analyst (aggregates only).

A token has a name (who or what it is for, shown in the audit log) and may expire; only its SHA-256 is stored.
A revoked or expired token gets 401 on its next request, and so do the dashboard sessions it opened.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import wraps
from typing import Any

from flask import current_app, g, request
from sqlalchemy import or_, select, update

from service import audit
from service.models import ApiToken
from service.runtime import Runtime

ROLES = ("staff", "analyst")
PREFIX = "rt_"
_DURATION = re.compile(r"([0-9]{1,9})\s*([mhdw])", re.ASCII)
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
LONGEST = timedelta(days=3650)
"""The longest a token may live (ten years): a longer expiry is a typo, not a plan."""
_ID = re.compile(r"[0-9]{1,19}", re.ASCII)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class AuthError(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class TokenError(ValueError):
    """A token command that cannot be done; the message says why."""


@dataclass(frozen=True)
class Caller:
    """Who is calling: the token's id, name and role."""

    token_id: int
    name: str
    role: str

    @property
    def actor(self) -> str:
        """How the audit log names this caller."""
        return self.name or f"token #{self.token_id}"


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def duration(text: str) -> timedelta:
    """'90d', '12h', '30m', '2w' as a timedelta, at most ten years; TokenError otherwise."""
    found = _DURATION.fullmatch((text or "").strip().lower())
    if not found or int(found.group(1)) == 0:
        raise TokenError(f"{text!r} is not a duration: write a number and m, h, d or w, e.g. 90d")
    number, unit = int(found.group(1)), _UNITS[found.group(2)]
    if number > LONGEST / timedelta(**{unit: 1}):
        raise TokenError(f"{text!r} is too long: a token expires within {LONGEST.days} days (e.g. 365d)")
    return timedelta(**{unit: number})


def _clean_name(name: str) -> str:
    """A token's name as stored: TokenError when it holds a control character (NUL, escape...)."""
    if _CONTROL.search(name):
        raise TokenError("a token name cannot hold control characters")
    return name


def create_token(runtime: Runtime, role: str, name: str = "", expires: timedelta | None = None,
                 actor: str | None = None) -> str:
    """A new token; only its hash is kept, so it is shown once."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    name = _clean_name(name)
    token = PREFIX + secrets.token_urlsafe(32)
    now = runtime.now()
    with runtime.sessions() as session, session.begin():
        row = ApiToken(name=name[:128], role=role, token_hash=digest(token), created_at=now,
                       expires_at=now + expires if expires else None)
        session.add(row)
        session.flush()
        audit.add(session, now, actor or audit.cli_actor(), "token.created", f"token #{row.id}", role=role,
                  name=row.name, expires_at=row.expires_at.isoformat() if row.expires_at else None)
    return token


def list_tokens(runtime: Runtime) -> list[dict[str, Any]]:
    """Every token (never the token itself): id, name, role, created, last used, expiry, state."""
    now = runtime.now()
    with runtime.sessions() as session:
        rows = session.scalars(select(ApiToken).order_by(ApiToken.id)).all()
    listed = []
    for row in rows:
        expires = audit.aware(row.expires_at) if row.expires_at else None
        state = "revoked" if row.revoked_at else "expired" if expires and expires <= now else "active"
        listed.append({
            "id": row.id, "name": row.name, "role": row.role, "state": state,
            "created_at": audit.aware(row.created_at).isoformat(),
            "last_used_at": audit.aware(row.last_used_at).isoformat() if row.last_used_at else None,
            "expires_at": expires.isoformat() if expires else None,
        })
    return listed


def revoke_token(runtime: Runtime, which: str, actor: str | None = None) -> list[int]:
    """Revoke the token with this id or name (and the dashboard sessions it opened); the ids revoked.

    TokenError when none matches, or when a name is shared by several active tokens (revoke those by id).
    """
    from service.models import DashboardSession

    which = _clean_name(which.strip())
    if not which:
        raise TokenError("say which token: its id or its name (see `retorno tokens list`)")
    now = runtime.now()
    with runtime.sessions() as session, session.begin():
        active = select(ApiToken).where(ApiToken.revoked_at.is_(None))
        found = []
        if _ID.fullmatch(which) and int(which) <= 2**63 - 1:  # an id only in ASCII digits that fit its column
            found = session.scalars(active.where(ApiToken.id == int(which))).all()
        if not found:
            found = session.scalars(active.where(ApiToken.name == which)).all()
        if not found:
            raise TokenError(f"no active token has the id or name {which!r} (see `retorno tokens list`)")
        if len(found) > 1:
            ids = ", ".join(str(row.id) for row in found)
            raise TokenError(f"{len(found)} active tokens are named {which!r} (ids {ids}): revoke them by id")
        ids = [row.id for row in found]
        for row in found:
            row.revoked_at = now
            audit.add(session, now, actor or audit.cli_actor(), "token.revoked", f"token #{row.id}", name=row.name,
                      role=row.role)
        session.execute(update(DashboardSession).where(DashboardSession.token_id.in_(ids),
                                                       DashboardSession.revoked_at.is_(None)).values(revoked_at=now))
    return ids


def authenticate(runtime: Runtime, token: str | None) -> Caller | None:
    """The caller a bearer token stands for; None when it is unknown, revoked or expired."""
    if not token:
        return None
    hashed = digest(token.strip())
    now = runtime.now()
    with runtime.sessions() as session, session.begin():
        row = session.execute(
            select(ApiToken.id, ApiToken.name, ApiToken.role).where(
                ApiToken.token_hash == hashed, ApiToken.revoked_at.is_(None), live(ApiToken.expires_at, now)
            )
        ).first()
        if row is None:
            return None
        session.execute(update(ApiToken).where(ApiToken.id == row.id).values(last_used_at=now))
        return Caller(row.id, row.name, row.role)


def live(expires_at, now: datetime):
    """SQL: not expired at `now`."""
    return or_(expires_at.is_(None), expires_at > now)


def role_of(runtime: Runtime, token: str | None) -> str | None:
    caller = authenticate(runtime, token)
    return caller.role if caller else None


def bearer() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def require(*roles: str) -> Callable:
    """Decorator: the request must carry a token of one of `roles` (401 without a known token, 403 otherwise).

    The caller is `g.caller` (and its role `g.role`) in the view."""

    def decorate(view: Callable) -> Callable:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any):
            runtime = current_app.extensions["retorno"]
            caller = authenticate(runtime, bearer())
            if caller is None:
                raise AuthError(401, "unauthorized", "a valid API token is required (Authorization: Bearer ...)")
            if caller.role not in roles:
                raise AuthError(403, "forbidden", f"the {caller.role} role may not do this")
            g.caller, g.role = caller, caller.role
            return view(*args, **kwargs)

        return wrapper

    return decorate
