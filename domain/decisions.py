"""Deciding a batch of one provider's requests, in memory, in accept order.

Pure: the caller reads what the batch touches (the provider, its hours on the days asked
for, the bookings named by reschedules and cancels, and the spans confirmed bookings block
around the times asked for) and writes back what this returns.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from uuid import UUID, uuid4

from domain.availability import Rules, Slot, Span
from domain.booking_rules import check_start
from domain.errors import BookingRejected
from domain.events import (
    BOOKING_CANCELLED,
    BOOKING_CONFIRMED,
    BOOKING_RESCHEDULED,
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
from domain.ports import Outcome
from domain.schedule import Interval


@dataclass
class BatchDecision:
    created: list[Booking] = field(default_factory=list)
    changed: list[Booking] = field(default_factory=list)
    outcomes: list[tuple[UUID, Outcome]] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)

    @property
    def changes_bookings(self) -> bool:
        return bool(self.created or self.changed)


class _Taken:
    """Spans blocked by confirmed bookings, as the batch changes them."""

    def __init__(self, confirmed: Sequence[tuple[UUID, Span]]) -> None:
        self._spans = dict(confirmed)

    def overlaps(self, span: Span, excluding: UUID | None = None) -> bool:
        return any(
            other.overlaps(span) for ident, other in self._spans.items() if ident != excluding
        )

    def overlaps_any(
        self, shrink: Callable[[Span], Span], span: Span, excluding: UUID | None = None
    ) -> bool:
        """Whether `span` overlaps any blocked span once `shrink` has been applied to it."""
        return any(
            shrink(other).overlaps(span)
            for ident, other in self._spans.items()
            if ident != excluding
        )

    def put(self, booking: Booking) -> None:
        self._spans[booking.id] = booking.blocked

    def drop(self, booking_id: UUID) -> None:
        self._spans.pop(booking_id, None)


def decide_batch(
    provider: Provider | None,
    requests: Sequence[BookingRequest],
    hours: Mapping[date, tuple[Interval, ...]],
    targets: Mapping[UUID, Booking],
    confirmed: Sequence[tuple[UUID, Span]],
    now: datetime,
) -> BatchDecision:
    """Outcomes of `requests` (oldest first), each seeing the effects of those before it."""
    decision = BatchDecision()
    taken = _Taken(confirmed)
    bookings = dict(targets)  # every booking the batch has touched, as it leaves them
    for request in requests:
        try:
            if provider is None:
                raise BookingRejected(
                    "provider_not_found", f"provider {request.provider_id} not found"
                )
            booking = _apply(provider, request, hours, bookings, taken, now)
        except BookingRejected as rejection:
            outcome = Outcome(
                RequestStatus.REJECTED,
                now,
                error_code=rejection.code,
                error_message=rejection.detail,
            )
            decision.outcomes.append((request.id, outcome))
            decision.events.append(Event(REQUEST_REJECTED, _done(request, outcome), None))
            continue
        bookings[booking.id] = booking
        outcome = Outcome(RequestStatus.SUCCEEDED, now, booking_id=booking.id)
        decision.outcomes.append((request.id, outcome))
        decision.events.append(Event(_EVENT_OF[request.kind], _done(request, outcome), booking))
    decision.created = [b for ident, b in bookings.items() if ident not in targets]
    decision.changed = [
        b for ident, b in bookings.items() if ident in targets and b is not targets[ident]
    ]
    return decision


_EVENT_OF = {
    RequestKind.BOOK: BOOKING_CONFIRMED,
    RequestKind.RESCHEDULE: BOOKING_RESCHEDULED,
    RequestKind.CANCEL: BOOKING_CANCELLED,
}


def _done(request: BookingRequest, outcome: Outcome) -> BookingRequest:
    return dataclasses.replace(
        request,
        status=outcome.status,
        booking_id=outcome.booking_id or request.booking_id,
        error_code=outcome.error_code,
        error_message=outcome.error_message,
        completed_at=outcome.completed_at,
    )


def _apply(
    provider: Provider,
    request: BookingRequest,
    hours: Mapping[date, tuple[Interval, ...]],
    bookings: Mapping[UUID, Booking],
    taken: _Taken,
    now: datetime,
) -> Booking:
    rules = provider.rules
    if request.kind is RequestKind.CANCEL:
        cancelled = dataclasses.replace(
            _target(request, bookings),
            status=BookingStatus.CANCELLED,
            cancelled_at=now,
            cancel_reason=request.reason,
            updated_at=now,
        )
        taken.drop(cancelled.id)
        return cancelled
    assert request.start is not None
    moving = _target(request, bookings) if request.kind is RequestKind.RESCHEDULE else None
    day = request.start.astimezone(rules.zone).date()
    slot = check_start(rules, hours.get(day, ()), request.start, request.created_at, now)
    blocked = rules.blocked_span(slot.start, slot.end)
    if taken.overlaps(blocked, excluding=moving.id if moving else None):
        raise BookingRejected("slot_unavailable", _unavailable(rules, slot, taken, moving))
    if moving is not None:
        booking = dataclasses.replace(
            moving, start=slot.start, end=slot.end, blocked=blocked, updated_at=now
        )
    else:
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
    taken.put(booking)
    return booking


def _unavailable(rules: Rules, slot: Slot, taken: _Taken, moving: Booking | None) -> str:
    """Why a slot cannot be had: another booking's time, or only the buffers around it.

    A booking's own time is its blocked span less the provider's buffers (those it was made
    with may have differed since; the code is `slot_unavailable` either way).
    """
    before = timedelta(minutes=rules.buffer_before_minutes)
    after = timedelta(minutes=rules.buffer_after_minutes)
    own = Span(slot.start, slot.end)
    if taken.overlaps_any(
        lambda span: Span(span.start + before, max(span.start + before, span.end - after)),
        own,
        excluding=moving.id if moving else None,
    ):
        return "that slot is already booked"
    return (
        "that slot is free, but too close to another booking: the provider keeps "
        f"{rules.buffer_before_minutes} minutes before and {rules.buffer_after_minutes} minutes "
        "after each booking clear"
    )


def _target(request: BookingRequest, bookings: Mapping[UUID, Booking]) -> Booking:
    booking = bookings.get(request.booking_id) if request.booking_id else None
    if booking is None or booking.provider_id != request.provider_id:
        raise BookingRejected("booking_not_found", f"booking {request.booking_id} not found")
    if booking.status is BookingStatus.CANCELLED:
        raise BookingRejected("booking_cancelled", f"booking {booking.id} is cancelled")
    return booking
