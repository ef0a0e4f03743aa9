"""What every handler of one API process shares: settings, the database, Redis."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from redis.asyncio import Redis

from infra.availability_cache import RedisAvailabilityCache
from infra.notifications import CompletionListener, RedisNotifier
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
    # Tests pin the clock; everything else reads the real one.
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    def uow(self) -> SqlUnitOfWork:
        return self.database.unit_of_work()
