"""The availability cache in Redis: answers under keys that carry the provider's version.

Redis is a cache here, not the record: when it is unreachable every method behaves as a miss
(or does nothing), and answers are computed from PostgreSQL.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from uuid import UUID

from redis.asyncio import Redis
from redis.exceptions import RedisError

from infra.notifications import version_key
from infra.redis_trouble import OccasionalWarning

log = logging.getLogger(__name__)

_PREFIX = "booking:availability:answer:"

# The version and the answer filed under it, in one round trip: {version, answer?} or {}.
_LOOKUP = """
local version = redis.call('GET', KEYS[1])
if not version then return {} end
local answer = redis.call('GET', ARGV[1] .. version .. ARGV[2])
if not answer then return {version} end
return {version, answer}
"""


class RedisAvailabilityCache:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._lookup = redis.register_script(_LOOKUP)
        self._unreachable = OccasionalWarning(
            log, "availability cache unavailable, answering from the database"
        )

    async def adopt_version(self, provider_id: UUID, version: int) -> None:
        try:
            await self._redis.set(version_key(provider_id), version, nx=True)
        except RedisError as exc:
            self._unreachable(exc)

    async def lookup(self, provider_id: UUID, question: str) -> tuple[int | None, bytes | None]:
        try:
            found = await self._lookup(
                keys=[version_key(provider_id)], args=[f"{_PREFIX}{provider_id}:", f":{question}"]
            )
        except RedisError as exc:
            self._unreachable(exc)
            return None, None
        if not found:
            return None, None
        version = int(found[0])
        value = found[1] if len(found) > 1 else None
        return version, (value.encode() if isinstance(value, str) else value)

    async def put(
        self, provider_id: UUID, version: int, question: str, value: bytes, ttl: timedelta
    ) -> None:
        key = f"{_PREFIX}{provider_id}:{version}:{question}"
        try:
            await self._redis.set(key, value, px=max(1, int(ttl.total_seconds() * 1000)))
        except RedisError as exc:
            self._unreachable(exc)
