"""What a process checks before it serves: the default survey exists and the secret key opens the stored data.

Both are operator mistakes that would otherwise show up later, one message at a time: a typo in
RETORNO_DEFAULT_SURVEY leaves every new respondent without a reply, and a wrong RETORNO_SECRET_KEY makes every
webhook fail (the hashing key kept in the database cannot be opened) or, before any rotation, files the same
people again under new hashes. Each check raises ConfigError with one line naming the fix.
"""

from __future__ import annotations

import logging

from cryptography.exceptions import InvalidTag
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from service.config import ConfigError
from service.models import Contact, VaultKey
from service.privacy import UnknownKey
from service.runtime import Runtime

log = logging.getLogger(__name__)

KEY_FIX = ("set RETORNO_SECRET_KEY to the key this data was sealed with (in embedded mode, the one in "
           "retorno-data/secret_key), or keep that key in RETORNO_OLD_SECRET_KEYS and run `retorno keys rotate`")


def check_default_survey(rt: Runtime) -> None:
    """ConfigError unless RETORNO_DEFAULT_SURVEY names a survey of the files or the database."""
    known = rt.catalog.known()
    if rt.settings.default_survey not in known:
        raise ConfigError(
            f"RETORNO_DEFAULT_SURVEY={rt.settings.default_survey} is not a known survey; known: "
            f"{', '.join(known) or 'none'} (set it to one of them, or add its file to RETORNO_SURVEYS_DIR)"
        )


def check_keys(rt: Runtime) -> None:
    """ConfigError unless the secret keys open what is stored: the kept hashing key, the newest and the oldest
    sealed address."""
    with rt.sessions() as session:
        sealed = [session.scalar(select(VaultKey.sealed).where(VaultKey.name == "hash"))]
        for order in (Contact.id.desc(), Contact.id.asc()):
            sealed.append(session.scalar(select(Contact.address_enc).order_by(order).limit(1)))
    for value in sealed:
        if not value:
            continue
        try:
            rt.vault.decrypt(value)
        except (UnknownKey, InvalidTag, ValueError) as error:
            reason = str(error) if isinstance(error, UnknownKey) else "the key does not open it"
            raise ConfigError(f"RETORNO_SECRET_KEY cannot open the stored data ({reason}): {KEY_FIX}") from None


def warn_database_settings(rt: Runtime) -> None:
    """A warning when PostgreSQL runs without autovacuum: within minutes of load its statistics and indexes age, and
    every batch slows down (measured: docs/benchmarks.md)."""
    if rt.engine.dialect.name != "postgresql":
        return
    try:
        with rt.engine.connect() as connection:
            autovacuum = connection.exec_driver_sql("SHOW autovacuum").scalar()
    except SQLAlchemyError:
        return  # the database is down: check() said so already
    if autovacuum != "on":
        log.warning("PostgreSQL runs with autovacuum off: plans and indexes degrade under load within minutes "
                    "(set autovacuum = on in postgresql.conf and reload PostgreSQL)")


def check(rt: Runtime) -> None:
    """Every startup check; a database that cannot be read yet (down, or not migrated) skips them with a warning,
    since webhooks are spooled meanwhile (service.spool)."""
    try:
        check_keys(rt)
        check_default_survey(rt)
    except SQLAlchemyError as error:
        log.warning("startup checks skipped: the database cannot be read now (%s)", type(error).__name__)
