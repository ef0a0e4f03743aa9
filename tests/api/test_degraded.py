"""With Redis unreachable the API still accepts and answers; without a database it says 503."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from fakeredis import FakeAsyncRedis
from litestar.testing import TestClient
from redis.asyncio import Redis

from api.app import create_app
from domain.model import Role
from infra.settings import Settings
from tests.api.conftest import NOW, bearer
from tests.conftest import create_sqlite_database, issue_key
from tests.servers import free_port

WEEK = {"monday": [{"start": "09:00", "end": "17:00"}]}


@pytest.fixture
def without_redis(tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str], dict[str, str]]]:
    database = create_sqlite_database(tmp_path)
    nowhere = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    redis = Redis.from_url(nowhere, socket_connect_timeout=0.2, socket_timeout=0.2)
    settings = Settings.from_env({"DATABASE_URL": database.url, "REDIS_URL": nowhere}, dotenv=None)
    admin = bearer(issue_key(database.url, Role.ADMIN).key)
    client = bearer(issue_key(database.url, Role.CLIENT).key)
    with TestClient(create_app(settings, redis=redis, clock=lambda: NOW)) as http:
        yield http, admin, client


def test_without_redis_availability_is_computed_and_bookings_are_still_accepted(
    without_redis: tuple[TestClient, dict[str, str], dict[str, str]],
) -> None:
    http, admin, client = without_redis
    created = http.post(
        "/v1/providers", json={"timezone": "UTC", "weekly_schedule": WEEK}, headers=admin
    )
    assert created.status_code == 201
    provider = created.json()["id"]
    slots = http.get(f"/v1/providers/{provider}/availability?date=2026-11-30", headers=client)
    assert slots.status_code == 200
    assert len(slots.json()["slots"]) == 16
    accepted = http.post(
        "/v1/bookings",
        json={"provider_id": provider, "start": "2026-11-30T10:00:00Z"},
        headers=client,
    )
    # The request is recorded; the lost wake-up is the scheduler's to repeat.
    assert accepted.status_code == 202
    status = http.get(accepted.headers["location"], headers=client)
    assert status.status_code == 200
    assert status.json()["status"] == "pending"
    ready = http.get("/health/ready")
    assert ready.status_code == 503
    assert ready.json()["redis"] == "unavailable"


def test_without_a_database_the_answer_is_503_with_retry_after(tmp_path: Path) -> None:
    # A port bound but not listening refuses connections, and nobody else can take it.
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        nowhere = f"postgresql+psycopg://postgres@127.0.0.1:{held.getsockname()[1]}/none"
        answer_without_database(nowhere)


def answer_without_database(url: str) -> None:
    settings = Settings.from_env({"DATABASE_URL": url, "REDIS_URL": "redis://x"}, dotenv=None)
    with TestClient(create_app(settings, redis=FakeAsyncRedis())) as http:
        response = http.get("/v1/providers", headers={"Authorization": "Bearer bk_whatever"})
        assert response.status_code == 503
        assert response.headers["retry-after"] == "1"
        assert response.headers["content-type"].startswith("application/problem+json")
