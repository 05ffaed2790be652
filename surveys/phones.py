"""Mobile numbers that respondents type or share, found in free text and checked with libphonenumber.

Pure: the engine uses it to validate the number a credit is sent to. Mexican habits are understood: the old
trunk prefixes 044/045/01 before ten digits, and the mobile "1" after +52 that Mexico dropped in 2019.
"""

from __future__ import annotations

import re

import phonenumbers

_CANDIDATE = re.compile(r"\+?\d[\d\s().\-]{5,}\d")
_MX_TRUNK_PREFIXES = ("044", "045", "01")
_MOBILE_TYPES = (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE)


def mobile_number(text: str, region: str = "MX", international: bool = False) -> str | None:
    """The E.164 form of the first mobile number in `text`, or None when it holds none.

    `region` reads numbers written without +country; `international` reads bare digits as country code
    first (Telegram shares contacts as "5215512345678", without the plus).
    """
    for candidate in _CANDIDATE.findall(text or ""):
        digits = re.sub(r"[^\d+]", "", candidate)
        for attempt in _readings(digits, region, international):
            found = _mobile(attempt, region)
            if found:
                return found
    return None


def _readings(digits: str, region: str, international: bool) -> list[str]:
    if digits.startswith("+"):
        return [_drop_mx_mobile_one(digits)]
    national = digits
    if region == "MX":
        for prefix in _MX_TRUNK_PREFIXES:
            if digits.startswith(prefix) and len(digits) == len(prefix) + 10:
                national = digits[len(prefix):]
                break
    plus = _drop_mx_mobile_one("+" + digits)
    return [plus, national] if international else [national, plus]


def _drop_mx_mobile_one(e164: str) -> str:
    if e164.startswith("+521") and len(e164) == 14:
        return "+52" + e164[4:]
    return e164


def _mobile(text: str, region: str) -> str | None:
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number) or phonenumbers.number_type(number) not in _MOBILE_TYPES:
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
