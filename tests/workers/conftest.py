"""A running pipeline: `booking api`, `booking worker` and `booking scheduler` processes on a
PostgreSQL database of the test run's own and a real Redis."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import redis
from sqlalchemy.engine import make_url

from domain.model import Role
from domain.partitions import queue_for
from infra.queue import PROCESS_TASK, task_message
from tests.conftest import (
    create_postgres_database,
    drop_postgres_database,
    issue_key,
    postgres_server_url,
    redis_server_url,
)
from tests.servers import Process, free_port, start_booking, wait_until_ready

PARTITIONS = 8
REDIS_DB = 9  # the pipeline tests' own Redis database; flushed before they start
OPEN_ALL_DAY = {
    day: [{"start": "00:00", "end": "24:00"}]
    for day in ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
}


def slot(days: int, hour: int, minute: int = 0) -> str:
    """A start `days` from today at hh:mm UTC, always on the 30-minute grid."""
    day = datetime.now(UTC).date() + timedelta(days=days)
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC).isoformat()


@dataclass
class Pipeline:
    base_url: str
    admin: dict[str, str]
    client: dict[str, str]
    other_client: dict[str, str]
    env: dict[str, str]
    database_url: str
    redis_url: str
    log_dir: Path
    workers: list[Process] = field(default_factory=list)
    scheduler: Process | None = None
    signing_secret: str | None = None  # the client key's, which signs its callbacks

    # -- processes -------------------------------------------------------------------
    def start_worker(self, *args: str) -> Process:
        """`booking worker <args>`, once it consumes."""
        index = len(self.workers)
        worker = start_booking(["worker", *args], self.env, self.log_dir / f"worker-{index}.log")
        self.workers.append(worker)
        worker.wait_for_log(" ready.", timeout=30)  # it consumes
        return worker

    def stop_workers(self) -> None:
        for worker in self.workers:
            worker.stop()
        self.workers.clear()

    def start_scheduler(self) -> None:
        self.scheduler = start_booking(["scheduler"], self.env, self.log_dir / "scheduler.log")

    def stop_scheduler(self) -> None:
        if self.scheduler is not None:
            self.scheduler.stop()
            self.scheduler = None

    # -- the record and the broker ------------------------------------------------------
    def sql(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        url = make_url(self.database_url).set(drivername="postgresql")
        with psycopg.connect(url.render_as_string(hide_password=False)) as connection:
            return connection.execute(query, params).fetchall()  # type: ignore[arg-type]

    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.redis_url)

    def queued(self, provider_id: str) -> int:
        return int(self.redis().llen(queue_for(uuid.UUID(provider_id), PARTITIONS)))

    def push_wakeup(self, provider_id: str, request_id: str) -> None:
        queue = queue_for(uuid.UUID(provider_id), PARTITIONS)
        self.redis().lpush(queue, task_message(PROCESS_TASK, [provider_id, request_id], queue))

    def drop_queued(self, provider_id: str) -> None:
        self.redis().delete(queue_for(uuid.UUID(provider_id), PARTITIONS))

    def overlapping_confirmed(self) -> int:
        rows = self.sql(
            "SELECT count(*) FROM bookings a JOIN bookings b ON a.provider_id = b.provider_id"
            " AND a.id < b.id WHERE a.status = 'confirmed' AND b.status = 'confirmed'"
            " AND a.blocked_from < b.blocked_until AND b.blocked_from < a.blocked_until"
        )
        return int(rows[0][0])

    def pending(self, request_ids: list[str]) -> int:
        rows = self.sql(
            "SELECT count(*) FROM booking_requests WHERE status = 'pending' AND id = ANY(%s)",
            [uuid.UUID(i) for i in request_ids],
        )
        return int(rows[0][0])

    def wait_all_terminal(self, request_ids: list[str], timeout: float) -> float:
        """Seconds until none of the requests is pending; fails after `timeout`."""
        started = time.monotonic()
        while self.pending(request_ids):
            if time.monotonic() - started > timeout:
                raise AssertionError(
                    f"{self.pending(request_ids)} of {len(request_ids)} requests still pending "
                    f"after {timeout}s"
                )
            time.sleep(0.1)
        return time.monotonic() - started

    # -- the API --------------------------------------------------------------------------
    def http(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.base_url,
            timeout=60,
            limits=httpx.Limits(max_connections=250, max_keepalive_connections=250),
        )

    async def create_provider(self, http: httpx.AsyncClient, **fields: Any) -> str:
        body = {"timezone": "UTC", "weekly_schedule": OPEN_ALL_DAY, **fields}
        response = await http.post("/v1/providers", json=body, headers=self.admin)
        assert response.status_code == 201, response.text
        provider_id: str = response.json()["id"]
        return provider_id

    async def book(
        self, http: httpx.AsyncClient, provider_id: str, start: str, **extra: Any
    ) -> httpx.Response:
        headers = {**self.client, **extra.pop("headers", {})}
        body = {"provider_id": provider_id, "start": start, **extra}
        return await http.post("/v1/bookings", json=body, headers=headers)

    async def outcome(self, http: httpx.AsyncClient, request_id: str) -> dict[str, Any]:
        response = await http.get(f"/v1/booking-requests/{request_id}?wait=20", headers=self.client)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def outcomes(
        self, http: httpx.AsyncClient, request_ids: list[str]
    ) -> list[dict[str, Any]]:
        return list(await asyncio.gather(*(self.outcome(http, i) for i in request_ids)))


@contextmanager
def running_pipeline(
    tmp_path_factory: pytest.TempPathFactory, **extra_env: str
) -> Iterator[Pipeline]:
    """The API on a database of its own, keys issued; workers are started by the tests."""
    server = postgres_server_url()
    redis_url = str(make_url(redis_server_url()).set(database=str(REDIS_DB)))
    redis.Redis.from_url(redis_url).flushdb()
    database = create_postgres_database(server)
    log_dir = tmp_path_factory.mktemp("pipeline")
    env = {
        "DATABASE_URL": database.url,
        "REDIS_URL": redis_url,
        "BOOKING_PARTITIONS": str(PARTITIONS),
        "PENDING_AFTER_SECONDS": "2",
        "SWEEP_INTERVAL_SECONDS": "1",
        "LOG_LEVEL": "INFO",  # the worker's "ready." line says it consumes
        **extra_env,
    }
    port = free_port()
    api = start_booking(["api", "--port", str(port)], env, log_dir / "api.log")
    issued = [
        issue_key(database.url, Role.ADMIN, "pipeline admin"),
        issue_key(database.url, Role.CLIENT, "pipeline client"),
        issue_key(database.url, Role.CLIENT, "pipeline other"),
    ]
    admin, client, other = ({"Authorization": f"Bearer {i.key}"} for i in issued)
    pipe = Pipeline(
        f"http://127.0.0.1:{port}", admin, client, other, env, database.url, redis_url, log_dir
    )
    pipe.signing_secret = issued[1].signing_secret
    try:
        wait_until_ready(pipe.base_url, api)
        yield pipe
    finally:
        pipe.stop_workers()
        pipe.stop_scheduler()
        api.stop()
        drop_postgres_database(database)
        redis.Redis.from_url(redis_url).flushdb()


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    with running_pipeline(tmp_path_factory) as pipe:
        yield pipe


@pytest.fixture
def stopped(pipeline: Pipeline) -> Iterator[Pipeline]:
    """The pipeline with no worker and no scheduler: accepted requests stay pending."""
    pipeline.stop_workers()
    pipeline.stop_scheduler()
    yield pipeline
    pipeline.stop_workers()
    pipeline.stop_scheduler()


@pytest.fixture
def running(pipeline: Pipeline) -> Iterator[Pipeline]:
    """Two workers and the scheduler."""
    pipeline.start_scheduler()
    pipeline.start_worker()
    pipeline.start_worker()
    yield pipeline
    pipeline.stop_workers()
    pipeline.stop_scheduler()


@pytest.fixture
async def http(pipeline: Pipeline) -> AsyncIterator[httpx.AsyncClient]:
    async with pipeline.http() as client:
        yield client


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
