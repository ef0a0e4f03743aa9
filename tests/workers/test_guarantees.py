"""The four guarantees under concurrency and crashes, with real processes, PostgreSQL and Redis:
every 202 ends terminal; a request is applied at most once; confirmed bookings of a provider
never overlap; one provider's requests are applied in accept order."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

import httpx
import pytest

from tests.conftest import missing_service
from tests.workers.conftest import Pipeline, slot

pytestmark = pytest.mark.anyio


def outcome_of(body: dict[str, Any]) -> tuple[str, str | None]:
    return body["status"], (body["error"] or {}).get("code")


async def test_two_hundred_concurrent_books_of_one_slot_make_exactly_one_booking(
    running: Pipeline, http: httpx.AsyncClient
) -> None:
    provider = await running.create_provider(http)
    start = slot(days=10, hour=10)
    responses = await asyncio.gather(*(running.book(http, provider, start) for _ in range(200)))
    assert Counter(r.status_code for r in responses) == {202: 200}
    outcomes = await running.outcomes(http, [r.json()["id"] for r in responses])
    assert Counter(outcome_of(o) for o in outcomes) == {
        ("succeeded", None): 1,
        ("rejected", "slot_unavailable"): 199,
    }
    confirmed = running.sql(
        "SELECT count(*) FROM bookings WHERE provider_id = %s AND status = 'confirmed'", provider
    )
    assert confirmed == [(1,)]


async def test_twenty_concurrent_reschedules_into_one_free_slot_move_exactly_one(
    running: Pipeline, http: httpx.AsyncClient
) -> None:
    provider = await running.create_provider(http)
    booked = await asyncio.gather(
        *(
            running.book(http, provider, slot(days=11, hour=h // 2, minute=30 * (h % 2)))
            for h in range(20)
        )
    )
    bookings = [
        o["booking_id"] for o in await running.outcomes(http, [r.json()["id"] for r in booked])
    ]
    assert None not in bookings
    free = slot(days=11, hour=15)
    moves = await asyncio.gather(
        *(
            http.post(f"/v1/bookings/{b}/reschedule", json={"start": free}, headers=running.client)
            for b in bookings
        )
    )
    assert Counter(m.status_code for m in moves) == {202: 20}
    outcomes = await running.outcomes(http, [m.json()["id"] for m in moves])
    assert Counter(outcome_of(o) for o in outcomes) == {
        ("succeeded", None): 1,
        ("rejected", "slot_unavailable"): 19,
    }
    assert running.overlapping_confirmed() == 0
    at_free = running.sql(
        "SELECT count(*) FROM bookings WHERE provider_id = %s AND status = 'confirmed'"
        " AND start_at = %s",
        provider,
        free,
    )
    assert at_free == [(1,)]


async def test_requests_apply_in_accept_order_even_when_woken_out_of_order(
    stopped: Pipeline, http: httpx.AsyncClient
) -> None:
    # With 30 minutes of buffer after each booking, 10:00 and 10:30 overlap.
    provider = await stopped.create_provider(http, buffer_after_minutes=30)
    a = (await stopped.book(http, provider, slot(days=12, hour=10))).json()["id"]
    b = (await stopped.book(http, provider, slot(days=12, hour=10, minute=30))).json()["id"]
    c = (await stopped.book(http, provider, slot(days=12, hour=10))).json()["id"]
    # Lose the wake-ups of A and B; only C's remains, so the worker is woken for C first.
    stopped.drop_queued(provider)
    stopped.push_wakeup(provider, c)
    stopped.start_worker()
    outcomes = await stopped.outcomes(http, [a, b, c])
    assert [outcome_of(o) for o in outcomes] == [
        ("succeeded", None),
        ("rejected", "slot_unavailable"),
        ("rejected", "slot_unavailable"),
    ]


async def test_a_request_whose_wake_up_was_lost_is_decided_by_the_sweep(
    stopped: Pipeline, http: httpx.AsyncClient
) -> None:
    provider = await stopped.create_provider(http)
    request = (await stopped.book(http, provider, slot(days=13, hour=8))).json()["id"]
    stopped.drop_queued(provider)  # Redis lost the wake-up; PostgreSQL still has the request
    stopped.start_worker()
    await asyncio.sleep(1)
    assert stopped.pending([request]) == 1
    stopped.start_scheduler()
    assert stopped.wait_all_terminal([request], timeout=15) < 15
    assert outcome_of(await stopped.outcome(http, request)) == ("succeeded", None)


async def test_the_same_request_enqueued_twice_by_hand_is_applied_once(
    stopped: Pipeline, http: httpx.AsyncClient
) -> None:
    provider = await stopped.create_provider(http)
    request = (await stopped.book(http, provider, slot(days=13, hour=9))).json()["id"]
    stopped.push_wakeup(provider, request)
    stopped.push_wakeup(provider, request)
    assert stopped.queued(provider) == 3
    stopped.start_worker()
    assert outcome_of(await stopped.outcome(http, request)) == ("succeeded", None)
    stopped.wait_all_terminal([request], 5)
    deadline = time.monotonic() + 10
    while stopped.queued(provider) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    assert stopped.queued(provider) == 0  # every copy was consumed...
    assert stopped.sql("SELECT count(*) FROM bookings WHERE provider_id = %s", provider) == [(1,)]
    events = stopped.sql(
        "SELECT type, count(*) FROM events WHERE request_id = %s GROUP BY type", request
    )
    assert events == [("booking.confirmed", 1)]  # ...and applied once


async def test_idempotency_key_replays_the_original_and_refuses_a_different_body(
    stopped: Pipeline, http: httpx.AsyncClient
) -> None:
    provider = await stopped.create_provider(http)
    start = slot(days=14, hour=9)
    key = {"Idempotency-Key": "order-4711"}
    first = await stopped.book(http, provider, start, headers=key, customer_id="p-1")
    assert first.status_code == 202
    queued = stopped.queued(provider)
    replay = await stopped.book(http, provider, start, headers=key, customer_id="p-1")
    assert replay.status_code == 202
    assert replay.json()["id"] == first.json()["id"]
    assert replay.headers["location"] == first.headers["location"]
    assert stopped.queued(provider) == queued  # the replay enqueued nothing
    different = await stopped.book(http, provider, start, headers=key, customer_id="p-2")
    assert different.status_code == 409
    assert different.headers["content-type"].startswith("application/problem+json")
    # Another client's identical key is its own.
    other = await http.post(
        "/v1/bookings",
        json={"provider_id": provider, "start": start, "customer_id": "p-1"},
        headers={**stopped.other_client, **key},
    )
    assert other.status_code == 202
    assert other.json()["id"] != first.json()["id"]
    stopped.start_worker()
    assert outcome_of(await stopped.outcome(http, first.json()["id"])) == ("succeeded", None)
    later = await stopped.book(http, provider, start, headers=key, customer_id="p-1")
    assert later.json()["id"] == first.json()["id"]
    assert later.json()["status"] == "succeeded"  # its current status


async def test_concurrent_requests_with_one_idempotency_key_make_one_request(
    stopped: Pipeline, http: httpx.AsyncClient
) -> None:
    provider = await stopped.create_provider(http)
    key = {"Idempotency-Key": "same-key-racing"}
    responses = await asyncio.gather(
        *(stopped.book(http, provider, slot(days=14, hour=11), headers=key) for _ in range(20))
    )
    assert {r.status_code for r in responses} == {202}
    assert len({r.json()["id"] for r in responses}) == 1
    assert stopped.queued(provider) == 1


async def test_long_poll_returns_within_100_ms_of_completion(
    stopped: Pipeline, http: httpx.AsyncClient
) -> None:
    provider = await stopped.create_provider(http)
    request = (await stopped.book(http, provider, slot(days=15, hour=9))).json()["id"]
    answered_at: list[float] = []

    async def long_poll() -> dict[str, Any]:
        response = await http.get(f"/v1/booking-requests/{request}?wait=25", headers=stopped.client)
        answered_at.append(time.monotonic())
        body: dict[str, Any] = response.json()
        return body

    poll = asyncio.create_task(long_poll())
    await asyncio.sleep(0.5)
    assert not poll.done()  # it is holding the answer
    stopped.start_worker()
    # Watch the record itself, to see the commit as soon as it happens.
    while stopped.pending([request]):
        await asyncio.sleep(0.002)
    committed_at = time.monotonic()
    body = await poll
    assert body["status"] == "succeeded"
    assert answered_at[0] - committed_at < 0.100


async def test_pending_answers_carry_retry_after(
    stopped: Pipeline, http: httpx.AsyncClient
) -> None:
    provider = await stopped.create_provider(http)
    request = (await stopped.book(http, provider, slot(days=15, hour=10))).json()["id"]
    response = await http.get(f"/v1/booking-requests/{request}", headers=stopped.client)
    assert response.json()["status"] == "pending"
    assert response.headers["retry-after"] == "1"
    hidden = await http.get(f"/v1/booking-requests/{request}", headers=stopped.other_client)
    assert hidden.status_code == 404


async def _load(
    pipe: Pipeline, http: httpx.AsyncClient, providers: int, per_provider: int
) -> list[str]:
    """`providers` x `per_provider` books, two for every slot, sent 50 at a time."""
    ids = [await pipe.create_provider(http) for _ in range(providers)]
    bodies = [
        (p, slot(days=16, hour=8 + (i // 2) // 2, minute=30 * ((i // 2) % 2)))
        for p in ids
        for i in range(per_provider)
    ]
    accepted: list[str] = []
    for chunk in range(0, len(bodies), 50):
        responses = await asyncio.gather(
            *(pipe.book(http, p, s) for p, s in bodies[chunk : chunk + 50])
        )
        assert {r.status_code for r in responses} == {202}
        accepted.extend(r.json()["id"] for r in responses)
    return accepted


def assert_applied_once(pipe: Pipeline, request_ids: list[str]) -> None:
    rows = pipe.sql(
        "SELECT status, booking_id FROM booking_requests WHERE id = ANY(%s)",
        [__import__("uuid").UUID(i) for i in request_ids],
    )
    assert len(rows) == len(request_ids)
    assert {status for status, _ in rows} <= {"succeeded", "rejected"}
    succeeded = [booking for status, booking in rows if status == "succeeded"]
    assert len(succeeded) == len(request_ids) // 2  # one winner for every slot
    assert len(set(succeeded)) == len(succeeded)
    made = pipe.sql(
        "SELECT count(*) FROM bookings WHERE id IN (SELECT booking_id FROM booking_requests"
        " WHERE id = ANY(%s))",
        [__import__("uuid").UUID(i) for i in request_ids],
    )
    assert made == [(len(succeeded),)]
    assert pipe.overlapping_confirmed() == 0


@pytest.mark.slow
async def test_sigkill_of_a_worker_mid_load_loses_nothing_and_applies_nothing_twice(
    stopped: Pipeline, http: httpx.AsyncClient
) -> None:
    stopped.start_scheduler()
    requests = await _load(stopped, http, providers=100, per_provider=10)
    assert len(requests) == 1000
    victim = stopped.start_worker()
    while stopped.pending(requests) > 700:
        await asyncio.sleep(0.02)
    victim.kill()
    killed_at = time.monotonic()
    assert stopped.pending(requests) > 0, "the load finished before the kill"
    stopped.workers.remove(victim)
    stopped.start_worker()
    stopped.wait_all_terminal(requests, timeout=30 - (time.monotonic() - killed_at))
    assert_applied_once(stopped, requests)


@pytest.mark.slow
async def test_flushall_mid_load_loses_nothing_and_applies_nothing_twice(
    stopped: Pipeline, http: httpx.AsyncClient
) -> None:
    if not stopped.own_redis.whole_server:
        missing_service(
            "FLUSHALL test skipped: redis-server is not on PATH, and the test only flushes a"
            " Redis server it started itself"
        )
    stopped.start_scheduler()
    requests = await _load(stopped, http, providers=50, per_provider=10)
    stopped.start_worker()
    while stopped.pending(requests) > 350:
        await asyncio.sleep(0.02)
    # Every queued wake-up, unacked message, cache entry, version counter and the workers'
    # membership goes (the redis-server is this test module's own).
    stopped.redis().flushall()
    assert stopped.pending(requests) > 0, "the load finished before the flush"
    stopped.wait_all_terminal(requests, timeout=30)
    assert_applied_once(stopped, requests)
