"""PostgreSQL cutting the service's connections (as a failover or a restart does) while bookings
arrive and workers are killed: clients see 202 or 503 with Retry-After, never a 500, and every
booking is accepted once and decided."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections import Counter

import httpx
import psycopg
import pytest
from sqlalchemy.engine import make_url

from tests.workers.conftest import Pipeline, slot

pytestmark = pytest.mark.anyio

CUT_EVERY_SECONDS = 0.7
CUT_FOR_SECONDS = 12.0
CLIENTS = 24


def _cut_connections(database_url: str, stop: threading.Event, cuts: list[int]) -> None:
    """pg_terminate_backend on every backend of the test database, every 0.7 s."""
    url = make_url(database_url).set(drivername="postgresql", database="postgres")
    target = make_url(database_url).database
    with psycopg.connect(url.render_as_string(hide_password=False), autocommit=True) as admin:
        while not stop.wait(CUT_EVERY_SECONDS):
            rows = admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()",
                (target,),
            ).fetchall()
            cuts.append(sum(1 for (done,) in rows if done))


async def test_cut_connections_and_killed_workers_give_only_202_or_503_and_lose_nothing(
    pipeline: Pipeline, http: httpx.AsyncClient
) -> None:
    pipeline.start_scheduler()
    pipeline.start_worker()
    pipeline.start_worker()
    providers = [await pipeline.create_provider(http) for _ in range(CLIENTS)]
    statuses: Counter[int] = Counter()
    missing_retry_after: list[str] = []
    accepted: dict[str, str] = {}  # idempotency key -> request id
    deadline = time.monotonic() + CUT_FOR_SECONDS

    async def client(provider: str) -> None:
        n = 0
        while time.monotonic() < deadline:
            key = str(uuid.uuid4())
            start = slot(days=2 + n // 40, hour=(n % 40) // 2, minute=30 * (n % 2))
            n += 1
            while True:  # a careful client: retry with the same key until accepted
                response = await pipeline.book(
                    http, provider, start, headers={"Idempotency-Key": key}
                )
                statuses[response.status_code] += 1
                if response.status_code == 202:
                    accepted[key] = response.json()["id"]
                    break
                if response.status_code == 503 and "retry-after" not in response.headers:
                    missing_retry_after.append(response.text)
                if response.status_code != 503:
                    return  # anything else is a failure the assertions below report
                await asyncio.sleep(0.1)

    async def kill_workers() -> None:
        for at in (4.0, 8.0):
            await asyncio.sleep(at - (CUT_FOR_SECONDS - (deadline - time.monotonic())))
            victim = pipeline.workers[0]
            victim.kill()
            pipeline.workers.remove(victim)
            await asyncio.to_thread(pipeline.start_worker)

    stop, cuts = threading.Event(), []
    cutter = threading.Thread(target=_cut_connections, args=(pipeline.database_url, stop, cuts))
    cutter.start()
    try:
        await asyncio.gather(*(client(p) for p in providers), kill_workers())
    finally:
        stop.set()
        cutter.join()
    print(f"\n{sum(statuses.values())} answers {dict(statuses)}; cut {sum(cuts)} connections")

    assert set(statuses) <= {202, 503}, dict(statuses)
    assert not missing_retry_after
    assert statuses[202] == len(accepted) >= 20  # few on a loaded machine; ~600 on a quiet one
    request_ids = list(accepted.values())
    per_key = pipeline.sql(
        "SELECT idempotency_key, count(*) FROM booking_requests"
        " WHERE idempotency_key = ANY(%s) GROUP BY idempotency_key",
        list(accepted),
    )
    assert len(per_key) == len(accepted) and {n for _, n in per_key} == {1}
    pipeline.wait_all_terminal(request_ids, timeout=120)
    outcomes = Counter(
        status
        for (status,) in pipeline.sql(
            "SELECT status FROM booking_requests WHERE id = ANY(%s)",
            [uuid.UUID(i) for i in request_ids],
        )
    )
    assert outcomes == {"succeeded": len(accepted)}, outcomes
    assert pipeline.overlapping_confirmed() == 0
    pipeline.stop_workers()
    pipeline.stop_scheduler()
