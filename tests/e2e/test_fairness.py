"""One client's heavy or long-held requests can't stall everyone else (a real `booking api`).

Caps answer 429 with Retry-After at once; readiness does not wait behind a busy pool.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg
import pytest

from domain.model import Role
from tests.conftest import (
    TestDatabase,
    create_postgres_database,
    create_sqlite_database,
    drop_postgres_database,
    issue_key,
    postgres_server_url,
)
from tests.servers import embedded_redis, running_api

SOON = datetime.now(UTC).date() + timedelta(days=14)
EVERY_DAY = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


@dataclass
class Served:
    base_url: str
    admin: dict[str, str]
    keys: list[dict[str, str]]  # client keys


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@contextlib.contextmanager
def serve(database: TestDatabase, directory: Path, **settings: str) -> Iterator[Served]:
    admin = issue_key(database.url, Role.ADMIN, "fairness admin")
    keys = [issue_key(database.url, Role.CLIENT, f"fairness client {i}") for i in range(3)]
    with embedded_redis() as redis_url:
        env = {
            "DATABASE_URL": database.url,
            "REDIS_URL": redis_url,
            "LOG_LEVEL": "WARNING",
            **settings,
        }
        with running_api(env, directory) as base_url:
            yield Served(base_url, bearer(admin.key), [bearer(k.key) for k in keys])


def create_provider(served: Served, slot_minutes: int = 30, all_day: bool = False) -> str:
    hours = (
        [{"start": "00:00", "end": "24:00"}] if all_day else [{"start": "09:00", "end": "17:00"}]
    )
    body = {
        "timezone": "UTC",
        "slot_minutes": slot_minutes,
        "weekly_schedule": dict.fromkeys(EVERY_DAY, hours),
    }
    response = httpx.post(f"{served.base_url}/v1/providers", json=body, headers=served.admin)
    assert response.status_code == 201, response.text
    provider_id: str = response.json()["id"]
    return provider_id


def test_long_polls_past_the_per_key_and_per_process_caps_get_429(tmp_path: Path) -> None:
    database = create_sqlite_database(tmp_path)
    # No worker runs: a booking request stays pending, so a long-poll on it waits its time.
    with serve(database, tmp_path, LONG_POLLS_PER_KEY="2", LONG_POLLS_PER_PROCESS="3") as served:
        provider = create_provider(served)
        first, second = served.keys[0], served.keys[1]
        accepted = httpx.post(
            f"{served.base_url}/v1/bookings",
            json={"provider_id": provider, "start": f"{SOON}T10:00:00Z"},
            headers=first,
        )
        assert accepted.status_code == 202, accepted.text
        mine = f"{served.base_url}/v1/booking-requests/{accepted.json()['id']}"
        other = httpx.post(
            f"{served.base_url}/v1/bookings",
            json={"provider_id": provider, "start": f"{SOON}T11:00:00Z"},
            headers=second,
        )
        theirs = f"{served.base_url}/v1/booking-requests/{other.json()['id']}"

        async def scenario() -> None:
            async with httpx.AsyncClient(timeout=60) as client:
                held = [
                    asyncio.create_task(client.get(f"{mine}?wait=8", headers=first))
                    for _ in range(2)
                ]
                await asyncio.sleep(1.5)  # both are waiting now
                over_key = await client.get(f"{mine}?wait=8", headers=first)
                assert over_key.status_code == 429, over_key.text
                assert over_key.headers["retry-after"] == "1"
                assert over_key.headers["content-type"].startswith("application/problem+json")
                # Another key still gets a long-poll: the per-key cap is per key.
                third = asyncio.create_task(client.get(f"{theirs}?wait=8", headers=second))
                await asyncio.sleep(1.5)
                over_process = await client.get(f"{theirs}?wait=8", headers=second)
                assert over_process.status_code == 429, over_process.text
                # Polling without waiting is never capped, and the process answers at once.
                assert (await client.get(mine, headers=first)).status_code == 200
                assert (await client.get(f"{served.base_url}/health/live")).status_code == 200
                for task in [*held, third]:
                    answer = await task
                    assert answer.status_code == 200
                    assert answer.json()["status"] == "pending"
                # Once they are answered, the caps are free again.
                again = await client.get(f"{mine}?wait=0.5", headers=first)
                assert again.status_code == 200

        asyncio.run(scenario())


def test_uncached_computations_past_the_per_key_cap_get_429(tmp_path: Path) -> None:
    database = create_sqlite_database(tmp_path)
    settings = {"AVAILABILITY_COMPUTATIONS_PER_KEY": "1", "AVAILABILITY_MAX_SLOTS": "100000"}
    with serve(database, tmp_path, **settings) as served:
        heavy = [create_provider(served, slot_minutes=1, all_day=True) for _ in range(4)]
        light = create_provider(served)
        greedy, other = served.keys[0], served.keys[1]

        async def scenario() -> None:
            async with httpx.AsyncClient(timeout=120) as client:
                # 62 days of 1-minute slots, all of them in the future
                query = f"from={SOON}&to={SOON + timedelta(days=61)}"
                answers = await asyncio.gather(
                    *(
                        client.get(
                            f"{served.base_url}/v1/providers/{p}/availability?{query}",
                            headers=greedy,
                        )
                        for p in heavy
                    ),
                    client.get(
                        f"{served.base_url}/v1/providers/{light}/availability?{query}",
                        headers=other,
                    ),
                )
                *mine, theirs = answers
                statuses = sorted(a.status_code for a in mine)
                assert 200 in statuses and 429 in statuses, statuses
                assert set(statuses) <= {200, 429}
                for answer in mine:
                    if answer.status_code == 429:
                        assert answer.headers["retry-after"] == "1"
                    else:
                        assert len(answer.json()["slots"]) == 62 * 1440
                assert theirs.status_code == 200  # another key is not held back by the cap

        asyncio.run(scenario())


@pytest.fixture
def postgres(tmp_path: Path) -> Iterator[TestDatabase]:
    database = create_postgres_database(postgres_server_url())
    yield database
    drop_postgres_database(database)


def test_readiness_does_not_wait_behind_a_busy_connection_pool(
    postgres: TestDatabase, tmp_path: Path
) -> None:
    # A pool of one connection, taken by a request that waits on a lock: the API is busy, not
    # down, and /health/ready must say so at once (it answered 503 under floods of GETs).
    with serve(postgres, tmp_path, DATABASE_POOL_SIZE="1") as served:
        provider = create_provider(served)
        url = postgres.url.replace("postgresql+psycopg", "postgresql")
        with psycopg.connect(url) as locker:
            locker.execute("LOCK TABLE providers IN ACCESS EXCLUSIVE MODE")

            async def scenario() -> None:
                async with httpx.AsyncClient(timeout=60) as client:
                    stuck = asyncio.create_task(
                        client.get(
                            f"{served.base_url}/v1/providers/{provider}", headers=served.keys[0]
                        )
                    )
                    await asyncio.sleep(1.0)
                    assert not stuck.done()
                    ready = await client.get(f"{served.base_url}/health/ready")
                    assert ready.status_code == 200, ready.text
                    live = await client.get(f"{served.base_url}/health/live")
                    assert live.status_code == 200
                    locker.rollback()
                    assert (await stuck).status_code in {200, 503}

            asyncio.run(scenario())


def test_long_polls_hold_no_database_connection_while_they_wait(
    postgres: TestDatabase, tmp_path: Path
) -> None:
    # One pooled connection in all: if a waiting long-poll held it, every other request would
    # wait for the pool and fail with 503.
    with serve(postgres, tmp_path, DATABASE_POOL_SIZE="1") as served:
        provider = create_provider(served)
        key = served.keys[0]
        accepted = httpx.post(
            f"{served.base_url}/v1/bookings",
            json={"provider_id": provider, "start": f"{SOON}T10:00:00Z"},
            headers=key,
        )
        assert accepted.status_code == 202, accepted.text
        poll = f"{served.base_url}/v1/booking-requests/{accepted.json()['id']}?wait=10"

        async def scenario() -> None:
            async with httpx.AsyncClient(timeout=60) as client:
                waiting = [asyncio.create_task(client.get(poll, headers=key)) for _ in range(3)]
                await asyncio.sleep(2.0)
                assert not any(task.done() for task in waiting)
                for _ in range(3):
                    read = await client.get(
                        f"{served.base_url}/v1/providers/{provider}", headers=key
                    )
                    assert read.status_code == 200, read.text
                for task in waiting:
                    assert (await task).json()["status"] == "pending"

        asyncio.run(scenario())
