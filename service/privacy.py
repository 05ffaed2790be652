"""Contact addresses: normalized, encrypted at rest, found by a keyed hash, masked in logs."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re

import phonenumbers
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_MX_OLD_MOBILE = re.compile(r"^\+521(\d{10})$")
_TRUNK_PREFIXES_MX = ("044", "045", "01")


class InvalidAddress(ValueError):
    """An address that cannot be a phone number or chat id; the message says why."""


class Vault:
    """Encrypts addresses with AES-GCM and hashes them with HMAC-SHA256, both keyed from the secret key."""

    def __init__(self, secret_key: str):
        material = secret_key.encode()
        self._aead = AESGCM(_derive(material, b"retorno address encryption"))
        self._hash_key = _derive(material, b"retorno address hashing")

    def encrypt(self, text: str) -> str:
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, text.encode(), None)
        return base64.urlsafe_b64encode(nonce + sealed).decode()

    def decrypt(self, token: str) -> str:
        raw = base64.urlsafe_b64decode(token.encode())
        return self._aead.decrypt(raw[:12], raw[12:], None).decode()

    def hash(self, kind: str, address: str) -> str:
        """A stable keyed hash of an address, so it can be found without being stored in clear."""
        return hmac.new(self._hash_key, f"{kind}:{address}".encode(), hashlib.sha256).hexdigest()


def _derive(material: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"retorno", info=info).derive(material)


_PARSE_REASONS = {
    phonenumbers.NumberParseException.INVALID_COUNTRY_CODE: "not a phone number: no country has that code",
    phonenumbers.NumberParseException.TOO_SHORT_NSN: "too short for a phone number",
    phonenumbers.NumberParseException.TOO_SHORT_AFTER_IDD: "too short for a phone number",
    phonenumbers.NumberParseException.TOO_LONG: "too long for a phone number",
}


def normalize_phone(raw: str, default_region: str = "MX") -> str:
    """A phone number in E.164 ('+525512345678'); raises InvalidAddress with the reason."""
    text = (raw or "").strip()
    if not text:
        raise InvalidAddress("empty phone number")
    if text.lower().startswith("whatsapp:"):
        text = text[len("whatsapp:"):]
    digits = re.sub(r"[^\d+]", "", text)
    if default_region == "MX" and not digits.startswith("+"):
        for prefix in _TRUNK_PREFIXES_MX:
            if digits.startswith(prefix) and len(digits) == len(prefix) + 10:
                digits = digits[len(prefix):]
                break
    old = _MX_OLD_MOBILE.match(digits)
    if old:
        digits = "+52" + old.group(1)
    try:
        number = phonenumbers.parse(digits, default_region)
    except phonenumbers.NumberParseException as error:
        raise InvalidAddress(_PARSE_REASONS.get(error.error_type, "not a phone number")) from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidAddress("not a valid phone number for its country")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def is_mobile(e164: str) -> bool:
    number = phonenumbers.parse(e164, None)
    kind = phonenumbers.number_type(number)
    return kind in (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE)


def mask(address: str) -> str:
    """What logs may show of an address: '+52******5678', 'tg:****4321'."""
    if len(address) <= 4:
        return "*" * len(address)
    keep = 3 if address.startswith("+") else 0
    return address[:keep] + "*" * (len(address) - keep - 4) + address[-4:]
