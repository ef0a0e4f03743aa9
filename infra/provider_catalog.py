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

from redis.asyncio import Redis
from redis.exceptions import RedisError

from domain.model import Provider
from domain.schedule import Interval, intervals_for
from infra.notifications import settings_key
from infra.redis_trouble import OccasionalWarning
from infra.unit_of_work import SqlDatabase

log = logging.getLogger(__name__)

_LIMIT = 10_000


class _Kept:
    __slots__ = ("days", "provider")

    def __init__(self, provider: Provider) -> None:
        self.provider = provider  # its `version` is the settings counter it is good for
        self.days: dict[date, tuple[Interval, ...]] = {}


class CachedProviderCatalog:
    def __init__(self, database: SqlDatabase, redis: Redis) -> None:
        self._database = database
        self._redis = redis
        self._kept: dict[UUID, _Kept] = {}
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
        if kept is not None and settings is not None and kept.provider.version >= settings:
            return kept.provider
        async with self._database.reader() as uow:
            provider = await uow.providers.get(provider_id)
        if provider is None:
            return None
        if settings is None:
            try:  # after a flush or a restart: start the counter where the record is
                await self._redis.set(settings_key(provider_id), provider.version, nx=True)
            except RedisError as exc:
                self._unreachable(exc)
        if len(self._kept) >= _LIMIT:
            self._kept.clear()
        self._kept[provider_id] = _Kept(provider)
        return provider

    async def intervals(self, provider: Provider, day: date) -> tuple[Interval, ...]:
        kept = self._kept.get(provider.id)
        if kept is None or kept.provider is not provider:
            kept = self._kept[provider.id] = _Kept(provider)
        found = kept.days.get(day)
        if found is None:
            async with self._database.reader() as uow:
                overrides = await uow.overrides.between(provider.id, day, day)
            found = kept.days[day] = intervals_for(day, provider.weekly, overrides)
        return found
