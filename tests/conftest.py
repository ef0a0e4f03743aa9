"""Shared fixtures: databases of the test run's own (PostgreSQL and SQLite), Redis, API clients.

Tests that need a real server skip when it is absent and say so. With
BOOKING_TEST_REQUIRE_SERVICES=1 (CI sets it) an absent server fails the run instead.

The tests empty the Redis they use, so they never use one they did not make: they start a
`redis-server` of their own when the binary is on PATH; otherwise they claim a database of
REDIS_URL's server that is empty (1 to 10; never 0 or 11-15) and empty only that one, only
while their claim is still there.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
import redis
from sqlalchemy.engine import make_url

from domain.commands import CreateApiClient
from domain.model import Role
from domain.use_cases.clients import IssuedKey, create_api_client
from infra.database import make_engine, migrate
from infra.unit_of_work import SqlDatabase
from tests.servers import REDIS_SERVER, redis_server

REQUIRE_SERVICES = os.environ.get("BOOKING_TEST_REQUIRE_SERVICES", "") == "1"


def missing_service(reason: str) -> None:
    if REQUIRE_SERVICES:
        pytest.fail(f"{reason} (BOOKING_TEST_REQUIRE_SERVICES=1 forbids skipping)")
    pytest.skip(reason)


def postgres_server_url() -> str:
    """DATABASE_URL (or TEST_DATABASE_URL) if it points at a reachable PostgreSQL server."""
    url = os.environ.get("TEST_DATABASE_URL") or os.environ.get("DATABASE_URL") or ""
    if not url.startswith("postgresql"):
        missing_service("PostgreSQL tests skipped: DATABASE_URL is not set to a postgresql:// URL")
    try:
        with psycopg.connect(_libpq(url, "postgres"), connect_timeout=3):
            pass
    except psycopg.OperationalError as exc:
        missing_service(f"PostgreSQL tests skipped: server at DATABASE_URL unreachable ({exc})")
    return url


def redis_server_url() -> str:
    url = os.environ.get("TEST_REDIS_URL") or os.environ.get("REDIS_URL") or ""
    if not url.startswith("redis"):
        missing_service("Redis tests skipped: REDIS_URL is not set")
    try:
        redis.Redis.from_url(url, socket_connect_timeout=3).ping()
    except redis.RedisError as exc:
        missing_service(f"Redis tests skipped: server at REDIS_URL unreachable ({exc})")
    return url


@dataclass
class OwnRedis:
    url: str
    whole_server: bool  # a redis-server this test run started: even FLUSHALL is fine


_CLAIM_KEY = "booking-tests:claimed-by"


@contextmanager
def own_redis(directory: Path) -> Iterator[OwnRedis]:
    """A Redis the caller may empty: its own server, else a claimed empty database."""
    if REDIS_SERVER is not None:
        with redis_server(directory) as url:
            yield OwnRedis(url, whole_server=True)
        return
    server = redis_server_url()
    token = uuid.uuid4().hex
    for number in range(1, 11):
        url = str(make_url(server).set(database=str(number)))
        client = redis.Redis.from_url(url)
        if client.dbsize() == 0 and client.set(_CLAIM_KEY, token, nx=True):
            break
    else:
        missing_service(
            "Redis tests skipped: redis-server is not on PATH and no database 1-10 at REDIS_URL"
            " is empty (the tests only empty a Redis they started or an empty database)"
        )
    try:
        yield OwnRedis(url, whole_server=False)
    finally:
        if client.get(_CLAIM_KEY) == token.encode():
            client.flushdb()


def _libpq(url: str, database: str) -> str:
    parsed = make_url(url).set(drivername="postgresql", database=database)
    return parsed.render_as_string(hide_password=False)


def with_database(url: str, database: str) -> str:
    return make_url(url).set(database=database).render_as_string(hide_password=False)


@dataclass
class TestDatabase:
    __test__ = False  # a fixture value, not a test class

    url: str  # SQLAlchemy URL of a migrated database that this test run owns
    backend: str


def create_postgres_database(server_url: str) -> TestDatabase:
    name = f"booking_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_libpq(server_url, "postgres"), autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    url = with_database(server_url, name)
    migrate(url)
    return TestDatabase(url, "postgresql")


def drop_postgres_database(database: TestDatabase) -> None:
    name = make_url(database.url).database
    with psycopg.connect(_libpq(database.url, "postgres"), autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def create_sqlite_database(directory: Path) -> TestDatabase:
    url = f"sqlite:///{directory / 'booking.db'}"
    migrate(url)
    return TestDatabase(url, "sqlite")


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[TestDatabase]:
    database = create_postgres_database(postgres_server_url())
    yield database
    drop_postgres_database(database)


@pytest.fixture(scope="session")
def sqlite_database(tmp_path_factory: pytest.TempPathFactory) -> TestDatabase:
    return create_sqlite_database(tmp_path_factory.mktemp("sqlite"))


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest) -> TestDatabase:
    """Each API test runs on the embedded SQLite file and on real PostgreSQL."""
    name = "postgres_database" if request.param == "postgresql" else "sqlite_database"
    db: TestDatabase = request.getfixturevalue(name)
    return db


def issue_key(url: str, role: Role, name: str = "test") -> IssuedKey:
    async def issue() -> IssuedKey:
        db = SqlDatabase(make_engine(url, 1))
        try:
            return await create_api_client(CreateApiClient(name, role), db.unit_of_work())
        finally:
            await db.dispose()

    return asyncio.run(issue())
