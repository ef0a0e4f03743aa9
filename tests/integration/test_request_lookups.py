"""The worker's reads and writes of booking requests, across monthly partitions.

The worker names the requests it has read (id and creation time) so that each is found in its
own partition; these tests hold the repository to finding them wherever they live, and the
stale-request scan to naming each provider's newest stale request.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert

from domain.model import RequestStatus
from domain.ports import Outcome
from infra.database import make_engine, make_sync_engine
from infra.partitions import ensure_partitions
from infra.tables import BookingRequestRow
from infra.unit_of_work import SqlDatabase
from tests.conftest import (
    TestDatabase,
)
from tests.integration.rows import add_client_and_provider, request_row

NOW = datetime.now(UTC)


def _run(url: str, scenario: Callable[[SqlDatabase], Awaitable[None]]) -> None:
    async def go() -> None:
        database = SqlDatabase(make_engine(url, 2))
        try:
            await scenario(database)
        finally:
            await database.dispose()

    asyncio.run(go())


def _seed(url: str, rows: list[tuple[int, str, int]]) -> list[uuid.UUID]:
    """Requests (provider number, status, days old), in that order; their ids."""
    engine = make_sync_engine(url)
    ensure_partitions(engine, NOW - timedelta(days=120), NOW)
    ids = []
    with engine.begin() as db:
        clients_and_providers = [
            add_client_and_provider(db, NOW - timedelta(days=200)) for _ in range(3)
        ]
        for provider, status, days in rows:
            client, provider_id = clients_and_providers[provider]
            ident = uuid.uuid4()
            created = NOW - timedelta(days=days, seconds=len(ids))
            db.execute(
                insert(BookingRequestRow).values(
                    **request_row(ident, client, provider_id, created, status)
                )
            )
            ids.append(ident)
    engine.dispose()
    return ids


def test_pending_requests_of_different_months_are_found_counted_and_finished(
    fresh: TestDatabase,
) -> None:
    # Provider 0 has a request pending since three months ago and one from today.
    old, new, done = _seed(fresh.url, [(0, "pending", 95), (0, "pending", 0), (0, "succeeded", 40)])

    async def scenario(database: SqlDatabase) -> None:
        async with database.reader() as uow:
            (provider,) = {r.provider_id for r in [await uow.requests.get(old)] if r}
            pending = await uow.requests.pending_for_providers([provider], 10)
        assert [r.id for r in pending] == [old, new]
        async with database.single_writer() as uow:
            await uow.requests.count_attempts(pending)
            await uow.commit()
        async with database.unit_of_work() as uow:
            still = await uow.requests.still_pending(pending)
            assert [(r.id, r.attempts) for r in still] == [(old, 2), (new, 2)]
            outcome = Outcome(RequestStatus.REJECTED, NOW, error_code="x", error_message="y")
            await uow.requests.finish_many([(r, outcome) for r in still])
            await uow.commit()
        async with database.reader() as uow:
            for ident in (old, new):
                request = await uow.requests.get(ident)
                assert request is not None and request.status is RequestStatus.REJECTED
            kept = await uow.requests.get(done)
            assert kept is not None and kept.status is RequestStatus.SUCCEEDED
            assert await uow.requests.still_pending(pending) == []

    _run(fresh.url, scenario)


def test_counting_an_attempt_returns_the_oldest_pending_request(fresh: TestDatabase) -> None:
    old, _new = _seed(fresh.url, [(0, "pending", 70), (0, "pending", 1)])

    async def scenario(database: SqlDatabase) -> None:
        async with database.reader() as uow:
            request = await uow.requests.get(old)
        assert request is not None
        async with database.single_writer() as uow:
            counted = await uow.requests.count_attempt(request.provider_id)
            await uow.commit()
        assert counted is not None
        assert (counted.id, counted.attempts, counted.created_at) == (old, 2, request.created_at)

    _run(fresh.url, scenario)


def test_the_stale_scan_names_each_providers_newest_stale_request(fresh: TestDatabase) -> None:
    ids = _seed(
        fresh.url,
        [
            (0, "pending", 80),  # provider 0: two stale, the newer is named
            (0, "pending", 3),
            (0, "pending", 0),  # younger than the cut: not stale
            (1, "succeeded", 50),  # provider 1: nothing pending
            (2, "pending", 10),  # provider 2: one stale
        ],
    )

    async def scenario(database: SqlDatabase) -> None:
        async with database.reader() as uow:
            stale = await uow.requests.stale_pending(NOW - timedelta(days=1), 10)
            first = await uow.requests.get(ids[0])
            third = await uow.requests.get(ids[4])
            limited = await uow.requests.stale_pending(NOW - timedelta(days=1), 1)
        assert first is not None and third is not None
        assert sorted(stale) == sorted([(first.provider_id, ids[1]), (third.provider_id, ids[4])])
        assert len(limited) == 1 and limited[0] in stale

    _run(fresh.url, scenario)
