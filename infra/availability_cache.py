"""The availability cache in Redis: answers under keys that carry the provider's version.

Redis is a cache here, not the record: when it is unreachable every method behaves as a miss
(or does nothing), and answers are computed from PostgreSQL.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from uuid import UUID

from redis.asyncio import Redis
from redis.exceptions import RedisError

from infra.notifications import version_key

log = logging.getLogger(__name__)

_PREFIX = "booking:availability:answer:"
_WARN_EVERY_SECONDS = 10.0


class RedisAvailabilityCache:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._warned_at = 0.0

    def _unreachable(self, exc: RedisError) -> None:
        now = time.monotonic()
        if now - self._warned_at > _WARN_EVERY_SECONDS:
            self._warned_at = now
            log.warning("availability cache unavailable, answering from the database: %r", exc)

    async def version(self, provider_id: UUID) -> int | None:
        try:
            raw = await self._redis.get(version_key(provider_id))
        except RedisError as exc:
            self._unreachable(exc)
            return None
        return None if raw is None else int(raw)

    async def adopt_version(self, provider_id: UUID, version: int) -> None:
        try:
            await self._redis.set(version_key(provider_id), version, nx=True)
        except RedisError as exc:
            self._unreachable(exc)

    async def get(self, key: str) -> bytes | None:
        try:
            value = await self._redis.get(_PREFIX + key)
        except RedisError as exc:
            self._unreachable(exc)
            return None
        return value.encode() if isinstance(value, str) else value

    async def put(self, key: str, value: bytes, ttl: timedelta) -> None:
        try:
            await self._redis.set(_PREFIX + key, value, px=max(1, int(ttl.total_seconds() * 1000)))
        except RedisError as exc:
            self._unreachable(exc)
