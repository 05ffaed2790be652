"""What Retorno asks a payment provider (`TopUp`) and what it answers (`Outcome`): see providers.py."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TopUp:
    key: str
    phone: str
    """E.164, e.g. '+525512345678'."""
    amount: float
    currency: str


@dataclass(frozen=True)
class Outcome:
    state: str
    transaction_id: str | None = None
    retry: bool = True
    code: str | None = None
    message: str | None = None
