"""Shared fixtures: real PostgreSQL and Redis when present (required with CI=true), SQLite otherwise."""

from __future__ import annotations

import os
import shutil
import uuid

import pytest

from tests.support import (
    REDIS_URL,
    create_database,
    drop_database,
    postgres_available,
    redis_available,
)

CI = os.environ.get("CI", "").lower() == "true"


def pytest_addoption(parser):
    parser.addoption("--update-snapshots", action="store_true",
                     help="rewrite the pinned files under tests/snapshots/ from what the code generates now")


def _require(available: bool, what: str) -> None:
    if available:
        return
    if CI:
        pytest.fail(f"{what} is required in CI (CI=true) but is not reachable")
    pytest.skip(f"{what} is not reachable")


@pytest.fixture(scope="session")
def postgres_url():
    """A fresh, migrated PostgreSQL database for this test session."""
    _require(postgres_available(), "PostgreSQL at 127.0.0.1:5432")
    name = f"retorno_test_{uuid.uuid4().hex[:8]}"
    url = create_database(name)
    from service.db import upgrade

    upgrade(url)
    yield url
    drop_database(name)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory):
    """A migrated SQLite file, copied for each test (migrating once is faster)."""
    from service.db import upgrade

    path = tmp_path_factory.mktemp("sqlite") / "template.sqlite3"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture
def sqlite_url(sqlite_template, tmp_path):
    path = tmp_path / "retorno.sqlite3"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def clean_postgres(postgres_url):
    from tests.support import truncate_all

    truncate_all(postgres_url)
    return postgres_url


CLAIM_KEY = "retorno:test:owner"


@pytest.fixture(scope="session")
def redis_database():
    """A Redis database number of this test session's own, so test runs side by side never flush each other."""
    _require(redis_available(), "Redis at 127.0.0.1:6379")
    from redis import Redis

    owner = uuid.uuid4().hex
    base = REDIS_URL.rsplit("/", 1)[0]
    for number in (15, 14, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1):
        connection = Redis.from_url(f"{base}/{number}")
        if connection.set(CLAIM_KEY, owner, nx=True, ex=4 * 3600):
            yield f"{base}/{number}", owner
            connection.flushdb()
            connection.close()
            return
        connection.close()
    pytest.fail("every Redis database is claimed by another test run")


@pytest.fixture
def redis_url(redis_database):
    from redis import Redis

    url, owner = redis_database
    connection = Redis.from_url(url)
    connection.flushdb()
    connection.set(CLAIM_KEY, owner, ex=4 * 3600)
    yield url
    connection.flushdb()
    connection.set(CLAIM_KEY, owner, ex=4 * 3600)
    connection.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    """Each pipeline test runs on SQLite (embedded) and on PostgreSQL (production)."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_url")
    return request.getfixturevalue("clean_postgres")


@pytest.fixture
def providers():
    from tests.fake_providers import FakeProviders

    fake = FakeProviders().start()
    yield fake
    fake.stop()


@pytest.fixture
def harness(database_url, providers, tmp_path):
    from tests.support import Harness

    h = Harness(database_url, providers, tmp_path)
    yield h
    h.close()


@pytest.fixture(autouse=True)
def _no_installed_runtime():
    """Each test starts without a process-wide runtime from an earlier test."""
    yield
    from service import runtime

    runtime.reset()

