"""Keys and files: ciphertexts name their key, a rotation seals everything again while old keys still read,
hashes stay stable, older ciphertexts (without a key id) still open; the data folder and its files are private."""

from __future__ import annotations

import base64
import os
import stat
from dataclasses import replace

import pytest
from click.testing import CliRunner

from service import runtime as runtimes
from service.privacy import UnknownKey, Vault
from tests.support import Harness

OLD, NEW = "retorno-test-secret-key-0123456789", "a-brand-new-secret-key-9876543210"


def legacy_encrypt(secret: str, text: str) -> str:
    """A ciphertext as Retorno wrote them before key ids (plain base64 of nonce + AES-GCM)."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from service.privacy import _derive

    nonce = os.urandom(12)
    sealed = AESGCM(_derive(secret.encode(), b"retorno address encryption")).encrypt(nonce, text.encode(), None)
    return base64.urlsafe_b64encode(nonce + sealed).decode()


def test_ciphertexts_name_their_key_and_old_ones_still_open():
    old, new = Vault(OLD), Vault(NEW, [OLD])
    sealed = old.encrypt("+525512345678")
    assert sealed.startswith(f"v2.{old.key_id}.") and old.key_id != new.key_id
    assert new.decrypt(sealed) == "+525512345678" and not new.is_current(sealed)
    assert new.decrypt(legacy_encrypt(OLD, "+525598765432")) == "+525598765432"
    with pytest.raises(UnknownKey):
        Vault(NEW).decrypt(sealed)
    assert new.hash("sms", "+525512345678") == old.hash("sms", "+525512345678"), "hashes of the first key"


def test_keys_rotate_seals_everything_again_and_the_old_key_can_go(sqlite_url, providers, tmp_path):
    h = Harness(sqlite_url, providers, tmp_path)
    try:
        for text in ("Hola", "si", "1", "55 1234 0000"):
            h.sms("+525512345678", text)
        h.telegram(_contact(7001, "5215598765432"))  # a shared number, kept sealed while pending
        h.settle()
        with h.rt.engine.begin() as connection:
            from sqlalchemy import text

            connection.execute(text("UPDATE contacts SET address_enc = :legacy WHERE channel = 'sms'"),
                               {"legacy": legacy_encrypt(OLD, "+525512345678")})
        before = h.count("SELECT count(*) FROM contacts")
        from service.cli import main

        env = {"DATABASE_URL": sqlite_url, "RETORNO_SECRET_KEY": NEW, "RETORNO_OLD_SECRET_KEYS": OLD,
               "REDIS_URL": ""}
        rotated = CliRunner().invoke(main, ["keys", "rotate"], env=env, catch_exceptions=False)
        assert rotated.exit_code == 0, rotated.output
        assert "old keys may now be removed" in rotated.output
        key = Vault(NEW).key_id
        with h.rt.engine.connect() as connection:
            sealed = [row[0] for row in connection.execute(text(
                "SELECT address_enc FROM contacts UNION ALL SELECT address_enc FROM inbound_messages"))]
        assert sealed and all(s.startswith(f"v2.{key}.") for s in sealed)
        # the new key alone now reads everything, and finds the same people by the same hashes
        settings = replace(h.settings, secret_key=NEW, old_secret_keys=())
        fresh = runtimes.build(settings)
        runtimes.install(fresh)
        assert fresh.vault.hash("sms", "+525512345678") == h.rt.vault.hash("sms", "+525512345678")
        with fresh.sessions() as session:
            from service.rights import find

            [ana] = find(fresh, session, phone="5512345678")
            assert fresh.vault.decrypt(ana.address_enc) == "+525512345678"
        assert before == h.count("SELECT count(*) FROM contacts")
        stale = CliRunner().invoke(main, ["keys", "rotate"], env={**env, "RETORNO_OLD_SECRET_KEYS": ""})
        assert stale.exit_code == 0, stale.output  # nothing left under the old key
        [entry] = [e for e in _audit(fresh) if e["action"] == "keys.rotated"][:1]
        assert entry["target"] == key and entry["detail"]["contacts.address_enc"] == 2
        fresh.engine.dispose()
    finally:
        h.close()


def _audit(rt) -> list[dict]:
    from service import audit

    return audit.entries(rt)


def _contact(chat_id: int, phone: str) -> dict:
    from tests.privacy.conftest import telegram_contact

    return telegram_contact(424242, chat_id, phone)


def test_the_embedded_data_folder_and_its_files_are_private(tmp_path, monkeypatch):
    from service.config import Settings
    from service.db import upgrade

    folder = tmp_path / "data"
    folder.mkdir(mode=0o755)
    monkeypatch.setenv("RETORNO_DATA_DIR", str(folder))
    for name in ("DATABASE_URL", "REDIS_URL", "RETORNO_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    old_umask = os.umask(0o022)
    try:
        settings = Settings.from_env()
        upgrade(settings.database_url)
        rt = runtimes.build(settings)
        with rt.engine.begin() as connection:
            from sqlalchemy import text

            connection.execute(text("SELECT count(*) FROM contacts"))
        rt.engine.dispose()
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    files = [p for p in folder.iterdir() if p.is_file()]
    assert {p.name for p in files} >= {"retorno.sqlite3", "secret_key"}
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_existing_data_migrates(database, request, tmp_path):
    """A database from before this migration keeps its rows: console contacts become tests, incentive records
    stay, old ciphertexts still open."""
    from sqlalchemy import create_engine, text

    from service.db import upgrade

    if database == "sqlite":
        url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    else:
        from tests.support import create_database, drop_database

        name = f"retorno_migrate_{os.getpid()}"
        url = create_database(name)
        request.addfinalizer(lambda: drop_database(name))
    for head in ("0002_incentives", "0002_campaigns", "0002_gaps"):
        upgrade(url, head)
    engine = create_engine(url)
    legacy = legacy_encrypt(OLD, "ana")
    with engine.begin() as connection:
        for id_, channel in ((1, "console"), (2, "sms")):
            connection.execute(text(
                "INSERT INTO contacts (id, public_id, channel, address_hash, address_enc, tags, opted_out, "
                "unreachable, created_at, updated_at) VALUES (:id, :p, :c, :h, :e, '[]', false, false, "
                "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"), {"id": id_, "p": f"p{id_}", "c": channel, "h": f"h{id_}",
                                                          "e": legacy})
        connection.execute(text(
            "INSERT INTO survey_sessions (id, contact_id, survey_id, version, wave, status, language, state, "
            "started_at, last_activity_at, reminders_sent, updated_at) VALUES (1, 2, 's', 1, 1, 'completed', 'es', "
            "'{}', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 0, CURRENT_TIMESTAMP)"))
        connection.execute(text(
            "INSERT INTO incentives (id, contact_id, session_id, survey_id, wave, amount_cents, currency, status, "
            "provider, idempotency_key, attempts, created_at, updated_at) VALUES (1, 2, 1, 's', 1, 3000, 'MXN', "
            "'succeeded', 'ledger', 'rt-1', 1, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"))
    upgrade(url)
    with engine.begin() as connection:
        tests = connection.execute(text("SELECT channel FROM contacts WHERE test")).scalars().all()
        kept = connection.execute(text("SELECT contact_id, status FROM incentives")).all()
        sealed = connection.execute(text("SELECT address_enc FROM contacts WHERE id = 1")).scalar_one()
        connection.execute(text("UPDATE incentives SET contact_id = NULL, session_id = NULL"))  # may be anonymous
    engine.dispose()
    assert tests == ["console"] and [tuple(k) for k in kept] == [(2, "succeeded")]
    assert Vault(OLD).decrypt(sealed) == "ana"
