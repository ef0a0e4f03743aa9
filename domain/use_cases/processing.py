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
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import partial
from uuid import UUID

from domain.availability import Span
from domain.decisions import decide_batch
from domain.errors import Unavailable
from domain.events import REQUEST_FAILED, Event
from domain.model import BookingRequest, Provider, RequestStatus
from domain.ports import (
    NoObserver,
    Notifier,
    Outcome,
    ProcessingObserver,
    UnitOfWork,
    UnitsOfWork,
    WakeupQueue,
)
from domain.schedule import Interval

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


@dataclass(frozen=True, slots=True)
class ProcessingLimits:
    max_attempts: int = 3
    batch_size: int = 200  # requests decided in one transaction at most
    max_rounds: int = 50  # batches per wake-up, so one busy partition cannot hog a worker
    retry_pause_seconds: float = 0.1
    # A batch that lost its database connection is tried again at once, this many times,
    # without counting an attempt: the request did nothing wrong.
    reconnect_retries: int = 5


def _reach(requests: list[BookingRequest], providers: dict[UUID, Provider]) -> Span | None:
    """The real time within which a booking could stand in the way of these requests."""
    moments = [
        (r.start, providers[r.provider_id])
        for r in requests
        if r.start is not None and r.provider_id in providers
    ]
    if not moments:
        return None
    margin = timedelta(
        minutes=max(
            p.slot_minutes + p.buffer_before_minutes + p.buffer_after_minutes for _, p in moments
        )
    )
    return Span(min(t for t, _ in moments) - margin, max(t for t, _ in moments) + margin)


async def _hours(
    uow: UnitOfWork, requests: list[BookingRequest], providers: dict[UUID, Provider]
) -> dict[UUID, dict[date, tuple[Interval, ...]]]:
    """Per provider, its hours on the local dates its requests ask for."""
    wanted = {
        (r.provider_id, r.start.astimezone(providers[r.provider_id].rules.zone).date())
        for r in requests
        if r.start is not None and r.provider_id in providers
    }
    overrides = await uow.overrides.on_days({pid for pid, _ in wanted}, {day for _, day in wanted})
    hours: dict[UUID, dict[date, tuple[Interval, ...]]] = {}
    for provider_id, day in wanted:
        override = overrides.get((provider_id, day))
        weekly = providers[provider_id].weekly.for_weekday(day.weekday())
        hours.setdefault(provider_id, {})[day] = weekly if override is None else override
    return hours


async def _apply_batch(
    requests: Collection[BookingRequest],
    uow: UnitOfWork,
    notifier: Notifier,
    now: datetime,
    observer: ProcessingObserver,
) -> list[UUID]:
    """Decide those of the requests still pending, with their providers locked, in one
    transaction; returns the ids decided.

    Reads what the batch touches in a fixed number of statements (whatever its size and
    however many providers it spans), decides each provider's requests in memory in accept
    order, and writes the results back.
    """
    async with uow:
        await uow.lock_providers({r.provider_id for r in requests})
        pending = await uow.requests.still_pending(requests)
        if not pending:
            return []
        by_id = {r.id: r for r in pending}
        providers = await uow.providers.get_many({r.provider_id for r in pending})
        hours = await _hours(uow, pending, providers)
        reach = _reach(pending, providers)
        confirmed = await uow.bookings.confirmed_spans(set(providers), reach) if reach else {}
        targets = await uow.bookings.get_many({r.booking_id for r in pending if r.booking_id})
        by_provider: dict[UUID, list[BookingRequest]] = {}
        for request in pending:  # oldest first, so each provider's list is in accept order
            by_provider.setdefault(request.provider_id, []).append(request)
        decisions = [
            (
                provider_id,
                decide_batch(
                    providers.get(provider_id),
                    requests,
                    hours.get(provider_id, {}),
                    targets,
                    confirmed.get(provider_id, []),
                    now,
                ),
            )
            for provider_id, requests in by_provider.items()
        ]
        await uow.bookings.add_many([b for _, d in decisions for b in d.created])
        await uow.bookings.update_many([b for _, d in decisions for b in d.changed])
        await uow.requests.finish_many(
            [(by_id[request_id], o) for _, d in decisions for request_id, o in d.outcomes]
        )
        await uow.events.add_many([e for _, d in decisions for e in d.events], now)
        decided = [request_id for _, d in decisions for request_id, _ in d.outcomes]
        versions = await uow.providers.bump_versions(
            {provider_id for provider_id, d in decisions if d.changes_bookings}
        )
        # Cache versions move before waiting readers hear of the outcome, so nobody who has
        # seen a booking succeed is offered its slot again.
        for provider_id, version in versions.items():
            uow.after_commit(partial(notifier.availability_changed, provider_id, version))
        uow.after_commit(partial(notifier.requests_completed, decided))
        uow.after_commit(notifier.events_recorded)
        await uow.commit()
    for _, decision in decisions:
        for request_id, outcome in decision.outcomes:
            observer.decided(by_id[request_id], outcome)
    return decided


