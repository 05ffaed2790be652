"""Who an address is: the form that identifies a person on a channel (E.164 on phone channels), which is what
Retorno hashes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bots import PHONE_CHANNELS as PHONE_CHANNELS  # the registered channels whose addresses are numbers
from service.privacy import InvalidAddress, normalize_phone

if TYPE_CHECKING:
    from service.runtime import Runtime


def identity(channel: str, address: str, default_region: str) -> str:
    """The form of an address that identifies a person on a channel (E.164 for phone channels)."""
    if channel in PHONE_CHANNELS:
        try:
            return normalize_phone(address, default_region)
        except InvalidAddress:
            return address.strip()
    return address.strip()


def unsealed_hash(runtime: Runtime, row: dict) -> dict:
    """A row spooled without its address hash (the hashing key could not be read then), with it."""
    if row.get("address_hash") is None:
        who = identity(row["channel"], runtime.vault.decrypt(row["address_enc"]), runtime.settings.default_region)
        row = {**row, "address_hash": runtime.vault.hash(row["channel"], who)}
    return row
