"""Incentives: every completed survey earns its airtime credit exactly once, within the survey wave's budget.

    consent     -> budget.reserve      the amount is held (a conditional UPDATE of the wave's counter)
    completion  -> ledger.earn         the reservation becomes the incentive record (unique per respondent and
                                       per phone number, survey and wave)
    declined, opted out, expired -> budget.release   the amount goes back to the wave
    issue job   -> providers           pending -> submitted -> succeeded | failed (retried, then left for staff)

Every provider call carries the record's idempotency key, and a record stuck in `submitted` (a worker died,
a timeout) is settled by asking the provider about that key, never by paying again.
"""

from __future__ import annotations

AWAITING_PHONE, PENDING, SUBMITTED, SUCCEEDED, FAILED, DUPLICATE = (
    "awaiting_phone", "pending", "submitted", "succeeded", "failed", "duplicate"
)
STATUSES = (AWAITING_PHONE, PENDING, SUBMITTED, SUCCEEDED, FAILED, DUPLICATE)
OWED = (AWAITING_PHONE, PENDING, SUBMITTED, FAILED)
"""Statuses whose amount is still counted against the budget (and succeeded, which is spent)."""


def cents(amount: float) -> int:
    """An amount of money as whole cents (amounts are stored as integers, so sums are exact)."""
    return round(amount * 100)


def amount(value_cents: int) -> float:
    return value_cents / 100