async def _fail_request(
    counted: BookingRequest,
    uow: UnitOfWork,
    notifier: Notifier,
    now: datetime,
    observer: ProcessingObserver,
) -> None:
    attempts = counted.attempts
    async with uow:
        still = await uow.requests.still_pending([counted])
        if not still:
            return
        request = still[0]
        message = f"the request could not be processed after {attempts - 1} attempts"
        outcome = Outcome(
            RequestStatus.FAILED, now, error_code="internal_error", error_message=message
        )
        await uow.requests.finish_many([(request, outcome)])
        failed = dataclasses.replace(
            request,
            status=RequestStatus.FAILED,
            error_code="internal_error",
            error_message=message,
            completed_at=now,
        )
        await uow.events.add_many([Event(REQUEST_FAILED, failed, None)], now)
        uow.after_commit(lambda: notifier.requests_completed([request.id]))
        uow.after_commit(notifier.events_recorded)
        await uow.commit()
    observer.decided(request, outcome)
    log.error("booking request %s failed after %d attempts", request.id, attempts - 1)


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


async def _try(
    requests: list[BookingRequest],
    units: UnitsOfWork,
    notifier: Notifier,
    clock: Clock,
    limits: ProcessingLimits,
    attempts: int,
    observer: ProcessingObserver,
) -> list[UUID]:
    observer.batch_started(len(requests))
    try:
        for retry in range(limits.reconnect_retries):
            try:
                return await _apply_batch(
                    requests, units.unit_of_work(), notifier, clock(), observer
                )
            except Unavailable as exc:
                # Nothing was committed (the batch commits once, last); a commit whose answer
                # was lost is found out on the retry, which reads only what is still pending.
                log.warning("deciding %d requests: %s; trying again", len(requests), exc)
                await asyncio.sleep(limits.retry_pause_seconds * (retry + 1))
        return await _apply_batch(requests, units.unit_of_work(), notifier, clock(), observer)
    except Exception:
        observer.batch_failed(len(requests))
        log.exception("deciding %d requests failed (attempt %d)", len(requests), attempts)
        await asyncio.sleep(limits.retry_pause_seconds * attempts)
        return []


async def _alone(
    provider_id: UUID,
    units: UnitsOfWork,
    notifier: Notifier,
    clock: Clock,
    limits: ProcessingLimits,
    observer: ProcessingObserver,
) -> list[UUID]:
    """Try the provider's oldest pending request by itself, counting the attempt first."""
    async with units.single_writer() as uow:
        counted = await uow.requests.count_attempt(provider_id)
        await uow.commit()
    if counted is None:
        return []
    if counted.attempts > limits.max_attempts:
        await _fail_request(counted, units.unit_of_work(), notifier, clock(), observer)
        return [counted.id]
    return await _try([counted], units, notifier, clock, limits, counted.attempts, observer)


async def process_wakeups(
    woken: Sequence[tuple[UUID, UUID]],
    units: UnitsOfWork,
    notifier: Notifier,
    clock: Clock,
    limits: ProcessingLimits = ProcessingLimits(),
    recent: RecentlyDecided | None = None,
    observer: ProcessingObserver | None = None,
) -> int:
    """Decide the pending requests of the providers named by wake-ups `(provider, request)`.

    Every provider's requests are applied oldest first; one transaction decides many
    providers' requests at once when many are waiting. A wake-up whose request this
    process decided lately costs nothing. Before a batch an attempt is counted at each of
    its requests (in a transaction of its own); a provider whose oldest pending request
    shows an attempt that never finished is handled alone, oldest request first, so a
    request that keeps failing is found out and marked failed after `max_attempts`.
    Returns how many requests were decided.
    """
    recent = recent if recent is not None else RecentlyDecided()
    observer = observer or NoObserver()
    providers = {provider_id for provider_id, request_id in woken if request_id not in recent}
    decided = 0
    for _ in range(limits.max_rounds):
        if not providers:
            break
        async with units.reader() as uow:
            pending = await uow.requests.pending_for_providers(providers, limits.batch_size)
        if not pending:
            break
        heads: dict[UUID, BookingRequest] = {}
        for request in pending:
            heads.setdefault(request.provider_id, request)
        unfinished = {pid for pid, head in heads.items() if head.attempts > 0}
        for provider_id in sorted(unfinished):
            ids = await _alone(provider_id, units, notifier, clock, limits, observer)
            recent.add_all(ids)
            decided += len(ids)
        batch = [r for r in pending if r.provider_id not in unfinished]
        ids = []
        if batch:
            async with units.single_writer() as uow:
                await uow.requests.count_attempts(batch)
                await uow.commit()
            ids = await _try(batch, units, notifier, clock, limits, 1, observer)
            recent.add_all(ids)
            decided += len(ids)
        if len(pending) < limits.batch_size and not unfinished and len(ids) == len(batch):
            break  # everything these providers had pending was decided in this round
        providers = set(heads)
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
