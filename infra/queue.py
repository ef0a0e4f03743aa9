"""Celery's wire format, in one place: wake-ups written to and read from partition lists.

The API runs on asyncio and sends thousands of wake-ups a second. Celery's own producer is
blocking and routes through exchange bindings that a Redis flush deletes; a wake-up needs
neither. So the message is built here in Celery's task protocol (version 2, JSON, as the
kombu Redis transport stores it) and pushed with one LPUSH onto the list the worker reads.
The worker's batch reader (`take_waiting`) pops more of them straight off the lists and reads
them here too. tests/integration/test_celery_wire_format.py checks both directions against
Celery's and kombu's own encoder and decoder, so an upgrade that changes the format fails it.
"""

from __future__ import annotations

import base64
import json
import os
import random
import socket
import uuid
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from redis.asyncio import Redis

from domain.partitions import queue_for

PROCESS_TASK = "bookings.process"
WEBHOOKS_QUEUE = "webhooks"
WEBHOOKS_WAKE_TASK = "webhooks.wake"
_ORIGIN = f"{os.getpid()}@{socket.gethostname()}"


def task_message(task: str, args: list[Any], queue: str) -> bytes:
    """One Celery protocol-2 message, as kombu's Redis transport keeps it in a list."""
    task_id = str(uuid.uuid4())
    body = json.dumps(
        [args, {}, {"callbacks": None, "errbacks": None, "chain": None, "chord": None}]
    )
    return json.dumps(
        {
            "body": base64.b64encode(body.encode()).decode(),
            "content-encoding": "utf-8",
            "content-type": "application/json",
            "headers": {
                "lang": "py",
                "task": task,
                "id": task_id,
                "shadow": None,
                "eta": None,
                "expires": None,
                "group": None,
                "group_index": None,
                "retries": 0,
                "timelimit": [None, None],
                "root_id": task_id,
                "parent_id": None,
                "argsrepr": repr(args),
                "kwargsrepr": "{}",
                "origin": _ORIGIN,
                "ignore_result": True,
            },
            "properties": {
                "correlation_id": task_id,
                "reply_to": "",
                "delivery_mode": 2,
                "delivery_info": {"exchange": "", "routing_key": queue},
                "priority": 0,
                "body_encoding": "base64",
                "delivery_tag": str(uuid.uuid4()),
            },
        }
    ).encode()


def wakeup_message(provider_id: UUID, request_id: UUID, queue: str) -> bytes:
    """The message that makes the worker consuming `queue` decide the provider's requests."""
    return task_message(PROCESS_TASK, [str(provider_id), str(request_id)], queue)


def read_wakeup(message: bytes) -> tuple[UUID, UUID] | None:
    """`(provider, request)` of a wake-up as kombu's Redis transport keeps it; None otherwise."""
    try:
        envelope = json.loads(message)
        if envelope["headers"]["task"] != PROCESS_TASK:
            return None
        args = json.loads(base64.b64decode(envelope["body"]))[0]
        return UUID(args[0]), UUID(args[1])
    except (ValueError, KeyError, IndexError, TypeError):
        return None  # not one of our wake-ups; nothing depends on it


# Pop up to ARGV[1] messages from the oldest end of the lists KEYS, in one round trip.
_TAKE = """
local limit = tonumber(ARGV[1])
local taken = {}
for _, key in ipairs(KEYS) do
  if #taken >= limit then break end
  local items = redis.call('RPOP', key, limit - #taken)
  if items then
    for _, item in ipairs(items) do taken[#taken + 1] = item end
  end
end
return taken
"""


def _quiet_key(provider_id: UUID) -> str:
    return f"booking:rewoken:{provider_id}"


class RedisWakeupQueue:
    def __init__(self, redis: Redis, partitions: int) -> None:
        self._redis = redis
        self._partitions = partitions
        self._take = redis.register_script(_TAKE)

    async def wake(self, provider_id: UUID, request_id: UUID) -> None:
        queue = queue_for(provider_id, self._partitions)
        await self._redis.lpush(queue, wakeup_message(provider_id, request_id, queue))

    async def take_waiting(self, queues: Sequence[str], limit: int) -> list[tuple[UUID, UUID]]:
        """Up to `limit` wake-ups still queued on these partitions, taken off their queues.

        A woken worker decides them too, in the same batch. They are only hints: if the worker
        dies holding them, the scheduler wakes whatever is still pending.
        """
        if not queues:
            return []
        order = list(queues)
        random.shuffle(order)  # no partition is always drained first
        raw = await self._take(keys=order, args=[limit])
        return [woken for message in raw or [] if (woken := read_wakeup(message)) is not None]

    async def wake_if_quiet(self, provider_id: UUID, request_id: UUID, quiet_seconds: int) -> bool:
        """Wake the provider's worker unless this was done in the last `quiet_seconds`."""
        if await self._redis.set(_quiet_key(provider_id), b"1", nx=True, ex=quiet_seconds):
            await self.wake(provider_id, request_id)
            return True
        return False
