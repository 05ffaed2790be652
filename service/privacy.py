"""Contact addresses: normalized, encrypted at rest, found by a keyed hash, masked in logs.

Ciphertexts name the key that sealed them (`v2.<key id>.<nonce+ciphertext>`), so RETORNO_SECRET_KEY can be rotated:
old keys (RETORNO_OLD_SECRET_KEYS) still read, `retorno keys rotate` seals everything again under the current one.
Ciphertexts written before key ids existed (plain base64) are read with every key known.

Keyed hashes stay stable across rotations (opt-out markers and paid records keep only a hash, which cannot be
recomputed): the hashing key of the first secret is kept, sealed under the current key (`vault_keys` table).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import threading
from collections.abc import Callable

import phonenumbers
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_MX_OLD_MOBILE = re.compile(r"^\+521(\d{10})$")
_TRUNK_PREFIXES_MX = ("044", "045", "01")


class InvalidAddress(ValueError):
    """An address that cannot be a phone number or chat id; the message says why."""


class Vault:
    """Encrypts addresses with AES-GCM and hashes them with HMAC-SHA256, both keyed from the secret key.

    `old_keys`: earlier secret keys, newest first, to read what they sealed. `hash_key`: the hashing key to use
    (after a rotation, the first key's, kept in the database, so hashes stay comparable).
    """

    def __init__(self, secret_key: str, old_keys: tuple[str, ...] | list[str] = (), hash_key: bytes | None = None):
        material = secret_key.encode()
        self.key_id = key_id(secret_key)
        self._aead = AESGCM(_derive(material, b"retorno address encryption"))
        self._readers = {self.key_id: self._aead}
        for old in old_keys:
            self._readers.setdefault(key_id(old), AESGCM(_derive(old.encode(), b"retorno address encryption")))
        first = old_keys[-1].encode() if old_keys else material  # old keys are listed newest first
        self.derived_hash_key = _derive(first, b"retorno address hashing")
        """Until a rotation keeps one in the database, hashes use the first key's hashing key."""
        self._hash_key = hash_key
        self._hash_key_loader: Callable[[Vault], bytes | None] | None = None
        self._lock = threading.Lock()

    @property
    def hash_key(self) -> bytes:
        """The hashing key: the one kept in the database after a rotation, else the secret key's own."""
        if self._hash_key is None:
            with self._lock:
                if self._hash_key is None:
                    kept = self._hash_key_loader(self) if self._hash_key_loader is not None else None
                    self._hash_key = kept or self.derived_hash_key
        return self._hash_key

    def load_hash_key_with(self, loader: Callable[[Vault], bytes | None]) -> None:
        """Where the kept hashing key comes from, read at the first hash (None: there is none)."""
        self._hash_key_loader = loader

    def use_hash_key(self, hash_key: bytes) -> None:
        """Hash with `hash_key` from now on (the stable key kept in the database)."""
        self._hash_key = hash_key

    def encrypt(self, text: str) -> str:
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, text.encode(), None)
        return f"{PREFIX}{self.key_id}.{base64.urlsafe_b64encode(nonce + sealed).decode()}"

    def decrypt(self, token: str) -> str:
        if token.startswith(PREFIX):
            kid, _, body = token[len(PREFIX):].partition(".")
            reader = self._readers.get(kid)
            if reader is None:
                raise UnknownKey(f"ciphertext sealed with key {kid}, which is neither RETORNO_SECRET_KEY nor in "
                                 "RETORNO_OLD_SECRET_KEYS")
            raw = base64.urlsafe_b64decode(body.encode())
            return reader.decrypt(raw[:12], raw[12:], None).decode()
        raw = base64.urlsafe_b64decode(token.encode())
        for reader in self._readers.values():  # written before key ids: try every key
            try:
                return reader.decrypt(raw[:12], raw[12:], None).decode()
            except InvalidTag:
                continue
        raise UnknownKey("no known key opens this ciphertext (add the old key to RETORNO_OLD_SECRET_KEYS)")

    def is_current(self, token: str) -> bool:
        """Whether `token` is sealed under the current key (nothing to rotate)."""
        return token.startswith(f"{PREFIX}{self.key_id}.")

    def seal_key(self, key: bytes) -> str:
        """A key (the hashing key) sealed under the current secret key, to keep in the database."""
        return self.encrypt(base64.urlsafe_b64encode(key).decode())

    def open_key(self, sealed: str) -> bytes:
        return base64.urlsafe_b64decode(self.decrypt(sealed).encode())

    def hash(self, kind: str, address: str) -> str:
        """A stable keyed hash of an address, so it can be found without being stored in clear."""
        return hmac.new(self.hash_key, f"{kind}:{address}".encode(), hashlib.sha256).hexdigest()


PREFIX = "v2."


class UnknownKey(ValueError):
    """A ciphertext sealed with a key this process does not have."""


def key_id(secret_key: str) -> str:
    """A short public name of a secret key (it reveals nothing about the key)."""
    return _derive(secret_key.encode(), b"retorno key id")[:5].hex()


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


def mask(address: str) -> str:
    """What logs may show of an address: '+52******5678', 'tg:****4321'."""
    if len(address) <= 4:
        return "*" * len(address)
    keep = 3 if address.startswith("+") else 0
    return address[:keep] + "*" * (len(address) - keep - 4) + address[-4:]


_NUMBER_RUN = re.compile(r"\+?\d(?:[\s().-]{0,2}\d){7,}")


def holds_number(text: str) -> bool:
    """Whether `text` holds a run of eight or more digits (a phone number in any written form, or maybe not):
    such a message body is sealed before it is stored, since it may be a payout number."""
    if not text or sum(c.isdigit() for c in text) < 8:
        return False
    return _NUMBER_RUN.search(text) is not None
