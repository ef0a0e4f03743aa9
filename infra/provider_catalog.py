"""Providers kept in the process, trusted while their settings counter in Redis is unchanged.

The accept path checks every request against its provider's hours; reading them from
PostgreSQL each time would cost two round trips. Every commit that changes a provider's
settings or hours raises its settings counter in Redis (before the change is answered);
bookings do not, so a busy provider's kept copy stays good. One Redis GET tells whether the
kept copy is current.
"""

from __future__ import annotations

import logging
from datetime import date
from uuid import UUID

from cachetools import TTLCache
from redis.asyncio import Redis
from redis.exceptions import RedisError

from domain.model import Provider
from domain.schedule import Interval, intervals_for
from infra.notifications import settings_key
from infra.redis_trouble import OccasionalWarning
from infra.unit_of_work import SqlDatabase

log = logging.getLogger(__name__)

# Entries stay correct while their version is current (a kept provider is checked against its
# counter on every use; days are filed under the provider's version): the bounds only keep
# memory flat however many providers and dates are asked about.
KeptProviders = TTLCache[UUID, Provider]
KeptDays = TTLCache[tuple[UUID, int, date], tuple[Interval, ...]]


def kept_providers() -> KeptProviders:
    return TTLCache(maxsize=10_000, ttl=3600)


def kept_days() -> KeptDays:
    # About 250 bytes an entry with the cache's own; 10,000 (a few days each of the busiest
    # providers) fill up within the first 20,000 requests of a spread-out load, so the API's
    # RSS is flat from there on (benchmarks/api_memory.py; 50,000 grew it 13% more by 200,000).
    return TTLCache(maxsize=10_000, ttl=3600)


class CachedProviderCatalog:
    def __init__(
        self,
        database: SqlDatabase,
        redis: Redis,
        providers: KeptProviders,
        days: KeptDays,
    ) -> None:
        self._database = database
        self._redis = redis
        self._kept = providers  # each kept provider's `version` is the counter it is good for
        self._days = days
        self._unreachable = OccasionalWarning(log, "provider catalog reads PostgreSQL")

    async def _settings(self, provider_id: UUID) -> int | None:
        try:
            raw = await self._redis.get(settings_key(provider_id))
        except RedisError as exc:
            self._unreachable(exc)
            return None
        return None if raw is None else int(raw)

    async def provider(self, provider_id: UUID) -> Provider | None:
        settings = await self._settings(provider_id)
        kept = self._kept.get(provider_id)
        if kept is not None and settings is not None and kept.version >= settings:
            return kept
        async with self._database.reader() as uow:
            provider = await uow.providers.get(provider_id)
        if provider is None:
            return None
        if settings is None:
            try:  # after a flush or a restart: start the counter where the record is
                await self._redis.set(settings_key(provider_id), provider.version, nx=True)
            except RedisError as exc:
                self._unreachable(exc)
        self._kept[provider_id] = provider
        return provider

    async def intervals(self, provider: Provider, day: date) -> tuple[Interval, ...]:
        # Overrides raise the provider's version, so a version's days never change.
        key = (provider.id, provider.version, day)
        found = self._days.get(key)
        if found is None:
            async with self._database.reader() as uow:
                overrides = await uow.overrides.between(provider.id, day, day)
            found = self._days[key] = intervals_for(day, provider.weekly, overrides)
        return found
