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
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from uuid import UUID

from domain.availability import Span
from domain.decisions import decide_batch
from domain.events import REQUEST_FAILED, Event
from domain.model import BookingRequest, Provider, RequestStatus
from domain.ports import Notifier, Outcome, UnitOfWork, UnitsOfWork, WakeupQueue
from domain.schedule import Interval, intervals_for

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


@dataclass(frozen=True, slots=True)
class ProcessingLimits:
    max_attempts: int = 3
    batch_size: int = 200  # requests applied in one transaction at most
    retry_pause_seconds: float = 0.1


def _reach(provider: Provider, requests: list[BookingRequest]) -> Span | None:
    """The real time within which a booking could stand in the way of these requests."""
    starts = [r.start for r in requests if r.start is not None]
    if not starts:
        return None
    rules = provider.rules
    margin = timedelta(
        minutes=rules.slot_minutes + rules.buffer_before_minutes + rules.buffer_after_minutes
    )
    return Span(min(starts) - margin, max(starts) + margin)


async def _hours(
    uow: UnitOfWork, provider: Provider, requests: list[BookingRequest]
) -> dict[date, tuple[Interval, ...]]:
    zone = provider.rules.zone
    days = {r.start.astimezone(zone).date() for r in requests if r.start is not None}
    if not days:
        return {}
    overrides = await uow.overrides.between(provider.id, min(days), max(days))
    return {day: intervals_for(day, provider.weekly, overrides) for day in days}


async def _apply_batch(
    provider_id: UUID, limit: int, uow: UnitOfWork, notifier: Notifier, now: datetime
) -> list[UUID]:
    """Decide up to `limit` pending requests of the provider in one transaction.

    Reads what the batch touches in a fixed number of statements, decides in memory (each
    request seeing the effects of those before it), writes the results, and returns the ids
    of the requests decided.
    """
    async with uow:
        await uow.lock_provider(provider_id)
        pending = await uow.requests.pending_for_provider(provider_id, limit, lock=True)
        if not pending:
            return []
        provider = await uow.providers.get(provider_id)
        hours: dict[date, tuple[Interval, ...]] = {}
        confirmed: list[tuple[UUID, Span]] = []
        if provider is not None:
            hours = await _hours(uow, provider, pending)
            reach = _reach(provider, pending)
            if reach is not None:
                confirmed = await uow.bookings.confirmed_spans(provider_id, reach)
        targets = await uow.bookings.get_many({r.booking_id for r in pending if r.booking_id})
        decision = decide_batch(provider, pending, hours, targets, confirmed, now)
        await uow.bookings.add_many(decision.created)
        await uow.bookings.update_many(decision.changed)
        await uow.requests.finish_many(decision.outcomes)
        await uow.events.add_many(decision.events, now)
        decided = [request_id for request_id, _ in decision.outcomes]
        if decision.changes_bookings:
            version = await uow.providers.bump_version(provider_id)
            # The cache version moves before waiting readers hear of the outcome, so nobody
            # who has seen a booking succeed is offered its slot again.
            uow.after_commit(lambda: notifier.provider_changed(provider_id, version))
        uow.after_commit(lambda: notifier.requests_completed(decided))
        await uow.commit()
    return decided


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
        await uow.requests.finish_many([(request_id, outcome)])
        failed = dataclasses.replace(
            request,
            status=RequestStatus.FAILED,
            error_code="internal_error",
            error_message=message,
            completed_at=now,
        )
        await uow.events.add_many([Event(REQUEST_FAILED, failed, None)], now)
        uow.after_commit(lambda: notifier.requests_completed([request_id]))
        await uow.commit()
    log.error("booking request %s failed after %d attempts", request_id, attempts - 1)


class RecentlyDecided:
    """Ids of requests this process decided lately, so their extra wake-ups cost nothing.

    Most wake-ups find their request already decided by an earlier batch; remembering the
    batch's ids answers them without a database read. Forgetting only costs that read.
    """

    def __init__(self, capacity: int = 100_000) -> None:
        self._order: deque[UUID] = deque()
        self._ids: set[UUID] = set()
        self._capacity = capacity

    def __contains__(self, request_id: object) -> bool:
        return request_id in self._ids

    def add_all(self, request_ids: list[UUID]) -> None:
        for request_id in request_ids:
            if request_id not in self._ids:
                self._ids.add(request_id)
                self._order.append(request_id)
        while len(self._order) > self._capacity:
            self._ids.discard(self._order.popleft())


async def process_provider(
    provider_id: UUID,
    woken_for: UUID,
    units: UnitsOfWork,
    notifier: Notifier,
    clock: Clock,
    limits: ProcessingLimits = ProcessingLimits(),
    recent: RecentlyDecided | None = None,
) -> int:
    """Apply the provider's pending requests until the one we were woken for is decided.

    Returns how many requests were decided. A duplicate wake-up finds its request decided
    and does nothing.
    """
    recent = recent if recent is not None else RecentlyDecided()
    decided = 0
    while woken_for not in recent:
        async with units.reader() as uow:
            target = await uow.requests.get(woken_for)
        if target is None or target.status is not RequestStatus.PENDING:
            return decided
        async with units.single_writer() as uow:
            head = await uow.requests.count_attempt(provider_id)
            await uow.commit()
        if head is None:  # pragma: no cover - the target itself is pending
            return decided
        head_id, attempts = head
        if attempts > limits.max_attempts:
            await _fail_request(head_id, attempts, units.unit_of_work(), notifier, clock())
            recent.add_all([head_id])
            decided += 1
            continue
        # An earlier attempt at this head did not finish: try it alone, so whatever breaks
        # is pinned on the request that breaks it and the others are not held hostage.
        limit = 1 if attempts > 1 else limits.batch_size
        try:
            ids = await _apply_batch(provider_id, limit, units.unit_of_work(), notifier, clock())
        except Exception:
            log.exception(
                "applying requests of provider %s failed (attempt %d at %s)",
                provider_id,
                attempts,
                head_id,
            )
            await asyncio.sleep(limits.retry_pause_seconds * attempts)
            continue
        recent.add_all(ids)
        decided += len(ids)
    return decided


async def wake_stuck(
    units: UnitsOfWork,
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
    async with units.reader() as uow:
        stuck = await uow.requests.stale_pending(older_than, limit)
    woken = 0
    for provider_id, request_id in stuck:
        woken += await queue.wake_if_quiet(provider_id, request_id, quiet_seconds)
    return woken
