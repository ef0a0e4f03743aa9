"""What a worker process needs to run the async use cases: one event loop and its clients.

Celery calls tasks synchronously; each worker process keeps one asyncio loop (and the
database pool and Redis client bound to it) for its whole life, created after the fork.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from redis.asyncio import Redis

from domain.partitions import is_partition_queue
from infra.database import make_engine
from infra.notifications import RedisNotifier
from infra.queue import RedisWakeupQueue
from infra.redis_client import redis_client
from infra.settings import Settings
from infra.unit_of_work import SqlDatabase

T = TypeVar("T")


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Runtime:
    settings: Settings
    runner: asyncio.Runner
    database: SqlDatabase
    redis: Redis
    notifier: RedisNotifier
    queue: RedisWakeupQueue

    @property
    def booking_queues(self) -> list[str]:
        """The partition queues this worker consumes now (ownership changes them)."""
        return list(_booking_queues)

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self.runner.run(coroutine)

    def close(self) -> None:
        async def close_clients() -> None:
            await self.redis.aclose()
            await self.database.dispose()

        self.runner.run(close_clients())
        self.runner.close()


_runtime: Runtime | None = None
_booking_queues: list[str] = []


def consume(queues: list[str]) -> None:
    """Tell this process's runtime which partition queues its worker reads."""
    _booking_queues[:] = [q for q in queues if is_partition_queue(q)]


def runtime(settings: Settings) -> Runtime:
    """This process's runtime, made on first use (after Celery has forked, if it does)."""
    global _runtime  # noqa: PLW0603 - one per process by design
    if _runtime is None:
        runner = asyncio.Runner()
        redis = redis_client(settings.redis_url)
        _runtime = Runtime(
            settings=settings,
            runner=runner,
            database=SqlDatabase(make_engine(settings.database_url, 2)),
            redis=redis,
            notifier=RedisNotifier(redis),
            queue=RedisWakeupQueue(redis, settings.booking_partitions),
        )
    return _runtime


def close_runtime() -> None:
    global _runtime  # noqa: PLW0603
    if _runtime is not None:
        _runtime.close()
        _runtime = None
