"""What one API process holds for its life: settings, the clock, and its clients."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from redis.asyncio import Redis

from api.auth import KnownKeys, known_clients
from api.fairness import ConcurrencyCaps
from infra.availability_cache import CachedAvailability, RedisDayStore, RedisVersions
from infra.compute_pool import ComputePool
from infra.database import make_engine
from infra.dns import HostResolver
from infra.notifications import CompletionListener, RedisNotifier
from infra.provider_catalog import CachedProviderCatalog, kept_days, kept_providers
from infra.queue import RedisWakeupQueue
from infra.redis_client import redis_client
from infra.settings import Settings
from infra.unit_of_work import SqlDatabase, SqlUnitOfWork
from infra.url_policy import resolved_hosts


def utc_now() -> datetime:
    return datetime.now(UTC)


class ApiRuntime:
    """Made by create_app(); its clients exist between the app's startup and shutdown."""

    database: SqlDatabase
    redis: Redis
    notifier: RedisNotifier
    queue: RedisWakeupQueue
    completions: CompletionListener
    cache_redis: Redis
    availability: CachedAvailability
    catalog: CachedProviderCatalog

    def __init__(
        self,
        settings: Settings,
        redis: Redis | None = None,
        clock: Callable[[], datetime] = utc_now,  # tests pin it
    ) -> None:
        self.settings = settings
        self.clock = clock
        self._given_redis = redis
        # The process's in-process caches, all bounded and expiring (cachetools.TTLCache).
        self.keys = KnownKeys(self.reader, known_clients(settings.api_key_cache_seconds))
        self.resolved_hosts = resolved_hosts()
        self._kept_providers = kept_providers()
        self._kept_days = kept_days()
        # Webhook and callback hosts: WEBHOOK_DNS_SERVERS when set, as the workers resolve them.
        self.host_resolver = HostResolver(
            settings.webhook_dns_servers, settings.webhook_dns_cache_seconds
        )
        # Computing and rendering big availability answers, away from the event loop, with
        # caps per key and per process on how much of it (and of long-polls) runs at once.
        self.pool = ComputePool(settings.availability_processes)
        self.computations = ConcurrencyCaps(
            "availability computations",
            settings.availability_computations_per_key,
            settings.availability_computations_per_process,
        )
        self.long_polls = ConcurrencyCaps(
            "long-polls", settings.long_polls_per_key, settings.long_polls_per_process
        )

    async def start(self) -> None:
        settings = self.settings
        self.database = SqlDatabase(make_engine(settings.database_url, settings.database_pool_size))
        self.redis = self._given_redis or redis_client(settings.redis_url)
        self.notifier = RedisNotifier(self.redis)
        self.queue = RedisWakeupQueue(self.redis, settings.booking_partitions)
        self.completions = CompletionListener(self.redis)
        self.catalog = CachedProviderCatalog(
            self.database, self.redis, self._kept_providers, self._kept_days
        )
        # The cache may live in a Redis of its own, one allowed to evict (CACHE_REDIS_URL);
        # the version counters stay in the broker's Redis, which never evicts.
        self._own_cache_redis = (
            self._given_redis is None and settings.cache_redis_url != settings.redis_url
        )
        self.cache_redis = (
            redis_client(settings.cache_redis_url) if self._own_cache_redis else self.redis
        )
        self.availability = CachedAvailability(
            self.catalog,
            self.database,
            RedisVersions(self.redis),
            RedisDayStore(self.cache_redis),
            self.pool,
        )
        await self.completions.start()

    async def stop(self) -> None:
        await self.completions.stop()
        self.pool.close()
        if self._own_cache_redis:
            await self.cache_redis.aclose()
        if self._given_redis is None:
            await self.redis.aclose()
        await self.database.dispose()

    def reader(self) -> SqlUnitOfWork:
        """For use cases that only read: no transaction to begin or roll back."""
        return self.database.reader()
