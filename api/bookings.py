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
from litestar.datastructures import ResponseHeader
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Body, QueryParameter
from litestar.status_codes import HTTP_202_ACCEPTED

from api.common import (
    CALLBACK_URL_PATTERN,
    START_PATTERN,
    BookingIdPath,
    Cursor,
    Limit,
    PageBody,
    RequestIdPath,
    parse_date_time,
    parse_day,
    parse_id,
)
from api.dependencies import Accepting, CallbackCheck, Injected, Reading
from api.errors import READ_PROBLEMS, WRITE_PROBLEMS, WRITE_STATUSES, problems
from api.examples import (
    BOOKING,
    CANCELLED_BOOKING,
    FAST_REJECTIONS,
    PENDING_REQUEST,
    PROVIDER_ID,
    REJECTIONS,
    REQUEST_OUTCOMES,
    SUCCEEDED_REQUEST,
    examples,
)
from domain.availability import day_window
from domain.commands import RequestBooking, RequestCancel, RequestReschedule
from domain.errors import FieldError, ValidationFailed
from domain.model import Booking, BookingStatus, RequestKind, RequestStatus
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
        description="When the slot starts: an RFC 3339 date-time "
        "(`2026-12-07T09:00:00-05:00`). Without an offset it is read in the request's time "
        "zone. Must be on the provider's slot grid, inside its hours, after its notice and "
        "within its horizon (else 422 with the rejection code). A date alone is a 422.",
        examples=["2026-12-07T09:00:00-05:00"],
        pattern=START_PATTERN,
    ),
]


class BookingCreate(msgspec.Struct):
    """A booking to request; the outcome is decided by a worker."""

    provider_id: Annotated[UUID, msgspec.Meta(description="The provider to book.")]
    start: Start
    customer_id: (
        Annotated[
            str,
            msgspec.Meta(
                max_length=255, description="Your own reference for who the booking is for."
            ),
        ]
        | None
    ) = None
    callback_url: (
        Annotated[
            str,
            msgspec.Meta(
                max_length=2048,
                description="An https or http URL that receives this request's events, signed "
                "with your signing secret. Private, loopback and link-local targets are a 422 "
                "unless the service allows them.",
                pattern=CALLBACK_URL_PATTERN,
            ),
        ]
        | None
    ) = None
    metadata: (
        Annotated[
            dict[str, Any],
            msgspec.Meta(description="Any JSON object up to 4 KiB; kept with the booking."),
        ]
        | None
    ) = None


class RescheduleBody(msgspec.Struct):
    """Where to move the booking."""

    start: Start


class CancelBody(msgspec.Struct):
    """Why the booking is cancelled (optional)."""

    reason: (
        Annotated[str, msgspec.Meta(max_length=1000, description="Kept with the booking.")] | None
    ) = None


class BookingBody(msgspec.Struct):
    """A booking, its times in the request's zone (else the provider's)."""

    id: Annotated[UUID, msgspec.Meta(description="The booking's id.")]
    provider_id: Annotated[UUID, msgspec.Meta(description="The provider booked.")]
    customer_id: Annotated[str | None, msgspec.Meta(description="Your reference, as sent.")]
    start: Annotated[datetime, msgspec.Meta(description="When it starts, RFC 3339.")]
    end: Annotated[datetime, msgspec.Meta(description="`start` + the provider's slot length.")]
    status: Annotated[BookingStatus, msgspec.Meta(description="`confirmed` or `cancelled`.")]
    metadata: Annotated[dict[str, Any], msgspec.Meta(description="As sent when booking.")]
    created_at: Annotated[datetime, msgspec.Meta(description="When it was confirmed.")]
    updated_at: Annotated[datetime, msgspec.Meta(description="Its last change.")]
    cancelled_at: Annotated[datetime | None, msgspec.Meta(description="When it was cancelled.")]
    cancel_reason: Annotated[str | None, msgspec.Meta(description="The reason given, if any.")]


class ErrorBody(msgspec.Struct):
    """Why a request was rejected (or failed)."""

    code: Annotated[
        str,
        msgspec.Meta(
            description="`slot_unavailable`, `outside_hours`, `not_on_slot_boundary`, "
            "`in_past`, `too_soon`, `too_far_ahead`, `provider_not_found`, "
            "`booking_not_found`, `booking_cancelled`; `internal_error` when it failed."
        ),
    ]
    message: Annotated[str, msgspec.Meta(description="The reason, for a person to read.")]


