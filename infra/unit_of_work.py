"""The SQL unit of work: one transaction, its repositories, and effects that wait for commit."""

from __future__ import annotations

import logging
from types import TracebackType
from typing import Self
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from domain.ports import AfterCommit
from infra.repositories import (
    SqlApiClientRepository,
    SqlBookingRepository,
    SqlBookingRequestRepository,
    SqlEventRepository,
    SqlOverrideRepository,
    SqlProviderRepository,
)

log = logging.getLogger(__name__)


def advisory_key(provider_id: UUID) -> int:
    """A provider's signed 64-bit key for PostgreSQL advisory locks."""
    return int.from_bytes(provider_id.bytes[:8], "big", signed=True)


class SqlUnitOfWork:
    providers: SqlProviderRepository
    overrides: SqlOverrideRepository
    bookings: SqlBookingRepository
    requests: SqlBookingRequestRepository
    clients: SqlApiClientRepository
    events: SqlEventRepository

    def __init__(self, sessions: async_sessionmaker[AsyncSession], is_postgres: bool) -> None:
        self._sessions = sessions
        self._is_postgres = is_postgres
        self._pending: list[AfterCommit] = []
        self._committed: list[AfterCommit] = []

    async def __aenter__(self) -> Self:
        self._session = session = self._sessions()
        self.providers = SqlProviderRepository(session)
        self.overrides = SqlOverrideRepository(session)
        self.bookings = SqlBookingRepository(session)
        self.requests = SqlBookingRequestRepository(session)
        self.clients = SqlApiClientRepository(session)
        self.events = SqlEventRepository(session)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._pending.clear()
        await self._session.close()  # rolls back whatever was not committed
        effects, self._committed = self._committed, []
        # Effects run after the connection is back in the pool. The commit already happened,
        # so a failing effect is logged, not raised: Redis is a wake-up, not the record.
        for effect in effects:
            try:
                await effect()
            except Exception:
                log.exception("after-commit effect failed")

    async def commit(self) -> None:
        await self._session.commit()
        self._committed.extend(self._pending)
        self._pending.clear()

    def after_commit(self, effect: AfterCommit) -> None:
        self._pending.append(effect)

    async def lock_provider(self, provider_id: UUID) -> None:
        if self._is_postgres:
            await self._session.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": advisory_key(provider_id)}
            )
        # On SQLite every transaction already began with BEGIN IMMEDIATE: the write lock.


class SqlDatabase:
    """The engine and the unit-of-work factory of one process."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.is_postgres = engine.dialect.name == "postgresql"
        self._sessions = async_sessionmaker(engine, expire_on_commit=False, autoflush=False)

    def unit_of_work(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(self._sessions, self.is_postgres)

    async def ping(self) -> None:
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()
