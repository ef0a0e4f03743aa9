"""Deciding a batch in memory: each request sees the effects of those accepted before it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from domain.availability import Span
from domain.decisions import decide_batch
from domain.model import (
    Booking,
    BookingRequest,
    BookingStatus,
    Provider,
    RequestKind,
    RequestStatus,
)
from domain.schedule import Interval, parse_weekly_schedule

NOW = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
MONDAY = datetime(2026, 11, 30, tzinfo=UTC)  # all times below are UTC
CLIENT = uuid.uuid4()


def provider(**settings: int) -> Provider:
    return Provider(
        id=uuid.uuid4(),
        name=None,
        timezone="UTC",
        slot_minutes=30,
        weekly=parse_weekly_schedule({"monday": [("09:00", "17:00")]}),
        buffer_before_minutes=settings.get("before", 0),
        buffer_after_minutes=settings.get("after", 0),
        min_notice_minutes=0,
        max_advance_days=365,
        version=1,
        created_at=NOW,
        updated_at=NOW,
    )


def at(hour: int, minute: int = 0) -> datetime:
    return MONDAY + timedelta(hours=hour, minutes=minute)


def request(
    owner: Provider, kind: RequestKind, start: datetime | None, booking: uuid.UUID | None = None
) -> BookingRequest:
    return BookingRequest(
        id=uuid.uuid4(),
        seq=0,
        client_id=CLIENT,
        kind=kind,
        provider_id=owner.id,
        booking_id=booking,
        start=start,
        status=RequestStatus.PENDING,
        created_at=NOW,
    )


def booking(
    owner: Provider, start: datetime, status: BookingStatus = BookingStatus.CONFIRMED
) -> Booking:
    return Booking(
        id=uuid.uuid4(),
        client_id=CLIENT,
        provider_id=owner.id,
        customer_id=None,
        start=start,
        end=start + timedelta(minutes=30),
        blocked=Span(start, start + timedelta(minutes=30)),
        status=status,
        metadata={},
        created_at=NOW,
        updated_at=NOW,
    )


HOURS = {MONDAY.date(): (Interval(540, 1020),)}


def codes(decision: object) -> list[str | None]:
    return [o.error_code for _, o in decision.outcomes]  # type: ignore[attr-defined]


def test_the_first_of_two_requests_for_one_slot_wins() -> None:
    owner = provider()
    first, second = (request(owner, RequestKind.BOOK, at(10)) for _ in range(2))
    decision = decide_batch(owner, [first, second], HOURS, {}, [], NOW)
    assert codes(decision) == [None, "slot_unavailable"]
    assert len(decision.created) == 1
    assert decision.created[0].start == at(10)
    assert [e.type for e in decision.events] == ["booking.confirmed", "booking_request.rejected"]


def test_buffers_keep_bookings_apart_inside_one_batch() -> None:
    owner = provider(after=30)
    ten, half_past, eleven = (
        request(owner, RequestKind.BOOK, t) for t in (at(10), at(10, 30), at(11))
    )
    decision = decide_batch(owner, [ten, half_past, eleven], HOURS, {}, [], NOW)
    assert codes(decision) == [None, "slot_unavailable", None]
    assert decision.created[0].blocked == Span(at(10), at(11))


def test_existing_bookings_block_and_a_cancel_frees_the_slot_for_later_requests() -> None:
    owner = provider()
    existing = booking(owner, at(9))
    blocked = request(owner, RequestKind.BOOK, at(9))
    cancel = request(owner, RequestKind.CANCEL, None, existing.id)
    rebook = request(owner, RequestKind.BOOK, at(9))
    decision = decide_batch(
        owner,
        [blocked, cancel, rebook],
        HOURS,
        {existing.id: existing},
        [(existing.id, existing.blocked)],
        NOW,
    )
    assert codes(decision) == ["slot_unavailable", None, None]
    assert [b.status for b in decision.changed] == [BookingStatus.CANCELLED]
    assert len(decision.created) == 1


def test_a_reschedule_may_move_within_its_own_span_and_not_onto_another() -> None:
    owner = provider()
    mine, other = booking(owner, at(9)), booking(owner, at(11))
    confirmed = [(mine.id, mine.blocked), (other.id, other.blocked)]
    onto_other = request(owner, RequestKind.RESCHEDULE, at(11), mine.id)
    half_later = request(owner, RequestKind.RESCHEDULE, at(9, 30), mine.id)
    decision = decide_batch(
        owner, [onto_other, half_later], HOURS, {mine.id: mine, other.id: other}, confirmed, NOW
    )
    assert codes(decision) == ["slot_unavailable", None]
    assert [b.start for b in decision.changed] == [at(9, 30)]
    assert decision.created == []


def test_unknown_cancelled_and_foreign_bookings_are_rejected_with_their_codes() -> None:
    owner, stranger = provider(), provider()
    gone = booking(owner, at(9), BookingStatus.CANCELLED)
    theirs = booking(stranger, at(10))
    requests = [
        request(owner, RequestKind.CANCEL, None, uuid.uuid4()),
        request(owner, RequestKind.CANCEL, None, gone.id),
        request(owner, RequestKind.RESCHEDULE, at(12), theirs.id),
    ]
    decision = decide_batch(owner, requests, HOURS, {gone.id: gone, theirs.id: theirs}, [], NOW)
    assert codes(decision) == ["booking_not_found", "booking_cancelled", "booking_not_found"]
    assert not decision.changes_bookings


def test_rules_are_checked_again_when_deciding() -> None:
    owner = provider()
    decision = decide_batch(
        owner,
        [
            request(owner, RequestKind.BOOK, at(8)),
            request(owner, RequestKind.BOOK, at(9, 10)),
            request(owner, RequestKind.BOOK, NOW - timedelta(hours=1)),
        ],
        HOURS,
        {},
        [],
        NOW,
    )
    assert codes(decision) == ["outside_hours", "not_on_slot_boundary", "in_past"]


def test_without_a_provider_every_request_is_rejected() -> None:
    owner = provider()
    decision = decide_batch(None, [request(owner, RequestKind.BOOK, at(10))], HOURS, {}, [], NOW)
    assert codes(decision) == ["provider_not_found"]
