"""The SQL unit of work: one transaction, its repositories, and effects that wait for commit."""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from types import TracebackType
from typing import Any, Self
from uuid import UUID

from sqlalchemy import CursorResult, Dialect, Executable, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from domain.errors import Unavailable
from domain.ports import AfterCommit
from infra.database import CONNECT_TIMEOUT_SECONDS
from infra.repositories import (
    SqlApiClientRepository,
    SqlBookingRepository,
    SqlBookingRequestRepository,
    SqlEventRepository,
    SqlOverrideRepository,
    SqlProviderRepository,
    SqlWebhookRepository,
    WeekCache,
    week_cache,
)

log = logging.getLogger(__name__)

_ADVISORY_LOCKS = text(
    "SELECT pg_advisory_xact_lock(key) FROM unnest(CAST(:keys AS bigint[])) AS key"
)


def advisory_key(provider_id: UUID) -> int:
    """A provider's signed 64-bit key for PostgreSQL advisory locks."""
    return int.from_bytes(provider_id.bytes[:8], "big", signed=True)


def is_unreachable(exc: BaseException) -> bool:
    """A failure of the connection rather than of the statement: worth a retry elsewhere."""
    if isinstance(exc, sa_exc.DBAPIError):
        return exc.connection_invalidated or isinstance(
            exc, sa_exc.OperationalError | sa_exc.InterfaceError
        )
    return isinstance(exc, sa_exc.TimeoutError | OSError)


class LazyConnection:
    """A pooled connection taken at the first statement, not before.

    Use cases often talk to Redis or check input before they touch the database; the
    connection is not held while they do.
    """

    def __init__(self, engine: AsyncEngine, on_write: Callable[[], None] | None) -> None:
        self._engine = engine
        self._on_write = on_write
        self._connection: AsyncConnection | None = None

    @property
    def dialect(self) -> Dialect:
        return self._engine.dialect

    async def _connected(self) -> AsyncConnection:
        if self._connection is None:
            try:
                self._connection = await self._engine.connect()
            except Exception as exc:
                if is_unreachable(exc):
                    raise Unavailable(f"cannot connect to the database: {exc!r}") from exc
                raise
        return self._connection

    def _writing(self, statement: Executable) -> None:
        if self._on_write is not None and getattr(statement, "is_dml", False):
            self._on_write()

    async def execute(self, statement: Executable, parameters: Any = None) -> CursorResult[Any]:
        self._writing(statement)
        connection = await self._connected()
        try:
            return await connection.execute(statement, parameters)
        except Exception as exc:
            if is_unreachable(exc):
                raise Unavailable(f"the database connection failed: {exc!r}") from exc
            raise

    async def scalar(self, statement: Executable, parameters: Any = None) -> Any:
        self._writing(statement)
        connection = await self._connected()
        try:
            return await connection.scalar(statement, parameters)
        except Exception as exc:
            if is_unreachable(exc):
                raise Unavailable(f"the database connection failed: {exc!r}") from exc
            raise

    async def commit(self) -> None:
        if self._connection is not None:
            try:
                await self._connection.commit()
            except Exception as exc:
                if is_unreachable(exc):
                    raise Unavailable(f"the commit's outcome is unknown: {exc!r}") from exc
                raise

    async def close(self) -> None:
        if self._connection is not None:
            connection, self._connection = self._connection, None
            try:
                await connection.close()
            except Exception as exc:
                # Closing rolls back; a connection already cut has nothing left to roll back.
                if not is_unreachable(exc):
                    raise
                log.debug("closing a broken database connection: %r", exc)


class SqlUnitOfWork:
    providers: SqlProviderRepository
    overrides: SqlOverrideRepository
    bookings: SqlBookingRepository
    requests: SqlBookingRequestRepository
    clients: SqlApiClientRepository
    events: SqlEventRepository
    webhooks: SqlWebhookRepository

    def __init__(
        self,
        engine: AsyncEngine,
        is_postgres: bool,
        weeks: WeekCache,
        read_only: bool = False,
        single_write: bool = False,
    ) -> None:
        self._engine = engine
        self._is_postgres = is_postgres
        self._weeks = weeks
        self._read_only = read_only
        self._single_write = single_write
        self._writes = 0
        self._pending: list[AfterCommit] = []
        self._committed: list[AfterCommit] = []

    async def __aenter__(self) -> Self:
        self._writes = 0
        self._connection = connection = LazyConnection(
            self._engine, self._count_write if self._single_write else None
        )
        self.providers = SqlProviderRepository(connection, self._weeks)
        self.overrides = SqlOverrideRepository(connection)
        self.bookings = SqlBookingRepository(connection)
        self.requests = SqlBookingRequestRepository(connection)
        self.clients = SqlApiClientRepository(connection)
        self.events = SqlEventRepository(connection)
        self.webhooks = SqlWebhookRepository(connection)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._pending.clear()
        await self._connection.close()  # rolls back whatever was not committed
        effects, self._committed = self._committed, []
        # Effects run after the connection is back in the pool. The commit already happened,
        # so a failing effect is logged, not raised: Redis is a wake-up, not the record.
        for effect in effects:
            try:
                await effect()
            except Exception:
                log.exception("after-commit effect failed")

    async def commit(self) -> None:
        if self._read_only:
            raise RuntimeError("a read-only unit of work cannot commit")
        if not self._single_write:  # a single write has committed with its own statement
            await self._connection.commit()
        self._committed.extend(self._pending)
        self._pending.clear()

    def _count_write(self) -> None:
        self._writes += 1
        if self._writes > 1:
            raise RuntimeError("a single-write unit of work was asked for a second write")

    def after_commit(self, effect: AfterCommit) -> None:
        self._pending.append(effect)

    async def lock_providers(self, provider_ids: Collection[UUID]) -> None:
        if self._is_postgres and provider_ids:
            # One statement; unnest() yields the keys in the (sorted) order given.
            keys = sorted({advisory_key(p) for p in provider_ids})
            await self._connection.execute(_ADVISORY_LOCKS, {"keys": keys})
        # On SQLite every transaction already began with BEGIN IMMEDIATE: the write lock.


class SqlDatabase:
    """The engine and the unit-of-work factories of one process, and its parsed schedules."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.weeks = week_cache()
        self.is_postgres = engine.dialect.name == "postgresql"
        # Reads need no explicit transaction: under READ COMMITTED each statement sees the
        # latest commits either way, and skipping BEGIN and ROLLBACK saves two round trips.
        self._autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
        self._probe = (
            create_async_engine(
                engine.url,
                poolclass=NullPool,
                connect_args={"timeout": CONNECT_TIMEOUT_SECONDS},
            )
            if self.is_postgres
            else engine
        )

    def unit_of_work(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(self.engine, self.is_postgres, self.weeks)

    def reader(self) -> SqlUnitOfWork:
        """A unit of work for use cases that only read; it cannot commit."""
        return SqlUnitOfWork(self._autocommit, self.is_postgres, self.weeks, read_only=True)

    def single_writer(self) -> SqlUnitOfWork:
        """For use cases that read, then make exactly one write (accepting a request).

        One statement is atomic by itself, so it runs without BEGIN and COMMIT: two round
        trips fewer on the busiest path. A second write raises rather than lose atomicity.
        """
        return SqlUnitOfWork(self._autocommit, self.is_postgres, self.weeks, single_write=True)

    async def ping(self) -> None:
        """One round trip on a connection of its own: a pool busy with requests is not a
        database that is down, so readiness must not wait for a pooled connection."""
        async with self._probe.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()
        await self._probe.dispose()
