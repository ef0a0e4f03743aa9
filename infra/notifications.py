"""Redis keys and channels that tell other processes something changed (after commit)."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from redis.asyncio import Redis

REQUESTS_DONE_CHANNEL = "booking:requests:done"

# Raise a counter, never lower it: version bumps of one provider may arrive out of order.
_RAISE_TO = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local proposed = tonumber(ARGV[1])
if proposed > current then
  redis.call('SET', KEYS[1], ARGV[1])
  return proposed
end
return current
"""


def version_key(provider_id: UUID) -> str:
    return f"booking:availability:version:{provider_id}"


class RedisNotifier:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._raise_to = redis.register_script(_RAISE_TO)

    async def provider_changed(self, provider_id: UUID, version: int) -> None:
        await self._raise_to(keys=[version_key(provider_id)], args=[version])

    async def requests_completed(self, request_ids: Sequence[UUID]) -> None:
        if request_ids:
            await self._redis.publish(REQUESTS_DONE_CHANNEL, ",".join(map(str, request_ids)))