class BookingRequestBody(msgspec.Struct):
    """A request to book, reschedule or cancel, and how it ended."""

    id: Annotated[UUID, msgspec.Meta(description="The request's id (poll it at `Location`).")]
    kind: Annotated[RequestKind, msgspec.Meta(description="`book`, `reschedule` or `cancel`.")]
    status: Annotated[
        RequestStatus,
        msgspec.Meta(
            description="`pending` until a worker decides; then `succeeded`, `rejected` or "
            "(rarely) `failed`."
        ),
    ]
    provider_id: Annotated[UUID, msgspec.Meta(description="The provider concerned.")]
    booking_id: Annotated[
        UUID | None, msgspec.Meta(description="The booking, once one exists (null before).")
    ]
    start: Annotated[
        datetime | None, msgspec.Meta(description="The requested start (book, reschedule).")
    ]
    booking: Annotated[
        BookingBody | None,
        msgspec.Meta(
            description="The booking as `GET /v1/bookings/{id}` shows it, once succeeded."
        ),
    ]
    error: Annotated[ErrorBody | None, msgspec.Meta(description="Set when rejected or failed.")]
    created_at: Annotated[datetime, msgspec.Meta(description="When it was accepted.")]
    completed_at: Annotated[datetime | None, msgspec.Meta(description="When it was decided.")]


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
        status=booking.status,
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
        kind=request.kind,
        status=request.status,
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
    body = request_body(RequestView(request, accepted.booking, accepted.zone), shown_in)
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


_LOCATION = ResponseHeader(
    name="Location",
    description="The booking request to poll: `/v1/booking-requests/{id}`.",
    documentation_only=True,
    required=True,
)
_RETRY_AFTER = ResponseHeader(
    name="Retry-After",
    description="`1` while the request is pending: poll again after a second.",
    documentation_only=True,
)
_ACCEPTED_SPEC = ResponseSpec(
    BookingRequestBody,
    description="Accepted: the request, `pending` (an idempotent replay: as it is now)",
    generate_examples=False,
    examples=examples(pending=PENDING_REQUEST, replay_of_a_succeeded_request=SUCCEEDED_REQUEST),
)
# Booking and rescheduling fail fast with the rejection codes that need no other booking.
BOOKING_PROBLEMS = problems(
    *WRITE_STATUSES,
    extra={422: [(code, REJECTIONS[code]) for code in FAST_REJECTIONS]},
)


def _bound_query(name: str, meaning: str) -> QueryParameter:
    return QueryParameter(
        name=name,
        max_length=64,
        description=f"Bookings starting {meaning} this date (`YYYY-MM-DD`, a calendar day in "
        "the request's zone) or date-time (RFC 3339; without an offset, in the request's zone).",
        schema_extra={"any_of": [{"format": "date"}, {"format": "date-time"}]},
    )


