"""The Redis stream internal consumers read events from: bounded, at least once per event."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import msgspec
from redis.asyncio import Redis
from redis.exceptions import RedisError

from domain.ports import OutboxEvent
from domain.webhooks import envelope
from infra.redis_trouble import OccasionalWarning

log = logging.getLogger(__name__)

EVENTS_STREAM = "booking:events"


class RedisEventStream:
    """XADD with approximate trimming to `maxlen` entries. Best effort: the record and the
    webhook deliveries are PostgreSQL's; a stream reader that misses entries while Redis is
    away reads them from the API (or a replay)."""

    def __init__(self, redis: Redis, maxlen: int) -> None:
        self._redis = redis
        self._maxlen = maxlen
        self._unreachable = OccasionalWarning(log, "cannot append to the event stream")

    async def append(self, events: Sequence[OutboxEvent]) -> None:
        if not events:
            return
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for event in events:
                    body = envelope(
                        event.id, event.type, event.created_at, event.sequence, event.data
                    )
                    pipe.xadd(
                        EVENTS_STREAM,
                        {"id": event.id, "type": event.type, "event": msgspec.json.encode(body)},
                        maxlen=self._maxlen,
                        approximate=True,
                    )
                await pipe.execute()
        except RedisError as exc:
            self._unreachable(exc)
