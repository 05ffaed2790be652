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

from service.vocabulary import IncentiveState

AWAITING_PHONE, PENDING, SUBMITTED, SUCCEEDED, FAILED, DUPLICATE = IncentiveState
STATUSES = tuple(state.value for state in IncentiveState)
EXPORT_COLUMNS = ("incentive_id", "reference", "respondent_id", "survey_id", "wave", "phone", "amount", "currency",
                  "status", "attempts", "error", "created_at")
"""The owed-incentives export (`retorno incentives export`, the staff console): one row per record to pay."""
"""As plain strings: what the API and the CLI accept (click takes an enum's names)."""


def cents(amount: float) -> int:
    """An amount of money as whole cents (amounts are stored as integers, so sums are exact)."""
    return round(amount * 100)


def amount(value_cents: int) -> float:
    return value_cents / 100
