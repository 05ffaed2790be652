"""Who pays: one small interface, a `ledger` that only records (staff pay by hand) and Reloadly's airtime API.

    topup(order)  -> Outcome   hand one credit to the provider, carrying the record's idempotency key
    lookup(key)   -> Outcome   what the provider knows about that key (settles records stuck in `submitted`)

Outcome.state is "paid", "failed" (the provider refused; `retry` says whether trying later may help),
"absent" (the provider has no top-up with that key: safe to send again) or "unknown" (a timeout, a 5xx, an
answer we cannot read: the top-up may or may not have happened, so only a lookup may decide).
"""

from __future__ import annotations

from typing import Any, Protocol

from service.incentives.orders import Outcome, TopUp
from service.incentives.reloadly import ReloadlyProvider

PROVIDERS = ("ledger", "reloadly")
__all__ = ["PROVIDERS", "LedgerProvider", "Outcome", "Provider", "TopUp", "make_provider"]


class Provider(Protocol):
    name: str
    automatic: bool
    """False for the ledger: records wait for staff, nothing is sent to any API."""

    def topup(self, order: TopUp) -> Outcome: ...

    def lookup(self, key: str) -> Outcome: ...


class LedgerProvider:
    """Records only: staff export what is owed (`retorno incentives export`) and mark it paid."""

    name = "ledger"
    automatic = False

    def topup(self, order: TopUp) -> Outcome:
        return Outcome("unknown", code="ledger", message="paid by staff, outside Retorno")

    def lookup(self, key: str) -> Outcome:
        return Outcome("unknown", code="ledger", message="paid by staff, outside Retorno")


def make_provider(settings: Any, http: Any = None) -> Provider:
    """The provider RETORNO_INCENTIVE_PROVIDER names."""
    if settings.incentive_provider == "reloadly":
        return ReloadlyProvider(settings, http)
    if settings.incentive_provider == "ledger":
        return LedgerProvider()
    raise ValueError(f"unknown incentive provider {settings.incentive_provider!r}; known: {', '.join(PROVIDERS)}")
