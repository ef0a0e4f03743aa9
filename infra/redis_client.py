"""The Redis client of a process."""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis

# Enough for a busy API process; past it a caller waits for a free connection rather than
# failing (redis-py's default pool raises at its limit, and a lost wake-up then waits for the
# scheduler's sweep).
MAX_CONNECTIONS = 200
WAIT_FOR_CONNECTION_SECONDS = 5.0


def redis_client(url: str) -> Redis:
    pool = BlockingConnectionPool.from_url(
        url, max_connections=MAX_CONNECTIONS, timeout=WAIT_FOR_CONNECTION_SECONDS
    )
    return Redis(connection_pool=pool)
