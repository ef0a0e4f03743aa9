"""An API client per backend: SQLite with fakeredis, PostgreSQL with real Redis."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import pytest
from fakeredis import FakeAsyncRedis
from litestar.testing import TestClient
from redis.asyncio import Redis

from domain.model import Role
from domain.use_cases.processing import process_wakeups
from infra.settings import Settings
from tests.conftest import TestDatabase, issue_key, own_redis


@dataclass
class Api:
    client: TestClient[Any]
    admin: dict[str, str]
    user: dict[str, str]  # a client-role key
    other_user: dict[str, str]  # another client's key
    database: TestDatabase

    def get(self, path: str, headers: dict[str, str] | None = None, **kw: Any) -> Any:
        return self.client.get(path, headers=headers if headers is not None else self.user, **kw)

    def post(
        self, path: str, json: Any = None, headers: dict[str, str] | None = None, **kw: Any
    ) -> Any:
        return self.client.post(
            path, json=json, headers=headers if headers is not None else self.admin, **kw
        )

    def put(
        self, path: str, json: Any = None, headers: dict[str, str] | None = None, **kw: Any
    ) -> Any:
        return self.client.put(
            path, json=json, headers=headers if headers is not None else self.admin, **kw
        )

    def patch(self, path: str, json: Any = None, headers: dict[str, str] | None = None) -> Any:
        return self.client.patch(
            path, json=json, headers=headers if headers is not None else self.admin
        )

    def delete(self, path: str, headers: dict[str, str] | None = None) -> Any:
        return self.client.delete(path, headers=headers if headers is not None else self.admin)

    def decide(self, provider_id: str, request_id: str) -> None:
        """What a worker does when woken, run in the app's own loop with its own clients."""
        runtime = self.client.app.state.runtime

        async def process() -> None:
            await process_wakeups(
                [(UUID(provider_id), UUID(request_id))],
                runtime.database,
                runtime.notifier,
                lambda: NOW,
            )

        self.client.blocking_portal.call(process)


# The API tests run at a fixed moment, so the dates they name stay in the future and inside
# the default horizon whenever the suite runs.
NOW = datetime(2026, 10, 15, 12, 0, tzinfo=UTC)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def settings_for(database: TestDatabase, redis_url: str) -> Settings:
    return Settings.from_env(
        {"DATABASE_URL": database.url, "REDIS_URL": redis_url, "LOG_LEVEL": "WARNING"},
        dotenv=None,
    )


@pytest.fixture(scope="session")
def api(database: TestDatabase, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    with ExitStack() as stack:
        if database.backend == "postgresql":
            # A Redis of the API tests' own (tests/conftest.py own_redis).
            redis_url = stack.enter_context(own_redis(tmp_path_factory.mktemp("api-redis"))).url
            redis: Redis = Redis.from_url(redis_url)
        else:
            redis_url = "redis://embedded-fake/0"
            redis = FakeAsyncRedis()
        yield from _api(database, redis_url, redis)


def _api(database: TestDatabase, redis_url: str, redis: Redis) -> Iterator[Api]:
    from api.app import create_app

    app = create_app(settings_for(database, redis_url), redis=redis, clock=lambda: NOW)
    admin = issue_key(database.url, Role.ADMIN, "test admin")
    user = issue_key(database.url, Role.CLIENT, "test client")
    other = issue_key(database.url, Role.CLIENT, "other client")
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Api(client, bearer(admin.key), bearer(user.key), bearer(other.key), database)