class BookingController(Controller):
    path = "/bookings"
    tags = ["bookings"]

    @post(
        "/",
        status_code=HTTP_202_ACCEPTED,
        summary="Request a booking",
        operation_id="requestBooking",
        responses={**BOOKING_PROBLEMS, 202: _ACCEPTED_SPEC},
        response_headers=[_LOCATION],
    )
    async def book(
        self,
        data: Annotated[
            BookingCreate,
            Body(
                examples=examples(
                    new_york_morning={
                        "provider_id": PROVIDER_ID,
                        "start": "2026-12-07T09:00:00-05:00",
                        "customer_id": "patient-123",
                        "callback_url": "https://example.org/hooks/booking",
                        "metadata": {"room": "4"},
                    },
                    berlin_client_local_time={
                        "provider_id": PROVIDER_ID,
                        "start": "2026-12-07T15:00:00",
                    },
                )
            ),
        ],
        accepting: Injected[Accepting],
    ) -> Response[BookingRequestBody]:
        """Accepts a booking request at once (202) and returns it `pending`, with `Location`
        to poll. Checks that need no other booking fail fast with a 422 and the rejection code
        (`in_past`, `too_soon`, `too_far_ahead`, `outside_hours`, `not_on_slot_boundary`);
        whether the slot is free is decided by a worker (`slot_unavailable`).

        With an `Idempotency-Key`, the same key and body again return the original request
        as `GET /v1/booking-requests/{id}` shows it now, and book nothing more; the same key
        with another body is a 409. Starts are compared as instants (`Z` and `-05:00` spellings
        of one instant are the same body)."""
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

    @post(
        "/{booking_id:str}/reschedule",
        status_code=HTTP_202_ACCEPTED,
        summary="Request a reschedule",
        operation_id="requestReschedule",
        responses={**BOOKING_PROBLEMS, 202: _ACCEPTED_SPEC},
        response_headers=[_LOCATION],
    )
    async def reschedule(
        self,
        booking_id: BookingIdPath,
        data: Annotated[
            RescheduleBody,
            Body(examples=examples(an_hour_later={"start": "2026-12-07T10:00:00-05:00"})),
        ],
        accepting: Injected[Accepting],
    ) -> Response[BookingRequestBody]:
        """Accepts moving one of your bookings to another start (202, a request to poll).
        The same fast checks as booking apply; the worker moves it only if the new slot is
        free (else `slot_unavailable`, and the booking stays where it was)."""
        intake, zone = accepting.intake, accepting.zone
        accepted = await use_cases.request_reschedule(
            RequestReschedule(parse_id(booking_id, "booking"), parse_start(data.start), zone),
            intake,
        )
        return _accepted(accepted, zone.key if zone else None)

    @post(
        "/{booking_id:str}/cancel",
        status_code=HTTP_202_ACCEPTED,
        summary="Request a cancellation",
        operation_id="requestCancel",
        responses={**WRITE_PROBLEMS, 202: _ACCEPTED_SPEC},
        response_headers=[_LOCATION],
    )
    async def cancel(
        self,
        booking_id: BookingIdPath,
        intake: Injected[Intake],
        data: Annotated[
            CancelBody | None,
            Body(examples=examples(with_reason={"reason": "patient is unwell"})),
        ] = None,
    ) -> Response[BookingRequestBody]:
        """Accepts cancelling one of your bookings (202, a request to poll); the body and its
        `reason` are optional. Cancelling a cancelled booking is rejected
        `booking_cancelled`."""
        accepted = await use_cases.request_cancel(
            RequestCancel(parse_id(booking_id, "booking"), data.reason if data else None),
            intake,
        )
        return _accepted(accepted, None)

    @get(
        "/{booking_id:str}",
        summary="Get a booking",
        operation_id="getBooking",
        responses={
            **READ_PROBLEMS,
            200: ResponseSpec(
                BookingBody,
                description="The booking",
                generate_examples=False,
                examples=examples(confirmed=BOOKING, cancelled=CANCELLED_BOOKING),
            ),
        },
    )
    async def get_one(
        self,
        booking_id: BookingIdPath,
        reading: Injected[Reading],
    ) -> BookingBody:
        """One of your bookings (admin key: anyone's), times in the request's zone."""
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

    @get(
        "/",
        summary="List bookings",
        operation_id="listBookings",
        responses={
            **READ_PROBLEMS,
            200: ResponseSpec(
                PageBody[BookingBody],
                description="A page of bookings, by start",
                generate_examples=False,
                examples=examples(page={"items": [BOOKING], "next_cursor": None}),
            ),
        },
    )
    async def list_all(
        self,
        reading: Injected[Reading],
        provider_id: Annotated[
            str | None,
            QueryParameter(
                max_length=36,
                description="Only this provider's bookings.",
                schema_extra={"format": "uuid"},
            ),
        ] = None,
        customer_id: Annotated[
            str | None, QueryParameter(max_length=255, description="Only this customer's.")
        ] = None,
        status: Annotated[
            BookingStatus | None, QueryParameter(description="Only bookings in this status.")
        ] = None,
        from_: Annotated[str | None, _bound_query("from", "at or after")] = None,
        to: Annotated[str | None, _bound_query("to", "before the end of")] = None,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> PageBody[BookingBody]:
        """Your bookings (admin key: everyone's), by start time. `from` and `to` bound the
        start: a date is a whole calendar day in the request's zone (UTC without one), so
        `from=2026-12-01&to=2026-12-07` is those seven days; a date-time is an instant."""
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

    @get(
        "/{request_id:str}",
        summary="Poll a booking request",
        operation_id="getBookingRequest",
        responses={
            **READ_PROBLEMS,
            200: ResponseSpec(
                BookingRequestBody,
                description="The request; `pending` ones carry `Retry-After: 1`",
                generate_examples=False,
                examples=REQUEST_OUTCOMES,
            ),
        },
        response_headers=[_RETRY_AFTER],
    )
    async def get_one(
        self,
        request_id: RequestIdPath,
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
        """The status of one of your booking requests. While `pending` the answer carries
        `Retry-After: 1`; with `wait=N` it is held up to N seconds until the outcome is known.
        Once `succeeded`, `booking` holds the booking as `GET /v1/bookings/{id}` shows it."""
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
