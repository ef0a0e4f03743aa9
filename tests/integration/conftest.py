"""A fresh, migrated database per test: SQLite, and PostgreSQL (dropped afterwards)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from infra.database import make_sync_engine
from tests.conftest import (
    TestDatabase,
    create_postgres_database,
    create_sqlite_database,
    drop_postgres_database,
    postgres_server_url,
)


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TestDatabase]:
    if request.param == "sqlite":
        yield create_sqlite_database(tmp_path)
        return
    database = create_postgres_database(postgres_server_url())
    try:
        yield database
    finally:
        drop_postgres_database(database)


@pytest.fixture
def engine(fresh: TestDatabase) -> Iterator[Engine]:
    engine = make_sync_engine(fresh.url)
    yield engine
    engine.dispose()
