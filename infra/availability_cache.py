"""The availability cache in Redis: answers under keys that carry the provider's version."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

from redis.asyncio import Redis

from infra.notifications import version_key

_PREFIX = "booking:availability:answer:"


class RedisAvailabilityCache:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def version(self, provider_id: UUID) -> int | None:
        raw = await self._redis.get(version_key(provider_id))
        return None if raw is None else int(raw)

    async def adopt_version(self, provider_id: UUID, version: int) -> None:
        await self._redis.set(version_key(provider_id), version, nx=True)

    async def get(self, key: str) -> bytes | None:
        value = await self._redis.get(_PREFIX + key)
        return value.encode() if isinstance(value, str) else value

    async def put(self, key: str, value: bytes, ttl: timedelta) -> None:
        await self._redis.set(_PREFIX + key, value, px=max(1, int(ttl.total_seconds() * 1000)))
