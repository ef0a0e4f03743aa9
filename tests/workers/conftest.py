"""A running pipeline: `booking api`, `booking worker` and `booking scheduler` processes on a
PostgreSQL database of the test run's own and a Redis of its own (a `redis-server` it starts
when the binary is on PATH; see tests/conftest.py own_redis)."""

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
from domain.ownership import assignment
from domain.partitions import queue_for
from infra.membership import Membership, WorkerRecord
from infra.queue import PROCESS_TASK, task_message
from tests.conftest import (
    OwnRedis,
    create_postgres_database,
    drop_postgres_database,
    issue_key,
    own_redis,
    postgres_server_url,
)
from tests.servers import Process, free_port, start_booking, wait_until_ready

PARTITIONS = 16
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
    own_redis: OwnRedis
    workers: list[Process] = field(default_factory=list)
    scheduler: Process | None = None
    started: int = 0  # workers started so far, to name their logs and heartbeat files
    heartbeats: dict[int, Path] = field(default_factory=dict)  # worker pid -> its HEARTBEAT_FILE
    signing_secret: str | None = None  # the client key's, which signs its callbacks

    # -- processes -------------------------------------------------------------------
    def start_worker(self, *args: str, wait: bool = True) -> Process:
        """`booking worker [args]`; with `wait`, until every partition has one live owner."""
        self.started += 1
        heartbeat = self.log_dir / f"heartbeat-worker-{self.started}"
        env = {**self.env, "HEARTBEAT_FILE": str(heartbeat)}
        worker = start_booking(["worker", *args], env, self.log_dir / f"worker-{self.started}.log")
        self.heartbeats[worker.pid] = heartbeat
        self.workers.append(worker)
        if wait:
            self.wait_settled(worker)
        return worker

    def heartbeat_file(self, worker: Process) -> Path:
        return self.heartbeats[worker.pid]

    def live_workers(self) -> list[Process]:
        return [w for w in self.workers if w.popen.poll() is None]

    def members(self) -> list[WorkerRecord]:
        """The membership as the workers published it (what each consumes now)."""
        return Membership(self.redis(), lease_seconds=1).live()

    def unsettled(self) -> str | None:
        """Why the live workers do not yet each consume exactly their rendezvous share (so
        every partition exactly one live consumer), or None once they do."""
        live = {w.pid for w in self.live_workers()}
        records = [m for m in self.members() if m.pid in live]
        missing = live - {m.pid for m in records}
        if missing:
            return f"workers {sorted(missing)} not in the membership yet"
        sharing = [m for m in records if not m.pinned]
        target = assignment(PARTITIONS, [m.name for m in sharing])
        wrong = {
            m.name: f"has {list(m.partitions)}, share {target[m.name]}"
            for m in sharing
            if list(m.partitions) != target[m.name]
        }
        return f"not yet consuming their share: {wrong}" if wrong else None

    def wait_settled(self, worker: Process | None = None, timeout: float = 30) -> float:
        """Seconds until every partition is consumed by exactly one live worker."""
        started = time.monotonic()
        while (problem := self.unsettled()) is not None:
            if worker is not None and worker.popen.poll() is not None:
                raise RuntimeError(f"worker exited:\n{worker.tail()}")
            if time.monotonic() - started > timeout:
                raise AssertionError(f"not settled after {timeout}s: {problem}")
            time.sleep(0.05)
        return time.monotonic() - started

    def stop_workers(self) -> None:
        for worker in self.workers:
            worker.stop()
        self.workers.clear()

    def start_scheduler(self, **env: str) -> Process:
        self.scheduler = start_booking(
            ["scheduler"], {**self.env, **env}, self.log_dir / "scheduler.log"
        )
        # Beat takes a while to start on a loaded machine; tests time what it does, not that.
        self.scheduler.wait_for_log("beat: Starting", timeout=120)
        return self.scheduler

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
    """The API on a database and a Redis of its own, keys issued; workers are started by the
    tests."""
    server = postgres_server_url()
    log_dir = tmp_path_factory.mktemp("pipeline")
    with own_redis(log_dir / "redis") as private:
        yield from _pipeline(server, private, log_dir, extra_env)


def _pipeline(
    server: str, private: OwnRedis, log_dir: Path, extra_env: dict[str, str]
) -> Iterator[Pipeline]:
    redis_url = private.url
    database = create_postgres_database(server)
    env = {
        "DATABASE_URL": database.url,
        "REDIS_URL": redis_url,
        "BOOKING_PARTITIONS": str(PARTITIONS),
        "PENDING_AFTER_SECONDS": "2",
        "SWEEP_INTERVAL_SECONDS": "1",
        "LOG_LEVEL": "INFO",
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
        f"http://127.0.0.1:{port}",
        admin,
        client,
        other,
        env,
        database.url,
        redis_url,
        log_dir,
        private,
    )
    pipe.signing_secret = issued[1].signing_secret
    try:
        wait_until_ready(pipe.base_url, api, timeout=120)  # a loaded machine starts slowly
        yield pipe
    finally:
        pipe.stop_workers()
        pipe.stop_scheduler()
        api.stop()
        drop_postgres_database(database)


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
