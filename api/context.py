"""What every handler of one API process shares: settings, the database, Redis."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from redis.asyncio import Redis

from domain.model import ApiClient
from domain.use_cases.booking_requests import Intake
from infra.availability_cache import RedisAvailabilityCache
from infra.notifications import CompletionListener, RedisNotifier
from infra.provider_catalog import CachedProviderCatalog
from infra.queue import RedisWakeupQueue
from infra.settings import Settings
from infra.unit_of_work import SqlDatabase, SqlUnitOfWork


@dataclass(slots=True)
class AppContext:
    settings: Settings
    database: SqlDatabase
    redis: Redis
    notifier: RedisNotifier
    queue: RedisWakeupQueue
    completions: CompletionListener
    availability_cache: RedisAvailabilityCache
    catalog: CachedProviderCatalog
    # Tests pin the clock; everything else reads the real one.
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    def uow(self) -> SqlUnitOfWork:
        return self.database.unit_of_work()

    def intake(self, client: ApiClient, idempotency_key: str | None) -> Intake:
        """What accepting a request needs: one write, the queue, the provider catalog, now."""
        return Intake(
            client=client,
            key=idempotency_key,
            uow=self.database.single_writer(),
            queue=self.queue,
            catalog=self.catalog,
            now=self.clock(),
        )

    def reader(self) -> SqlUnitOfWork:
        """For use cases that only read: no transaction to begin or roll back."""
        return self.database.reader()
