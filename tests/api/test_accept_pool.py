"""Accepting with Idempotency-Keys while the provider catalog loads: no request waits for a
second pooled connection while it holds one.

Accepting with a key looks the key up first (a connection from the pool) and then checks the
start against the provider's hours, which the catalog loads on a miss through a connection of
its own. If the first were still held, as many concurrent requests as the pool has connections
would each hold one and wait for a second: the whole API stalls for the pool timeout and
answers 503. Seen as 35 req/s and 10% 503s at 16 concurrent requests over 10,000 providers
(benchmarks/datagrowth.py); 7 ms a request one at a time.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from contextlib import ExitStack
from datetime import timedelta
from typing import Any
from uuid import uuid4

import httpx
import pytest
from litestar.testing import TestClient
from redis.asyncio import Redis

from domain.model import Role
from infra.settings import Settings
from tests.api.conftest import NOW, Api, bearer
from tests.api.helpers import create_provider, hours
from tests.conftest import TestDatabase, issue_key, own_redis

POOL = 2  # DATABASE_POOL_SIZE: 2 pooled connections and 1 overflow
CONCURRENT = 12


def _app(database: TestDatabase, redis_url: str, pool_size: int) -> Any:
    from api.app import create_app

    env = {"DATABASE_URL": database.url, "REDIS_URL": redis_url, "LOG_LEVEL": "WARNING"}
    settings = Settings.from_env({**env, "DATABASE_POOL_SIZE": str(pool_size)}, dotenv=None)
    return create_app(settings, redis=Redis.from_url(redis_url), clock=lambda: NOW)


def test_concurrent_keyed_accepts_with_a_cold_catalog_are_all_accepted(
    postgres_database: TestDatabase, tmp_path_factory: pytest.TempPathFactory
) -> None:
    admin = bearer(issue_key(postgres_database.url, Role.ADMIN, "pool admin").key)
    user = bearer(issue_key(postgres_database.url, Role.CLIENT, "pool client").key)
    start = "2026-10-22T10:00:00-04:00"  # a Thursday, a week after NOW
    with ExitStack() as stack:
        redis_url = stack.enter_context(own_redis(tmp_path_factory.mktemp("pool-redis"))).url
        # Providers made through one app; the app under test has never seen them.
        with TestClient(_app(postgres_database, redis_url, 4)) as maker:
            body = {"timezone": "America/New_York", "weekly_schedule": hours()}
            providers = [
                maker.post("/v1/providers", json=body, headers=admin).json()["id"]
                for _ in range(CONCURRENT)
            ]
        app = _app(postgres_database, redis_url, POOL)
        client = stack.enter_context(TestClient(app, raise_server_exceptions=False))

        async def accept_all() -> list[int]:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:

                async def one(provider: str) -> int:
                    response = await http.post(
                        "/v1/bookings",
                        json={"provider_id": provider, "start": start},
                        headers={**user, "Idempotency-Key": f"pool-{uuid4().hex}"},
                        timeout=30,
                    )
                    return response.status_code

                return list(await asyncio.gather(*(one(p) for p in providers)))

        statuses = client.blocking_portal.call(accept_all)

    assert Counter(statuses) == {202: CONCURRENT}, Counter(statuses)


def test_a_keyed_replay_still_answers_the_original_after_its_start_has_passed(api: Api) -> None:
    """The start is checked before the key is looked up; a replay must not see that check."""
    provider = create_provider(api)
    key = f"replay-{uuid4().hex}"
    body = {"provider_id": provider, "start": "2026-10-15T14:00:00-04:00"}  # NOW + 6 hours
    first = api.post("/v1/bookings", json=body, headers={**api.user, "Idempotency-Key": key})
    assert first.status_code == 202, first.text

    runtime = api.client.app.state.runtime
    runtime.clock = lambda: NOW + timedelta(hours=23)  # the start is past, the key still replays
    try:
        fresh = api.post("/v1/bookings", json=body, headers=api.user)
        replay = api.post("/v1/bookings", json=body, headers={**api.user, "Idempotency-Key": key})
    finally:
        runtime.clock = lambda: NOW
    assert fresh.status_code == 422, fresh.text
    assert replay.status_code == 202, replay.text
    assert replay.json()["id"] == first.json()["id"]
