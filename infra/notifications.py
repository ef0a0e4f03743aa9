"""Redis keys and channels that tell other processes something changed (after commit)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from uuid import UUID

from redis.asyncio import Redis
from redis.exceptions import RedisError

from infra.queue import WEBHOOKS_QUEUE, WEBHOOKS_WAKE_TASK, task_message
from infra.redis_trouble import OccasionalWarning

log = logging.getLogger(__name__)

REQUESTS_DONE_CHANNEL = "booking:requests:done"

# Raise counters, never lower them: version bumps of one provider may arrive out of order.
_RAISE_TO = """
local proposed = tonumber(ARGV[1])
for _, key in ipairs(KEYS) do
  local current = tonumber(redis.call('GET', key) or '0')
  if proposed > current then redis.call('SET', key, ARGV[1]) end
end
return proposed
"""


def version_key(provider_id: UUID) -> str:
    """Moves with every change to what the provider offers: bookings, hours, settings."""
    return f"booking:availability:version:{provider_id}"


def settings_key(provider_id: UUID) -> str:
    """Moves only when the provider's settings or hours change (not with bookings)."""
    return f"booking:provider:settings:{provider_id}"


# Wake a webhook worker unless wake-ups are already waiting: one is enough, since a woken
# worker publishes everything unpublished; this keeps the queue short under load.
_WAKE_WEBHOOKS = """
if redis.call('LLEN', KEYS[1]) < 2 then
  redis.call('LPUSH', KEYS[1], ARGV[1])
  return 1
end
return 0
"""


class RedisNotifier:
    """Best effort: with Redis unreachable there is no cache to correct and nobody listening;
    the sweep and PostgreSQL carry on, so failures are logged (now and then), not raised."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._raise_to = redis.register_script(_RAISE_TO)
        self._wake_webhooks = redis.register_script(_WAKE_WEBHOOKS)
        self._unreachable = OccasionalWarning(log, "cannot notify through Redis")

    async def availability_changed(self, provider_id: UUID, version: int) -> None:
        await self._raise([version_key(provider_id)], version)

    async def provider_changed(self, provider_id: UUID, version: int) -> None:
        await self._raise([version_key(provider_id), settings_key(provider_id)], version)

    async def _raise(self, keys: list[str], version: int) -> None:
        try:
            await self._raise_to(keys=keys, args=[version])
        except RedisError as exc:
            self._unreachable(exc)

    async def events_recorded(self) -> None:
        message = task_message(WEBHOOKS_WAKE_TASK, [], WEBHOOKS_QUEUE)
        try:
            await self._wake_webhooks(keys=[WEBHOOKS_QUEUE], args=[message])
        except RedisError as exc:
            self._unreachable(exc)

    async def requests_completed(self, request_ids: Sequence[UUID]) -> None:
        if not request_ids:
            return
        try:
            await self._redis.publish(REQUESTS_DONE_CHANNEL, ",".join(map(str, request_ids)))
        except RedisError as exc:
            self._unreachable(exc)


LISTENER_STOP_SECONDS = 5.0


class CompletionListener:
    """One subscription per process to the completion channel, waking local waiters by id.

    Long-polls register before they read the request's status, so a completion published
    between that read and the wait is not missed.
    """

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._waiters: dict[str, set[asyncio.Event]] = {}
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="completion-listener")

    async def stop(self) -> None:
        if self._task is None:
            return
        self._task.cancel()
        # A Redis client that never finishes closing must not hold up the API's shutdown
        # (seen once in the test suite: a TestClient's exit waiting for good).
        done, _ = await asyncio.wait({self._task}, timeout=LISTENER_STOP_SECONDS)
        if not done:
            log.warning("completion listener still closing after %s s", LISTENER_STOP_SECONDS)

    @contextlib.asynccontextmanager
    async def waiting(self, request_id: UUID) -> AsyncIterator[asyncio.Event]:
        key = str(request_id)
        event = asyncio.Event()
        self._waiters.setdefault(key, set()).add(event)
        try:
            yield event
        finally:
            waiters = self._waiters.get(key)
            if waiters is not None:
                waiters.discard(event)
                if not waiters:
                    del self._waiters[key]

    def _wake(self, keys: list[str]) -> None:
        for key in keys:
            for event in self._waiters.get(key, ()):
                event.set()

    def _wake_everyone(self) -> None:
        for waiters in self._waiters.values():
            for event in waiters:
                event.set()

    async def _listen(self) -> None:
        while True:
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(REQUESTS_DONE_CHANNEL)
                # Whatever completed while we were not subscribed: let waiters look again.
                self._wake_everyone()
                while True:
                    message = await pubsub.get_message(timeout=30.0)
                    if message is not None and message["type"] == "message":
                        data = message["data"]
                        text = data.decode() if isinstance(data, bytes) else str(data)
                        self._wake(text.split(","))
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("completion listener lost Redis; resubscribing", exc_info=True)
                self._wake_everyone()
                await asyncio.sleep(0.5)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
