"""The migrations build the whole data model on both backends, and PostgreSQL refuses overlaps."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, insert, inspect, update
from sqlalchemy.exc import IntegrityError

from infra.database import alembic_config, make_sync_engine, migrate
from infra.partitions import include_in_autogenerate
from infra.tables import Base, BookingRow
from tests.conftest import (
    TestDatabase,
    create_postgres_database,
    drop_postgres_database,
    postgres_server_url,
)
from tests.integration.rows import add_client_and_provider

TABLES = {
    "api_clients",
    "providers",
    "schedule_overrides",
    "bookings",
    "booking_requests",
    "events",
    "webhook_endpoints",
    "webhook_deliveries",
}


def test_migrations_create_every_table(engine: Engine) -> None:
    assert set(inspect(engine).get_table_names()) >= TABLES


def test_models_and_migrations_agree(engine: Engine) -> None:
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"include_object": include_in_autogenerate}
        )
        differences = compare_metadata(context, Base.metadata)
    assert differences == []


def test_migrating_twice_changes_nothing_and_downgrade_removes_everything(
    fresh: TestDatabase, engine: Engine
) -> None:
    migrate(fresh.url)
    with engine.begin() as connection:
        config = alembic_config(fresh.url)
        config.attributes["connection"] = connection
        command.downgrade(config, "base")
    assert not TABLES & set(inspect(engine).get_table_names())


def _provider_and_client(engine: Engine) -> tuple[uuid.UUID, uuid.UUID]:
    with engine.begin() as connection:
        client_id, provider_id = add_client_and_provider(connection, datetime.now(UTC))
    return provider_id, client_id


def _booking(
    provider_id: uuid.UUID, client_id: uuid.UUID, start: datetime, status: str = "confirmed"
) -> dict[str, object]:
    now = datetime.now(UTC)
    return {
        "id": uuid.uuid4(),
        "client_id": client_id,
        "provider_id": provider_id,
        "customer_id": None,
        "start_at": start,
        "end_at": start + timedelta(minutes=30),
        "blocked_from": start,
        "blocked_until": start + timedelta(minutes=30),
        "status": status,
        "metadata_": {},
        "created_at": now,
        "updated_at": now,
    }


def test_postgres_refuses_overlapping_confirmed_bookings(tmp_path: Path) -> None:
    database = create_postgres_database(postgres_server_url())
    engine = make_sync_engine(database.url)
    try:
        provider_id, client_id = _provider_and_client(engine)
        start = datetime(2027, 1, 4, 14, 0, tzinfo=UTC)
        with engine.begin() as connection:
            connection.execute(insert(BookingRow).values(**_booking(provider_id, client_id, start)))
        with (
            pytest.raises(IntegrityError, match="ex_bookings_no_overlap"),
            engine.begin() as connection,
        ):
            overlapping = _booking(provider_id, client_id, start + timedelta(minutes=15))
            connection.execute(insert(BookingRow).values(**overlapping))
        # Touching spans do not overlap; a cancelled booking blocks nothing.
        with engine.begin() as connection:
            adjacent = _booking(provider_id, client_id, start + timedelta(minutes=30))
            connection.execute(insert(BookingRow).values(**adjacent))
            cancelled = _booking(provider_id, client_id, start, status="cancelled")
            connection.execute(insert(BookingRow).values(**cancelled))
        # Re-confirming the cancelled one would overlap: refused too.
        with pytest.raises(IntegrityError), engine.begin() as connection:
            connection.execute(
                update(BookingRow)
                .where(BookingRow.id == cancelled["id"])
                .values(status="confirmed")
            )
    finally:
        engine.dispose()
        drop_postgres_database(database)


def test_concurrent_migrations_of_one_database_all_succeed() -> None:
    from concurrent.futures import ThreadPoolExecutor

    import psycopg

    from tests.conftest import _libpq

    server = postgres_server_url()
    name = f"booking_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_libpq(server, "postgres"), autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    database = TestDatabase(make_url_with(server, name), "postgresql")
    try:
        with ThreadPoolExecutor(4) as pool:
            for result in [pool.submit(migrate, database.url) for _ in range(4)]:
                result.result(timeout=60)  # re-raises a failed (or, unlocked, a hung) one
        engine = make_sync_engine(database.url)
        try:
            assert set(inspect(engine).get_table_names()) >= TABLES
        finally:
            engine.dispose()
    finally:
        drop_postgres_database(database)


def make_url_with(server: str, name: str) -> str:
    from tests.conftest import with_database

    return with_database(server, name)
