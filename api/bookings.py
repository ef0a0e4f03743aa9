"""Bookings: requests to book, reschedule and cancel (202 + a request to poll), and reading them."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID
from zoneinfo import ZoneInfo

import msgspec
from litestar import Controller, Response, get, post
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.status_codes import HTTP_202_ACCEPTED

from api.common import Cursor, Limit, PageBody, parse_date_time, parse_day, parse_id
from api.dependencies import Accepting, CallbackCheck, Injected, Reading
from api.errors import READ_PROBLEMS, WRITE_PROBLEMS
from domain.availability import day_window
from domain.commands import RequestBooking, RequestCancel, RequestReschedule
from domain.errors import FieldError, ValidationFailed
from domain.model import Booking, BookingStatus, RequestStatus
from domain.ports import BookingFilter
from domain.schedule import load_zone
from domain.use_cases import booking_requests as use_cases
from domain.use_cases.booking_requests import Accepted, Intake, RequestView

MAX_METADATA_BYTES = 4096
MAX_WAIT_SECONDS = 30

Start = Annotated[
    str,
    msgspec.Meta(
        max_length=64,
        description="RFC 3339; without an offset it is read in the request's time zone.",
        examples=["2026-12-01T09:00:00-05:00"],
    ),
]


class BookingCreate(msgspec.Struct):
    provider_id: UUID
    start: Start
    customer_id: Annotated[str, msgspec.Meta(max_length=255)] | None = None
    callback_url: Annotated[str, msgspec.Meta(max_length=2048)] | None = None
    metadata: dict[str, Any] | None = None


class RescheduleBody(msgspec.Struct):
    start: Start


class CancelBody(msgspec.Struct):
    reason: Annotated[str, msgspec.Meta(max_length=1000)] | None = None


class BookingBody(msgspec.Struct):
    id: UUID
    provider_id: UUID
    customer_id: str | None
    start: datetime
    end: datetime
    status: str
    metadata: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    cancelled_at: datetime | None
    cancel_reason: str | None


class ErrorBody(msgspec.Struct):
    code: str
    message: str


class BookingRequestBody(msgspec.Struct):
    id: UUID
    kind: str
    status: str
    provider_id: UUID
    booking_id: UUID | None
    start: datetime | None
    booking: BookingBody | None
    error: ErrorBody | None
    created_at: datetime
    completed_at: datetime | None


def parse_start(raw: str, field: str = "start") -> datetime:
    return parse_date_time(raw, field)


def booking_body(booking: Booking, zone_name: str) -> BookingBody:
    zone = load_zone(zone_name)
    return BookingBody(
        id=booking.id,
        provider_id=booking.provider_id,
        customer_id=booking.customer_id,
        start=booking.start.astimezone(zone),
        end=booking.end.astimezone(zone),
        status=booking.status.value,
        metadata=booking.metadata,
        created_at=booking.created_at,
        updated_at=booking.updated_at,
        cancelled_at=booking.cancelled_at,
        cancel_reason=booking.cancel_reason,
    )


def request_body(view: RequestView, shown_in: str | None = None) -> BookingRequestBody:
    request = view.request
    zone = load_zone(shown_in or view.zone)
    error = (
        ErrorBody(request.error_code, request.error_message or request.error_code)
        if request.error_code
        else None
    )
    return BookingRequestBody(
        id=request.id,
        kind=request.kind.value,
        status=request.status.value,
        provider_id=request.provider_id,
        booking_id=request.booking_id,
        start=request.start.astimezone(zone) if request.start else None,
        booking=booking_body(view.booking, zone.key) if view.booking else None,
        error=error,
        created_at=request.created_at,
        completed_at=request.completed_at,
    )


def _accepted(accepted: Accepted, shown_in: str | None) -> Response[BookingRequestBody]:
    request = accepted.request
    body = request_body(RequestView(request, None, accepted.zone), shown_in)
    return Response(
        body,
        status_code=HTTP_202_ACCEPTED,
        headers={"Location": f"/v1/booking-requests/{request.id}"},
    )


async def _check_callback(url: str | None, check: CallbackCheck) -> None:
    if url is None:
        return
    problem = await check(url)
    if problem is not None:
        raise ValidationFailed([FieldError("callback_url", f"{url[:200]!r} {problem}")])


def _check_metadata(metadata: dict[str, Any] | None) -> None:
    if metadata is not None and len(msgspec.json.encode(metadata)) > MAX_METADATA_BYTES:
        raise ValidationFailed(
            [FieldError("metadata", f"must be at most {MAX_METADATA_BYTES} bytes of JSON")]
        )


class BookingController(Controller):
    path = "/bookings"
    tags = ["bookings"]

    @post("/", status_code=HTTP_202_ACCEPTED, responses=WRITE_PROBLEMS)
    async def book(
        self,
        data: JSONBody[BookingCreate],
        accepting: Injected[Accepting],
    ) -> Response[BookingRequestBody]:
        """Request a booking; poll the request at `Location` for the outcome."""
        intake, zone, callback_check = accepting.intake, accepting.zone, accepting.check_callback
        _check_metadata(data.metadata)
        await _check_callback(data.callback_url, callback_check)
        accepted = await use_cases.request_booking(
            RequestBooking(
                provider_id=data.provider_id,
                start=parse_start(data.start),
                zone=zone,
                customer_id=data.customer_id,
                callback_url=data.callback_url,
                metadata=data.metadata,
            ),
            intake,
        )
        return _accepted(accepted, zone.key if zone else None)

    @post("/{booking_id:str}/reschedule", status_code=HTTP_202_ACCEPTED, responses=WRITE_PROBLEMS)
    async def reschedule(
        self,
        booking_id: FromPath[str],
        data: JSONBody[RescheduleBody],
        accepting: Injected[Accepting],
    ) -> Response[BookingRequestBody]:
        """Request moving a booking to another slot."""
        intake, zone = accepting.intake, accepting.zone
        accepted = await use_cases.request_reschedule(
            RequestReschedule(parse_id(booking_id, "booking"), parse_start(data.start), zone),
            intake,
        )
        return _accepted(accepted, zone.key if zone else None)

    @post("/{booking_id:str}/cancel", status_code=HTTP_202_ACCEPTED, responses=WRITE_PROBLEMS)
    async def cancel(
        self,
        booking_id: FromPath[str],
        intake: Injected[Intake],
        data: JSONBody[CancelBody | None] = None,
    ) -> Response[BookingRequestBody]:
        """Request cancelling a booking."""
        accepted = await use_cases.request_cancel(
            RequestCancel(parse_id(booking_id, "booking"), data.reason if data else None),
            intake,
        )
        return _accepted(accepted, None)

    @get("/{booking_id:str}", responses=READ_PROBLEMS)
    async def get_one(
        self,
        booking_id: FromPath[str],
        reading: Injected[Reading],
    ) -> BookingBody:
        """A booking of yours (admin: anyone's)."""
        client, zone, reader, notifier = (
            reading.client,
            reading.zone,
            reading.reader,
            reading.notifier,
        )
        view = await use_cases.view_booking(
            parse_id(booking_id, "booking"), client, reader, notifier
        )
        return booking_body(view.booking, zone.key if zone else view.zone)

    @get("/", responses=READ_PROBLEMS)
    async def list_all(
        self,
        reading: Injected[Reading],
        provider_id: Annotated[str | None, QueryParameter(max_length=36)] = None,
        customer_id: Annotated[str | None, QueryParameter(max_length=255)] = None,
        status: Annotated[BookingStatus | None, QueryParameter()] = None,
        from_: Annotated[str | None, QueryParameter(name="from", max_length=64)] = None,
        to: Annotated[str | None, QueryParameter(max_length=64)] = None,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> PageBody[BookingBody]:
        """Your bookings (admin: everyone's), by start time; `from`/`to` bound the start."""
        client, zone, reader, notifier = (
            reading.client,
            reading.zone,
            reading.reader,
            reading.notifier,
        )
        where = BookingFilter(
            provider_id=_filter_id(provider_id),
            customer_id=customer_id,
            status=status,
            start_from=_bound(from_, "from", zone, end=False),
            start_before=_bound(to, "to", zone, end=True),
        )
        page = await use_cases.list_bookings(where, client, reader, notifier, limit, cursor)
        return PageBody(
            [booking_body(v.booking, zone.key if zone else v.zone) for v in page.items],
            page.next_cursor,
        )


def _filter_id(raw: str | None) -> UUID | None:
    if raw is None:
        return None
    try:
        return UUID(raw)
    except ValueError:
        raise ValidationFailed([FieldError("provider_id", "is not a UUID")]) from None


def _bound(raw: str | None, field: str, zone: ZoneInfo | None, end: bool) -> datetime | None:
    """A date (a whole calendar day in the request's zone, UTC without one) or a date-time."""
    if raw is None:
        return None
    if len(raw) == 10:
        day = parse_day(raw, field)
        window = day_window(day, day, zone or load_zone("UTC"))
        return window.end if end else window.start
    moment = parse_start(raw, field)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone or load_zone("UTC"))
    return moment


class BookingRequestController(Controller):
    path = "/booking-requests"
    tags = ["bookings"]

    @get("/{request_id:str}", responses=READ_PROBLEMS)
    async def get_one(
        self,
        request_id: FromPath[str],
        reading: Injected[Reading],
        wait: Annotated[
            float,
            QueryParameter(
                ge=0,
                le=MAX_WAIT_SECONDS,
                description="Hold the answer up to this many seconds until the outcome is known.",
            ),
        ] = 0,
    ) -> Response[BookingRequestBody]:
        """The status of a booking request; `pending` answers carry `Retry-After: 1`."""
        client, zone, reader, notifier = (
            reading.client,
            reading.zone,
            reading.reader,
            reading.notifier,
        )
        completions, long_polls = reading.completions, reading.long_polls
        ident = parse_id(request_id, "booking request")

        async def look() -> RequestView:
            return await use_cases.view_request(ident, client, reader, notifier)

        if wait > 0:
            # Capped per key and per process (429 past either); no database connection is
            # held while waiting: each look takes one and gives it back.
            async with (
                long_polls.hold(client.id),
                completions.waiting(ident) as completed,
            ):
                view = await look()
                if view.request.status is RequestStatus.PENDING:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(completed.wait(), wait)
                    view = await look()
        else:
            view = await look()
        headers = {"Retry-After": "1"} if view.request.status is RequestStatus.PENDING else {}
        return Response(request_body(view, zone.key if zone else None), headers=headers)
