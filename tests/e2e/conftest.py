"""A live `booking api` (SQLite, the embedded Redis server) with an admin key, for the e2e tests."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from domain.model import Role
from tests.conftest import create_sqlite_database, issue_key
from tests.servers import embedded_redis, running_api


@dataclass(frozen=True)
class Served:
    base_url: str
    admin_key: str
    client_key: str


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    directory = tmp_path_factory.mktemp("served")
    database = create_sqlite_database(directory)
    admin = issue_key(database.url, Role.ADMIN, "e2e admin")
    client = issue_key(database.url, Role.CLIENT, "e2e client")
    with embedded_redis() as redis_url:
        env = {"DATABASE_URL": database.url, "REDIS_URL": redis_url, "LOG_LEVEL": "WARNING"}
        with running_api(env, directory) as base_url:
            yield Served(base_url, admin.key, client.key)
