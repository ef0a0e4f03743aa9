"""Deciding booking requests: the worker's side of the pipeline.

A wake-up names a provider and a request. The worker applies that provider's pending
requests oldest first, in one transaction under the provider's lock, so one provider's
requests are applied one at a time and in accept order however the wake-ups arrive. A
request is applied at most once: only pending requests are read (FOR UPDATE), and applying
and marking done commit together. Before each batch an attempt is counted at the oldest
pending request in a transaction of its own, so a request that keeps crashing its worker is
found out, retried alone, and after `max_attempts` marked failed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from uuid import UUID, uuid4

from domain.booking_rules import check_start
from domain.errors import BookingRejected
from domain.events import (
    BOOKING_CANCELLED,
    BOOKING_CONFIRMED,
    BOOKING_RESCHEDULED,
    REQUEST_FAILED,
    REQUEST_REJECTED,
    Event,
)
from domain.model import (
    Booking,
    BookingRequest,
    BookingStatus,
    Provider,
    RequestKind,
    RequestStatus,
)
from domain.ports import Notifier, Outcome, UnitOfWork, UnitOfWorkFactory, WakeupQueue
from domain.schedule import Interval, intervals_for

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


@dataclass(frozen=True, slots=True)
class ProcessingLimits:
    max_attempts: int = 3
    batch_size: int = 200  # requests applied in one transaction at most
    retry_pause_seconds: float = 0.1


class _Batch:
    """What one transaction decided, for the events and notifications after commit."""

    def __init__(self) -> None:
        self.completed: list[UUID] = []
        self.changed_bookings = False


async def _intervals(
    uow: UnitOfWork, provider: Provider, requests: list[BookingRequest]
) -> dict[date, tuple[Interval, ...]]:
    zone = provider.rules.zone
    days = {r.start.astimezone(zone).date() for r in requests if r.start is not None}
    if not days:
        return {}
    overrides = await uow.overrides.between(provider.id, min(days), max(days))
    return {day: intervals_for(day, provider.weekly, overrides) for day in days}


async def _finish(
    uow: UnitOfWork,
    request: BookingRequest,
    batch: _Batch,
    now: datetime,
    booking: Booking | None = None,
    event_type: str | None = None,
    rejection: BookingRejected | None = None,
) -> None:
    if rejection is not None:
        outcome = Outcome(
            RequestStatus.REJECTED, now, error_code=rejection.code, error_message=rejection.detail
        )
        event_type = REQUEST_REJECTED
    else:
        outcome = Outcome(RequestStatus.SUCCEEDED, now, booking_id=booking.id if booking else None)
        batch.changed_bookings = True
    await uow.requests.finish(request.id, outcome)
    done = dataclasses.replace(
        request,
        status=outcome.status,
        booking_id=outcome.booking_id or request.booking_id,
        error_code=outcome.error_code,
        error_message=outcome.error_message,
        completed_at=now,
    )
    assert event_type is not None
    await uow.events.add(Event(event_type, done, booking), now)
    batch.completed.append(request.id)


async def _book(
    uow: UnitOfWork,
    provider: Provider,
    request: BookingRequest,
    intervals: tuple[Interval, ...],
    now: datetime,
) -> Booking:
    assert request.start is not None
    rules = provider.rules
    slot = check_start(rules, intervals, request.start, request.created_at, now)
    blocked = rules.blocked_span(slot.start, slot.end)
    if await uow.bookings.overlapping(provider.id, blocked, excluding=None):
        raise BookingRejected("slot_unavailable", "that slot is already booked")
    booking = Booking(
        id=uuid4(),
        client_id=request.client_id,
        provider_id=provider.id,
        customer_id=request.customer_id,
        start=slot.start,
        end=slot.end,
        blocked=blocked,
        status=BookingStatus.CONFIRMED,
        metadata=request.metadata,
        created_at=now,
        updated_at=now,
    )
    await uow.bookings.add(booking)
    return booking


async def _existing(uow: UnitOfWork, request: BookingRequest) -> Booking:
    assert request.booking_id is not None
    booking = await uow.bookings.get(request.booking_id)
    if booking is None or booking.provider_id != request.provider_id:
        raise BookingRejected("booking_not_found", f"booking {request.booking_id} not found")
    if booking.status is BookingStatus.CANCELLED:
        raise BookingRejected("booking_cancelled", f"booking {booking.id} is cancelled")
    return booking


async def _reschedule(
    uow: UnitOfWork,
    provider: Provider,
    request: BookingRequest,
    intervals: tuple[Interval, ...],
    now: datetime,
) -> Booking:
    assert request.start is not None
    booking = await _existing(uow, request)
    rules = provider.rules
    slot = check_start(rules, intervals, request.start, request.created_at, now)
    blocked = rules.blocked_span(slot.start, slot.end)
    if await uow.bookings.overlapping(provider.id, blocked, excluding=booking.id):
        raise BookingRejected("slot_unavailable", "that slot is already booked")
    moved = dataclasses.replace(
        booking, start=slot.start, end=slot.end, blocked=blocked, updated_at=now
    )
    await uow.bookings.update(moved)
    return moved


async def _cancel(uow: UnitOfWork, request: BookingRequest, now: datetime) -> Booking:
    booking = await _existing(uow, request)
    cancelled = dataclasses.replace(
        booking,
        status=BookingStatus.CANCELLED,
        cancelled_at=now,
        cancel_reason=request.reason,
        updated_at=now,
    )
    await uow.bookings.update(cancelled)
    return cancelled


_EVENT_OF = {
    RequestKind.BOOK: BOOKING_CONFIRMED,
    RequestKind.RESCHEDULE: BOOKING_RESCHEDULED,
    RequestKind.CANCEL: BOOKING_CANCELLED,
}


async def _apply_batch(
    provider_id: UUID, limit: int, uow: UnitOfWork, notifier: Notifier, now: datetime
) -> int:
    """Apply up to `limit` pending requests of the provider in one transaction."""
    batch = _Batch()
    async with uow:
        await uow.lock_provider(provider_id)
        pending = await uow.requests.pending_for_provider(provider_id, limit, lock=True)
        if not pending:
            return 0
        provider = await uow.providers.get(provider_id)
        days = await _intervals(uow, provider, pending) if provider else {}
        for request in pending:
            try:
                if provider is None:
                    raise BookingRejected("provider_not_found", f"provider {provider_id} not found")
                zone = provider.rules.zone
                day = request.start.astimezone(zone).date() if request.start else None
                if request.kind is RequestKind.BOOK:
                    booking = await _book(uow, provider, request, days[day], now)  # type: ignore[index]
                elif request.kind is RequestKind.RESCHEDULE:
                    booking = await _reschedule(uow, provider, request, days[day], now)  # type: ignore[index]
                else:
                    booking = await _cancel(uow, request, now)
            except BookingRejected as rejection:
                await _finish(uow, request, batch, now, rejection=rejection)
            else:
                await _finish(uow, request, batch, now, booking, _EVENT_OF[request.kind])
        version = await uow.providers.bump_version(provider_id) if batch.changed_bookings else None
        # The cache version moves before waiting readers hear of the outcome, so nobody who
        # has seen a booking succeed is offered its slot again.
        if version is not None:
            uow.after_commit(lambda: notifier.provider_changed(provider_id, version))
        uow.after_commit(lambda: notifier.requests_completed(batch.completed))
        await uow.commit()
    return len(pending)


async def _fail_request(
    request_id: UUID, attempts: int, uow: UnitOfWork, notifier: Notifier, now: datetime
) -> None:
    async with uow:
        request = await uow.requests.get(request_id)
        if request is None or request.status is not RequestStatus.PENDING:
            return
        message = f"the request could not be processed after {attempts - 1} attempts"
        outcome = Outcome(
            RequestStatus.FAILED, now, error_code="internal_error", error_message=message
        )
        await uow.requests.finish(request_id, outcome)
        failed = dataclasses.replace(
            request,
            status=RequestStatus.FAILED,
            error_code="internal_error",
            error_message=message,
            completed_at=now,
        )
        await uow.events.add(Event(REQUEST_FAILED, failed, None), now)
        uow.after_commit(lambda: notifier.requests_completed([request_id]))
        await uow.commit()
    log.error("booking request %s failed after %d attempts", request_id, attempts - 1)


async def process_provider(
    provider_id: UUID,
    woken_for: UUID,
    uow_factory: UnitOfWorkFactory,
    notifier: Notifier,
    clock: Clock,
    limits: ProcessingLimits = ProcessingLimits(),
) -> int:
    """Apply the provider's pending requests until the one we were woken for is decided.

    Returns how many requests were decided. A duplicate wake-up finds its request decided
    and does nothing.
    """
    decided = 0
    while True:
        async with uow_factory() as uow:
            target = await uow.requests.get(woken_for)
        if target is None or target.status is not RequestStatus.PENDING:
            return decided
        async with uow_factory() as uow:
            head = await uow.requests.count_attempt(provider_id)
            await uow.commit()
        if head is None:  # pragma: no cover - the target itself is pending
            return decided
        head_id, attempts = head
        if attempts > limits.max_attempts:
            await _fail_request(head_id, attempts, uow_factory(), notifier, clock())
            decided += 1
            continue
        # An earlier attempt at this head did not finish: try it alone, so whatever breaks
        # is pinned on the request that breaks it and the others are not held hostage.
        limit = 1 if attempts > 1 else limits.batch_size
        try:
            decided += await _apply_batch(provider_id, limit, uow_factory(), notifier, clock())
        except Exception:
            log.exception(
                "applying requests of provider %s failed (attempt %d at %s)",
                provider_id,
                attempts,
                head_id,
            )
            await asyncio.sleep(limits.retry_pause_seconds * attempts)


async def wake_stuck(
    uow_factory: UnitOfWorkFactory,
    queue: WakeupQueue,
    older_than: datetime,
    quiet_seconds: int,
    limit: int = 1000,
) -> int:
    """Enqueue again the providers whose requests are still pending after a while.

    Redis may have lost the wake-up (a flush, a restart, a worker killed before it acked);
    PostgreSQL still has the request. A provider woken this way is left alone for
    `quiet_seconds`, so a long backlog is not flooded with duplicate wake-ups.
    """
    async with uow_factory() as uow:
        stuck = await uow.requests.stale_pending(older_than, limit)
    woken = 0
    for provider_id, request_id in stuck:
        woken += await queue.wake_if_quiet(provider_id, request_id, quiet_seconds)
    return woken
