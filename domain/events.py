"""Events: what happened to bookings, as the outbox records and webhooks deliver them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from domain.model import Booking, BookingRequest

BOOKING_CONFIRMED = "booking.confirmed"
BOOKING_RESCHEDULED = "booking.rescheduled"
BOOKING_CANCELLED = "booking.cancelled"
REQUEST_REJECTED = "booking_request.rejected"
REQUEST_FAILED = "booking_request.failed"
# What a webhook endpoint may subscribe to.
EVENT_TYPES = (
    BOOKING_CONFIRMED,
    BOOKING_RESCHEDULED,
    BOOKING_CANCELLED,
    REQUEST_REJECTED,
    REQUEST_FAILED,
)


@dataclass(frozen=True, slots=True)
class Event:
    type: str
    request: BookingRequest
    booking: Booking | None


def _instant(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def booking_snapshot(booking: Booking) -> dict[str, Any]:
    return {
        "id": str(booking.id),
        "provider_id": str(booking.provider_id),
        "customer_id": booking.customer_id,
        "start": _instant(booking.start),
        "end": _instant(booking.end),
        "status": booking.status.value,
        "metadata": booking.metadata,
        "created_at": _instant(booking.created_at),
        "updated_at": _instant(booking.updated_at),
        "cancelled_at": _instant(booking.cancelled_at),
        "cancel_reason": booking.cancel_reason,
    }


def request_snapshot(request: BookingRequest) -> dict[str, Any]:
    error = (
        {"code": request.error_code, "message": request.error_message}
        if request.error_code
        else None
    )
    return {
        "id": str(request.id),
        "kind": request.kind.value,
        "status": request.status.value,
        "provider_id": str(request.provider_id),
        "booking_id": None if request.booking_id is None else str(request.booking_id),
        "start": _instant(request.start),
        "error": error,
        "created_at": _instant(request.created_at),
        "completed_at": _instant(request.completed_at),
    }


def event_payload(event: Event) -> dict[str, object]:
    return {
        "booking": None if event.booking is None else booking_snapshot(event.booking),
        "request": request_snapshot(event.request),
    }
