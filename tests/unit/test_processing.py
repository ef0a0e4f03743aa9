"""The worker's use cases (domain/use_cases/processing.py) alone, on in-memory fakes: accept
order, at most once, and the poison-request path (attempts counted, `failed` after
MAX_ATTEMPTS, nobody else held hostage)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from uuid import UUID

from domain.events import REQUEST_FAILED
from domain.model import BookingRequest, Provider, RequestKind, RequestStatus
from domain.schedule import Interval, WeeklySchedule
from domain.use_cases.processing import (
    ProcessingLimits,
    RecentlyDecided,
    process_wakeups,
    wake_stuck,
)
from tests.unit.fakes import FakeDatabase, FakeNotifier, FakeQueue

NOW = datetime(2026, 10, 15, 12, 0, tzinfo=UTC)
LIMITS = ProcessingLimits(max_attempts=3, retry_pause_seconds=0)


def clock() -> datetime:
    return NOW


def add_provider(db: FakeDatabase, buffer_after: int = 0) -> UUID:
    provider = Provider(
        id=uuid.uuid4(),
        name="p",
        timezone="UTC",
        slot_minutes=30,
        weekly=WeeklySchedule(days=((Interval(0, 1440),),) * 7),
        buffer_before_minutes=0,
        buffer_after_minutes=buffer_after,
        min_notice_minutes=0,
        max_advance_days=90,
        version=1,
        created_at=NOW,
        updated_at=NOW,
    )
    db.state.providers[provider.id] = provider
    return provider.id


_seq: Iterator[int] = iter(range(1, 1_000_000))


def add_request(db: FakeDatabase, provider: UUID, start: datetime, attempts: int = 0) -> UUID:
    request = BookingRequest(
        id=uuid.uuid4(),
        seq=next(_seq),
        client_id=uuid.uuid4(),
        kind=RequestKind.BOOK,
        provider_id=provider,
        booking_id=None,
        start=start,
        status=RequestStatus.PENDING,
        created_at=NOW - timedelta(seconds=30),
        customer_id="c",
        attempts=attempts,
    )
    db.state.requests[request.id] = request
    return request.id


def at(hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 10, 20, hour, minute, tzinfo=UTC)


def status(db: FakeDatabase, request_id: UUID) -> tuple[RequestStatus, str | None, int]:
    request = db.state.requests[request_id]
    return request.status, request.error_code, request.attempts


def process(db: FakeDatabase, woken: list[tuple[UUID, UUID]], notifier: FakeNotifier) -> int:
    return asyncio.run(process_wakeups(woken, db, notifier, clock, LIMITS, RecentlyDecided()))


def test_a_provider_s_requests_are_decided_in_accept_order_whoever_was_woken() -> None:
    db, notifier = FakeDatabase(), FakeNotifier()
    provider = add_provider(db, buffer_after=30)  # 10:00 and 10:30 overlap
    a = add_request(db, provider, at(10))
    b = add_request(db, provider, at(10, 30))
    c = add_request(db, provider, at(10))
    assert process(db, [(provider, c)], notifier) == 3  # woken for the newest only
    assert [status(db, r)[:2] for r in (a, b, c)] == [
        (RequestStatus.SUCCEEDED, None),
        (RequestStatus.REJECTED, "slot_unavailable"),
        (RequestStatus.REJECTED, "slot_unavailable"),
    ]
    assert sorted(notifier.completed) == sorted([a, b, c])
    assert notifier.events_recorded_calls == 1  # one wake-up for the webhook publisher


def test_a_second_wake_up_for_a_decided_request_changes_nothing() -> None:
    db, notifier = FakeDatabase(), FakeNotifier()
    provider = add_provider(db)
    request = add_request(db, provider, at(9))
    process(db, [(provider, request)], notifier)
    before = (dict(db.state.bookings), list(db.state.events))
    assert process(db, [(provider, request), (provider, request)], notifier) == 0
    assert (dict(db.state.bookings), list(db.state.events)) == before
    assert len(db.state.bookings) == 1


def test_a_poison_request_is_failed_after_max_attempts_and_holds_nobody_hostage() -> None:
    db, notifier = FakeDatabase(), FakeNotifier()
    sick, healthy = add_provider(db), add_provider(db)
    poison = add_request(db, sick, at(9))
    after_poison = add_request(db, sick, at(11))  # same provider, behind the poison
    others = [add_request(db, healthy, at(h)) for h in (9, 10, 11)]
    db.poison.add(poison)

    decided = process(db, [(sick, poison), (healthy, others[0])], notifier)

    assert status(db, poison) == (RequestStatus.FAILED, "internal_error", LIMITS.max_attempts + 1)
    assert status(db, after_poison)[:2] == (RequestStatus.SUCCEEDED, None)
    assert [status(db, r)[0] for r in others] == [RequestStatus.SUCCEEDED] * 3
    assert decided == 5
    failed_events = [e for e, _ in db.state.events if e.type == REQUEST_FAILED]
    assert [e.request.id for e in failed_events] == [poison]
    assert poison in notifier.completed
    # Only the poison's attempts went past one: the others were not retried because of it.
    assert all(db.state.requests[r].attempts <= 2 for r in [after_poison, *others])


def test_a_request_whose_worker_died_mid_attempt_is_retried_alone_then_failed() -> None:
    db, notifier = FakeDatabase(), FakeNotifier()
    provider = add_provider(db)
    # A worker died twice while deciding it: two attempts counted, none finished.
    crashed = add_request(db, provider, at(9), attempts=2)
    next_one = add_request(db, provider, at(10))
    process(db, [(provider, next_one)], notifier)
    # The third attempt is tried alone and, with nothing wrong this time, succeeds.
    assert status(db, crashed) == (RequestStatus.SUCCEEDED, None, 3)
    assert status(db, next_one)[0] is RequestStatus.SUCCEEDED

    db2 = FakeDatabase()
    provider = add_provider(db2)
    crashed = add_request(db2, provider, at(9), attempts=LIMITS.max_attempts)
    later = add_request(db2, provider, at(9))  # same slot: free once the first is failed
    process(db2, [(provider, later)], FakeNotifier())
    assert status(db2, crashed)[:2] == (RequestStatus.FAILED, "internal_error")
    assert status(db2, later)[:2] == (RequestStatus.SUCCEEDED, None)


def test_a_failed_batch_rolls_back_everything_it_wrote() -> None:
    db, notifier = FakeDatabase(), FakeNotifier()
    provider = add_provider(db)
    poison = add_request(db, provider, at(9))
    db.poison.add(poison)
    asyncio.run(
        process_wakeups(
            [(provider, poison)],
            db,
            notifier,
            clock,
            ProcessingLimits(max_attempts=3, retry_pause_seconds=0, max_rounds=1),
            RecentlyDecided(),
        )
    )
    # One round: the attempt was counted (its own commit), the decision rolled back.
    assert status(db, poison) == (RequestStatus.PENDING, None, 1)
    assert db.state.bookings == {}
    assert db.state.events == []
    assert notifier.completed == []


def test_the_sweep_wakes_each_stuck_provider_once_with_its_newest_request() -> None:
    db, queue = FakeDatabase(), FakeQueue()
    one, two = add_provider(db), add_provider(db)
    add_request(db, one, at(9))
    newest = add_request(db, one, at(10))
    only = add_request(db, two, at(9))
    older_than = NOW - timedelta(seconds=3)
    assert asyncio.run(wake_stuck(db, queue, older_than, quiet_seconds=10)) == 2
    assert sorted(queue.woken) == sorted([(one, newest), (two, only)])
    assert asyncio.run(wake_stuck(db, queue, older_than, quiet_seconds=10)) == 0  # quiet
