"""Rotating RETORNO_SECRET_KEY: every ciphertext sealed again under the current key.

Run it after setting the new RETORNO_SECRET_KEY and moving the old one to RETORNO_OLD_SECRET_KEYS (newest first):
old ciphertexts keep reading meanwhile. Keyed hashes do not change (opt-out markers and paid records keep only a
hash, which cannot be computed again): the hashing key in use is kept in the database, sealed under the current
key, so the old keys can be dropped once the rotation is done.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Text, cast, not_, or_, select, update

from service import audit
from service.models import Contact, InboundMessage, Incentive, VaultKey

BATCH = 500
SEALED_COLUMNS = (
    (Contact, "address_enc"), (Contact, "phone_enc"), (InboundMessage, "address_enc"), (Incentive, "phone_enc"),
)
SEALED_PAYLOAD_FIELDS = ("body_enc", "contact_phone_enc")


def keep_hash_key(rt) -> None:
    """Keep the hashing key in use, sealed under the current key."""
    now = rt.now()
    sealed = rt.vault.seal_key(rt.vault.hash_key)  # read (from the database, maybe) before the transaction
    with rt.sessions() as session, session.begin():
        row = session.get(VaultKey, "hash", with_for_update=True)
        if row is None:
            session.add(VaultKey(name="hash", sealed=sealed, updated_at=now))
        else:
            row.sealed, row.updated_at = sealed, now


def stale(rt) -> dict[str, int]:
    """How many ciphertexts each column holds under another key than the current one."""
    counts = {}
    with rt.sessions() as session:
        for model, name in SEALED_COLUMNS:
            column = getattr(model, name)
            counts[f"{model.__tablename__}.{name}"] = session.scalar(
                select(count_of(model)).where(_not_current(rt, column))) or 0
        counts["inbound_messages.payload"] = session.scalar(
            select(count_of(InboundMessage)).where(_sealed_payload())) or 0
    return counts


def rotate(rt, actor: str, progress: Callable[[int], Any] | None = None) -> dict[str, int]:
    """Seal every ciphertext again under the current key; counts by column."""
    keep_hash_key(rt)
    vault = rt.vault
    done: dict[str, int] = {}
    for model, name in SEALED_COLUMNS:
        column = getattr(model, name)
        total, last = 0, 0
        while True:
            with rt.sessions() as session, session.begin():
                rows = session.execute(
                    select(model.id, column).where(model.id > last, _not_current(rt, column))
                    .order_by(model.id).limit(BATCH)
                ).all()
                for id_, sealed in rows:
                    session.execute(update(model).where(model.id == id_)
                                    .values({name: vault.encrypt(vault.decrypt(sealed))}))
            if not rows:
                break
            last = rows[-1][0]
            total += len(rows)
            if progress:
                progress(len(rows))
        done[f"{model.__tablename__}.{name}"] = total
    done["inbound_messages.payload"] = _rotate_payloads(rt, progress)
    audit.record(rt, actor, "keys.rotated", vault.key_id, **done)
    return done


def _rotate_payloads(rt, progress) -> int:
    vault = rt.vault
    total, last = 0, 0
    while True:
        with rt.sessions() as session, session.begin():
            rows = session.execute(
                select(InboundMessage.id, InboundMessage.payload).where(InboundMessage.id > last, _sealed_payload())
                .order_by(InboundMessage.id).limit(BATCH)
            ).all()
            for id_, payload in rows:
                changed = dict(payload)
                for key in SEALED_PAYLOAD_FIELDS:
                    if key in changed and not vault.is_current(changed[key]):
                        changed[key] = vault.encrypt(vault.decrypt(changed[key]))
                if changed != payload:
                    session.execute(update(InboundMessage).where(InboundMessage.id == id_).values(payload=changed))
                    total += 1
        if not rows:
            return total
        last = rows[-1][0]
        if progress:
            progress(len(rows))


def _not_current(rt, column):
    return column.is_not(None) & not_(column.startswith(f"v2.{rt.vault.key_id}.", autoescape=True))


def _sealed_payload():
    text = cast(InboundMessage.payload, Text)
    return or_(*(text.like(f'%"{key}"%') for key in SEALED_PAYLOAD_FIELDS))


def count_of(model):
    from sqlalchemy import func

    return func.count(model.id)
