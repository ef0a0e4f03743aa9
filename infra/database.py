"""Engines and migrations for PostgreSQL and the embedded SQLite file."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

import migrations

_POSTGRES_DRIVERS = {
    "postgresql",
    "postgresql+psycopg",
    "postgresql+psycopg2",
    "postgresql+asyncpg",
}
SQLITE_BUSY_TIMEOUT_MS = 30_000
CONNECT_TIMEOUT_SECONDS = 5
POOL_TIMEOUT_SECONDS = 2


def async_url(url: str) -> str:
    """The same database, reached through an asyncio driver."""
    parsed = make_url(url)
    if parsed.drivername in _POSTGRES_DRIVERS:
        return parsed.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)
    if parsed.drivername in {"sqlite", "sqlite+pysqlite", "sqlite+aiosqlite"}:
        return parsed.set(drivername="sqlite+aiosqlite").render_as_string(hide_password=False)
    raise ValueError(f"unsupported DATABASE_URL driver {parsed.drivername!r}")


def sync_url(url: str) -> str:
    """The same database, reached through a blocking driver (for migrations and tooling)."""
    parsed = make_url(url)
    if parsed.drivername in _POSTGRES_DRIVERS:
        return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    if parsed.drivername in {"sqlite", "sqlite+pysqlite", "sqlite+aiosqlite"}:
        return parsed.set(drivername="sqlite").render_as_string(hide_password=False)
    raise ValueError(f"unsupported DATABASE_URL driver {parsed.drivername!r}")


def _ensure_sqlite_dir(url: str) -> None:
    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)


def _serialise_sqlite(engine: Engine) -> None:
    """Every SQLite transaction takes the write lock up front (BEGIN IMMEDIATE).

    Embedded mode has one writer at a time anyway; taking the lock first means a transaction
    never has to upgrade a stale read snapshot, which SQLite refuses without waiting.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # Autocommit connections (readers, single writes) run each statement on its own.
        if connection.get_execution_options().get("isolation_level") != "AUTOCOMMIT":
            connection.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str, pool_size: int = 10) -> AsyncEngine:
    target = async_url(url)
    if target.startswith("sqlite"):
        _ensure_sqlite_dir(url)
        engine = create_async_engine(target, poolclass=NullPool)
        _serialise_sqlite(engine.sync_engine)
        return engine
    # A pool smaller than the requests in flight opens and closes overflow connections all
    # the time (seen in the availability benchmark); keep the steady state inside the pool.
    engine = create_async_engine(
        target,
        # A database that does not answer fails the request (503) instead of holding it.
        connect_args={"timeout": CONNECT_TIMEOUT_SECONDS},
        # Past the pool, a request waits this long for a connection and then gets a 503 with
        # Retry-After: an overloaded API sheds work at once instead of holding it for 30 s.
        pool_timeout=POOL_TIMEOUT_SECONDS,
        pool_size=pool_size,
        max_overflow=pool_size // 2,
        # SQLAlchemy's pre-ping costs a round trip per checkout (the accept path halved its
        # throughput on the loaded machine); _drop_connections_closed_while_pooled does the
        # same job for the cases that matter without one.
        pool_pre_ping=False,
        pool_recycle=3600,
    )
    _drop_connections_closed_while_pooled(engine.sync_engine)
    return engine


def _drop_connections_closed_while_pooled(engine: Engine) -> None:
    """A connection the server cut while it sat in the pool is replaced at checkout.

    A failover, a restart or pg_terminate_backend closes the server's end; asyncpg notices the
    closed socket on its own (no round trip), and raising DisconnectionError at checkout makes
    the pool discard the connection and hand out a fresh one. A connection cut while a statement
    runs still fails that statement: the unit of work reports it as Unavailable (a 503).
    """

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        driver_connection = getattr(dbapi_connection, "driver_connection", None)
        is_closed = getattr(driver_connection, "is_closed", None)
        if is_closed is not None and is_closed():
            raise DisconnectionError("the server closed this connection while it was pooled")


def make_sync_engine(url: str) -> Engine:
    target = sync_url(url)
    if target.startswith("sqlite"):
        _ensure_sqlite_dir(url)
        engine = create_engine(target, poolclass=NullPool)
        _serialise_sqlite(engine)
        return engine
    return create_engine(target, poolclass=NullPool)


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(Path(migrations.__file__).parent))
    # ConfigParser treats % as interpolation; URL-encoded passwords contain it.
    config.set_main_option("sqlalchemy.url", sync_url(url).replace("%", "%%"))
    return config


# Any fixed number: every `booking migrate` of one database takes the same lock.
MIGRATION_LOCK_KEY = 0x626F6F6B696E67  # "booking"


def _wait_for_migration_lock(connection: Connection) -> None:
    """Take the session lock by polling: a waiter inside a statement would hold a snapshot,
    and CREATE INDEX CONCURRENTLY in the running migration waits for every snapshot."""
    while True:
        taken = connection.execute(
            text("SELECT pg_try_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
        ).scalar()
        connection.commit()
        if taken:
            return
        time.sleep(0.2)


def migrate(url: str, revision: str = "head") -> None:
    """Bring the schema to `revision` through the Alembic migrations.

    On PostgreSQL the migration holds an advisory lock for its whole session, so several
    processes starting at once (replicas, a job and a developer) migrate one after the other
    instead of together. The lock outlives transactions: some migrations commit part way
    (indexes built CONCURRENTLY cannot run inside one).
    """
    engine = make_sync_engine(url)
    try:
        with engine.connect() as connection:
            if connection.dialect.name == "postgresql":
                _wait_for_migration_lock(connection)
            config = alembic_config(url)
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
            if connection.dialect.name == "postgresql":
                connection.rollback()  # whatever the last migration left open
                connection.execute(
                    text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK_KEY}
                )
                connection.commit()
    finally:
        engine.dispose()
