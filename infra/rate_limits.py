"""Requests per minute per API key, counted in Redis so every API process shares one budget.

The counting is the `limits` package's fixed window (one atomic INCR-and-EXPIRE script, the
window starting at a key's first request), on its redis-py storage.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

from cachetools import TTLCache
from limits import RateLimitItemPerMinute
from limits.aio.storage import RedisStorage
from redis.exceptions import RedisError

from infra.metrics import RATE_LIMITED
from infra.redis_trouble import OccasionalWarning

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int  # until the window ends and the budget is whole again


class RedisRateLimiter:
    def __init__(self, redis_url: str, per_minute: int) -> None:
        self._storage = RedisStorage(
            f"async+{redis_url}",
            implementation="redispy",
            key_prefix="booking:ratelimit",
            socket_connect_timeout=1,
            socket_timeout=1,
        )
        self._item = RateLimitItemPerMinute(per_minute)
        self._unreachable = OccasionalWarning(log, "rate limits not enforced, Redis unavailable")
        # When each key's current window ends, as this process learnt it: from its own first
        # request of the window, else from one TTL read. Saves a round trip per request.
        window = self._item.get_expiry()
        self._window_ends: TTLCache[str, float] = TTLCache(maxsize=100_000, ttl=window)

    def __deepcopy__(self, memo: dict[int, object]) -> RedisRateLimiter:
        return self  # one per process: Litestar copies middleware options when it builds routes

    async def hit(self, identity: str) -> Verdict | None:
        """Count one request of `identity`; None (no limit) while Redis cannot be reached."""
        key = self._item.key_for(identity)
        window = self._item.get_expiry()
        try:
            count = await self._storage.incr(key, window)
            now = time.time()
            if count == 1:  # this request opened the window
                ends = self._window_ends[key] = now + window
            else:
                known = self._window_ends.get(key)
                if known is None or known <= now:
                    known = self._window_ends[key] = await self._storage.get_expiry(key)
                ends = known
        except (RedisError, OSError) as exc:
            self._unreachable(exc)
            return None
        reset = math.ceil(ends - now)
        limit = self._item.amount
        if count > limit:
            RATE_LIMITED.inc()
        return Verdict(
            allowed=count <= limit,
            limit=limit,
            remaining=max(0, limit - count),
            reset_seconds=min(window, max(1, reset)),
        )
