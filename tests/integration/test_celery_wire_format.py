"""The wake-up we write by hand and the batch reader against Celery's and kombu's own encoder
and decoder, on kombu's real Redis transport (talking to the in-process Redis server that
`booking dev` uses): an upgrade of Celery or kombu that changes the format fails here."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import Iterator

import pytest
import redis
from celery import Celery
from celery.worker.request import Request
from kombu import Connection
from redis.asyncio import Redis

from domain.partitions import queue_for
from infra.queue import PROCESS_TASK, RedisWakeupQueue, read_wakeup, wakeup_message
from infra.settings import Settings
from tests.servers import embedded_redis
from workers.main import build_app

PARTITIONS = 8


@pytest.fixture
def redis_url() -> Iterator[str]:
    with embedded_redis() as url:
        yield url


@pytest.fixture
def app(redis_url: str) -> Celery:
    settings = Settings.from_env(
        {"REDIS_URL": redis_url, "BOOKING_PARTITIONS": str(PARTITIONS)}, dotenv=None
    )
    return build_app(settings)


def test_celery_reads_our_wake_up_as_the_process_task_with_its_ids(
    app: Celery, redis_url: str
) -> None:
    provider, request = uuid.uuid4(), uuid.uuid4()
    queue = queue_for(provider, PARTITIONS)
    redis.Redis.from_url(redis_url).lpush(queue, wakeup_message(provider, request, queue))
    with Connection(redis_url) as connection:
        message = connection.default_channel.basic_get(queue, no_ack=True)  # kombu's decoder
        assert message is not None
        task = Request(message, app=app)  # what the worker builds before running the task
    assert task.task_name == PROCESS_TASK == "bookings.process"
    assert task.args == [str(provider), str(request)]
    assert task.kwargs == {}
    assert task.eta is None
    assert task.expires is None
    assert task.delivery_info["routing_key"] == queue
    assert uuid.UUID(task.id)


def test_our_batch_reader_reads_what_celerys_producer_wrote(app: Celery, redis_url: str) -> None:
    provider, request = uuid.uuid4(), uuid.uuid4()
    queue = queue_for(provider, PARTITIONS)
    app.send_task(PROCESS_TASK, args=[str(provider), str(request)], queue=queue)

    async def take() -> list[tuple[uuid.UUID, uuid.UUID]]:
        client: Redis = Redis.from_url(redis_url)
        try:
            return await RedisWakeupQueue(client, PARTITIONS).take_waiting([queue], 10)
        finally:
            await client.aclose()

    assert asyncio.run(take()) == [(provider, request)]


def test_our_wake_up_has_the_shape_of_celerys_own_message(app: Celery, redis_url: str) -> None:
    provider, request = uuid.uuid4(), uuid.uuid4()
    queue = queue_for(provider, PARTITIONS)
    app.send_task(PROCESS_TASK, args=[str(provider), str(request)], queue=queue)
    client = redis.Redis.from_url(redis_url)
    theirs = json.loads(client.rpop(queue))  # type: ignore[arg-type]
    ours = json.loads(wakeup_message(provider, request, queue))
    assert set(ours) == set(theirs)
    assert set(ours["headers"]) <= set(theirs["headers"])
    assert set(ours["properties"]) == set(theirs["properties"])
    for key in ("content-type", "content-encoding"):
        assert ours[key] == theirs[key]
    for key in ("lang", "task", "eta", "expires", "retries", "timelimit"):
        assert ours["headers"][key] == theirs["headers"][key], key
    for key in ("delivery_mode", "delivery_info", "priority", "body_encoding"):
        assert ours["properties"][key] == theirs["properties"][key], key
    assert json.loads(base64.b64decode(ours["body"])) == json.loads(
        base64.b64decode(theirs["body"])
    )


def test_the_batch_reader_skips_what_is_not_a_wake_up() -> None:
    assert read_wakeup(b"not json") is None
    assert read_wakeup(json.dumps({"headers": {"task": "bookings.sweep"}}).encode()) is None
    broken = {"headers": {"task": PROCESS_TASK}, "body": "!"}
    assert read_wakeup(json.dumps(broken).encode()) is None
    provider, request = uuid.uuid4(), uuid.uuid4()
    assert read_wakeup(wakeup_message(provider, request, "bookings.0")) == (provider, request)
