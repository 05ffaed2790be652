"""API tokens with roles: staff (everything) and analyst (aggregates only)."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import current_app, g, request
from sqlalchemy import select, update

from service.models import ApiToken
from service.runtime import Runtime

ROLES = ("staff", "analyst")
PREFIX = "rt_"


class AuthError(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(runtime: Runtime, role: str, name: str = "") -> str:
    """A new token; only its hash is kept, so it is shown once."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    token = PREFIX + secrets.token_urlsafe(32)
    with runtime.sessions() as session, session.begin():
        session.add(ApiToken(name=name[:128], role=role, token_hash=digest(token)))
    return token


def role_of(runtime: Runtime, token: str | None) -> str | None:
    if not token:
        return None
    hashed = digest(token.strip())
    with runtime.sessions() as session, session.begin():
        row = session.execute(
            select(ApiToken.id, ApiToken.role).where(ApiToken.token_hash == hashed, ApiToken.revoked_at.is_(None))
        ).first()
        if row is None:
            return None
        session.execute(update(ApiToken).where(ApiToken.id == row.id).values(last_used_at=runtime.now()))
        return row.role


def bearer() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def require(*roles: str) -> Callable:
    """Decorator: the request must carry a token of one of `roles` (401 without a known token, 403 otherwise)."""

    def decorate(view: Callable) -> Callable:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any):
            runtime = current_app.extensions["retorno"]
            role = role_of(runtime, bearer())
            if role is None:
                raise AuthError(401, "unauthorized", "a valid API token is required (Authorization: Bearer ...)")
            if role not in roles:
                raise AuthError(403, "forbidden", f"the {role} role may not do this")
            g.role = role
            return view(*args, **kwargs)

        return wrapper

    return decorate
