"""Providers kept in the process, trusted while their version in Redis is unchanged.

The accept path checks every request against its provider's hours; reading them from
PostgreSQL each time would cost two round trips. Every commit that changes a provider raises
its version, in PostgreSQL and then in Redis (before the change is answered), so comparing
the version with one Redis GET is enough to know the kept copy is current.
"""

from __future__ import annotations

from datetime import date
from uuid import UUID

from domain.model import Provider
from domain.schedule import Interval, intervals_for
from infra.availability_cache import RedisAvailabilityCache
from infra.unit_of_work import SqlDatabase

_LIMIT = 10_000


class _Kept:
    __slots__ = ("days", "provider")

    def __init__(self, provider: Provider) -> None:
        self.provider = provider
        self.days: dict[date, tuple[Interval, ...]] = {}


class CachedProviderCatalog:
    def __init__(self, database: SqlDatabase, versions: RedisAvailabilityCache) -> None:
        self._database = database
        self._versions = versions
        self._kept: dict[UUID, _Kept] = {}

    async def provider(self, provider_id: UUID) -> Provider | None:
        version = await self._versions.version(provider_id)
        kept = self._kept.get(provider_id)
        if kept is not None and version is not None and kept.provider.version == version:
            return kept.provider
        async with self._database.reader() as uow:
            provider = await uow.providers.get(provider_id)
        if provider is None:
            return None
        if version is None:
            await self._versions.adopt_version(provider_id, provider.version)
        if len(self._kept) >= _LIMIT:
            self._kept.clear()
        self._kept[provider_id] = _Kept(provider)
        return provider

    async def intervals(self, provider: Provider, day: date) -> tuple[Interval, ...]:
        kept = self._kept.get(provider.id)
        if kept is None or kept.provider.version != provider.version:
            kept = self._kept[provider.id] = _Kept(provider)
        found = kept.days.get(day)
        if found is None:
            async with self._database.reader() as uow:
                overrides = await uow.overrides.between(provider.id, day, day)
            found = kept.days[day] = intervals_for(day, provider.weekly, overrides)
        return found
