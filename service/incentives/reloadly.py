"""Reloadly's airtime top-ups API (https://docs.reloadly.com/airtime): Telcel, Movistar, AT&T and Bait in Mexico.

    POST {RELOADLY_AUTH_URL}                 OAuth client credentials, audience = RELOADLY_API_BASE
    GET  /operators/auto-detect/phone/{number}/countries/{ISO}     the number's operator
    POST /topups                              {operatorId, amount, useLocalAmount, customIdentifier, recipientPhone}
    GET  /topups/reports/transactions?customIdentifier=KEY         what happened to a key

`customIdentifier` is the record's idempotency key: Reloadly refuses a reference used before, so a retry after
a timeout cannot top up twice, and the report by reference tells what the first call did.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import phonenumbers
import requests

from service.incentives.orders import Outcome, TopUp

log = logging.getLogger(__name__)

ACCEPT = "application/com.reloadly.topups-v1+json"
PERMANENT = frozenset({
    "INVALID_RECIPIENT_PHONE", "INVALID_PHONE_NUMBER", "COULD_NOT_AUTO_DETECT_OPERATOR", "INVALID_AMOUNT",
    "INVALID_AMOUNT_FOR_OPERATOR", "COUNTRY_NOT_SUPPORTED", "ACCOUNT_NOT_FOUND", "CURRENCY_MISMATCH",
})
"""Errors that trying again cannot fix: the record is left for staff at once."""
RETRYABLE = frozenset({
    "INSUFFICIENT_BALANCE", "MAX_DAILY_TRANSACTION_AMOUNT_REACHED", "MAX_DAILY_TRANSACTION_COUNT_REACHED",
    "PHONE_RECENTLY_RECHARGED", "TRANSACTION_CANNOT_BE_PROCESSED_AT_THE_MOMENT", "OPERATOR_NOT_IN_SERVICE",
    "OPERATOR_UNAVAILABLE_OR_CURRENTLY_INACTIVE", "TOPUP_TRANSACTION_FAILED", "INACTIVE_ACCOUNT",
    "TOKEN_EXPIRED", "INVALID_TOKEN",
})
"""Refusals where nothing was topped up and a later attempt may work (fund the account, wait for the operator)."""
PAID, PENDING_STATES, UNDONE = "SUCCESSFUL", ("PROCESSING", "PENDING"), ("REFUNDED", "FAILED")

_tokens: dict[tuple[str, str], tuple[str, float]] = {}
_tokens_lock = threading.Lock()


class ReloadlyProvider:
    """Tops up Mexican (and other) mobile numbers; every method returns an Outcome, never raises."""

    name = "reloadly"
    automatic = True

    def __init__(self, settings: Any, http: requests.Session | None = None):
        self.settings = settings
        self.base = settings.reloadly_api_base.rstrip("/")
        self.http = http or requests.Session()
        self.timeout = (min(5.0, settings.reloadly_timeout), settings.reloadly_timeout)

    # -- the interface --------------------------------------------------------------------------------------

    def topup(self, order: TopUp) -> Outcome:
        try:
            number = phonenumbers.parse(order.phone, None)
        except phonenumbers.NumberParseException:
            return Outcome("failed", retry=False, code="INVALID_PHONE_NUMBER", message="not an E.164 number")
        country = phonenumbers.region_code_for_number(number) or ""
        digits = order.phone.lstrip("+")
        try:
            operator = self._call("GET", f"/operators/auto-detect/phone/{digits}/countries/{country}")
        except requests.RequestException as error:
            return Outcome("failed", code="operator_lookup", message=type(error).__name__)
        if operator.status_code != 200:
            return self._refusal(operator, default_retry=operator.status_code >= 500)
        details = _json(operator)
        body = self._body(order, details, country, digits)
        if isinstance(body, Outcome):
            return body
        try:
            response = self._call("POST", "/topups", json=body)
        except requests.RequestException as error:
            return Outcome("unknown", code="transport", message=type(error).__name__)
        return self._topup_result(response)

    def lookup(self, key: str) -> Outcome:
        try:
            response = self._call(
                "GET", "/topups/reports/transactions", params={"customIdentifier": key, "page": 1, "size": 10}
            )
        except requests.RequestException as error:
            return Outcome("unknown", code="transport", message=type(error).__name__)
        if response.status_code != 200:
            return Outcome("unknown", code=f"HTTP {response.status_code}", message=_json(response).get("message"))
        content = _json(response).get("content")
        found = [t for t in content if isinstance(t, dict) and t.get("customIdentifier") == key] if isinstance(
            content, list
        ) else []
        if not found:
            return Outcome("absent", code="not_found", message="Reloadly has no top-up with this reference")
        statuses = {str(t.get("status", "")).upper() for t in found}
        paid = next((t for t in found if str(t.get("status", "")).upper() == PAID), None)
        if paid is not None:
            return Outcome("paid", transaction_id=str(paid.get("transactionId")))
        if statuses & set(PENDING_STATES) or not statuses <= set(UNDONE):
            return Outcome("unknown", code="PROCESSING", message="the top-up is still being processed")
        return Outcome("failed", code=sorted(statuses)[0], message="the operator did not deliver; refunded")

    # -- requests ---------------------------------------------------------------------------------------------

    def _body(self, order: TopUp, operator: dict[str, Any], country: str, digits: str) -> dict[str, Any] | Outcome:
        operator_id = operator.get("operatorId", operator.get("id"))
        if not isinstance(operator_id, int):
            return Outcome("failed", retry=False, code="COULD_NOT_AUTO_DETECT_OPERATOR", message="no operator id")
        local = operator.get("destinationCurrencyCode") == order.currency and operator.get(
            "supportsLocalAmounts", True
        )
        if not local and operator.get("senderCurrencyCode") not in (None, order.currency):
            return Outcome(
                "failed", retry=False, code="CURRENCY_MISMATCH",
                message=f"the survey pays {order.currency}; "
                        f"the operator takes {operator.get('destinationCurrencyCode')}",
            )
        return {
            "operatorId": operator_id,
            "amount": order.amount,
            "useLocalAmount": bool(local),
            "customIdentifier": order.key,
            "recipientPhone": {"countryCode": country, "number": digits},
        }

    def _topup_result(self, response: requests.Response) -> Outcome:
        data = _json(response)
        if response.status_code in (200, 201):
            status = str(data.get("status", "")).upper()
            transaction = data.get("transactionId")
            if status == PAID and transaction is not None:
                return Outcome("paid", transaction_id=str(transaction))
            if status in UNDONE:
                return Outcome("failed", code=status, message="the operator did not deliver; refunded")
            return Outcome("unknown", code=status or "no status", message="the top-up is still being processed")
        if response.status_code >= 500:
            return Outcome("unknown", code=f"HTTP {response.status_code}", message=data.get("message"))
        return self._refusal(response, default_retry=None)

    def _refusal(self, response: requests.Response, default_retry: bool | None) -> Outcome:
        """A 4xx: known codes are definite; an unknown one (e.g. a reference used before) must be looked up."""
        data = _json(response)
        code = str(data.get("errorCode") or f"HTTP {response.status_code}")
        message = data.get("message") if isinstance(data.get("message"), str) else None
        if code in PERMANENT:
            return Outcome("failed", retry=False, code=code, message=message)
        if code in RETRYABLE or response.status_code == 429:
            return Outcome("failed", retry=True, code=code, message=message)
        if default_retry is None:
            return Outcome("unknown", code=code, message=message)
        return Outcome("failed", retry=default_retry, code=code, message=message)

    def _call(self, method: str, path: str, **options: Any) -> requests.Response:
        """One API request with a cached bearer token, fetched again once if it was refused."""
        for fresh in (False, True):
            headers = {"Accept": ACCEPT, "Authorization": f"Bearer {self._token(fresh)}"}
            response = self.http.request(method, self.base + path, headers=headers, timeout=self.timeout, **options)
            if response.status_code != 401 or fresh:
                return response
        return response

    def _token(self, fresh: bool = False) -> str:
        key = (self.settings.reloadly_auth_url, self.settings.reloadly_client_id or "")
        with _tokens_lock:
            cached = _tokens.get(key)
            if cached and not fresh and cached[1] > time.monotonic():
                return cached[0]
            response = self.http.post(
                self.settings.reloadly_auth_url,
                json={
                    "client_id": self.settings.reloadly_client_id,
                    "client_secret": self.settings.reloadly_client_secret,
                    "grant_type": "client_credentials",
                    "audience": self.base,
                },
                timeout=self.timeout,
            )
            data = _json(response)
            token = data.get("access_token")
            if response.status_code != 200 or not isinstance(token, str):
                log.warning("reloadly: no access token (HTTP %s)", response.status_code)
                return ""
            expires = float(data.get("expires_in") or 3600)
            _tokens[key] = (token, time.monotonic() + max(60.0, expires - 60))
            return token


def _json(response: requests.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
