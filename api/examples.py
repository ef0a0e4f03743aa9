"""Real examples for the OpenAPI document: a New York provider, a Berlin client, a booking that
succeeds and one rejected with each code. Every request example is a request the API accepts."""

from __future__ import annotations

from typing import Any

from litestar.openapi.spec import Example

PROVIDER_ID = "3f9b2c1e-8d4a-4c7e-9b1a-2e5f6a7b8c9d"
BOOKING_ID = "7c1d9e2a-5b3f-4a8e-b6d4-0f1e2d3c4b5a"
REQUEST_ID = "b2e4f6a8-1c3d-4e5f-8a7b-9c0d1e2f3a4b"
CREATED_AT = "2026-11-30T14:02:11.204817Z"

WEEK = {
    "monday": [{"start": "09:00", "end": "12:00"}, {"start": "13:00", "end": "17:00"}],
    "tuesday": [{"start": "09:00", "end": "17:00"}],
    "wednesday": [{"start": "09:00", "end": "17:00"}],
    "thursday": [{"start": "09:00", "end": "17:00"}],
    "friday": [{"start": "09:00", "end": "13:00"}],
}
EMPTY_WEEK: dict[str, list[dict[str, str]]] = {
    day: []
    for day in ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
}

NEW_PROVIDER = {
    "name": "Dr. Rivera",
    "timezone": "America/New_York",
    "slot_minutes": 30,
    "weekly_schedule": WEEK,
    "buffer_before_minutes": 0,
    "buffer_after_minutes": 10,
    "min_notice_minutes": 120,
    "max_advance_days": 365,
}
PROVIDER = {
    "id": PROVIDER_ID,
    **NEW_PROVIDER,
    "weekly_schedule": {**EMPTY_WEEK, **WEEK},
    "created_at": CREATED_AT,
    "updated_at": CREATED_AT,
}

BOOKING = {
    "id": BOOKING_ID,
    "provider_id": PROVIDER_ID,
    "customer_id": "patient-123",
    "start": "2026-12-07T09:00:00-05:00",
    "end": "2026-12-07T09:30:00-05:00",
    "status": "confirmed",
    "metadata": {"room": "4"},
    "created_at": "2026-11-30T14:05:02.918311Z",
    "updated_at": "2026-11-30T14:05:02.918311Z",
    "cancelled_at": None,
    "cancel_reason": None,
}
CANCELLED_BOOKING = {
    **BOOKING,
    "status": "cancelled",
    "updated_at": "2026-12-01T08:00:01.120044Z",
    "cancelled_at": "2026-12-01T08:00:01.120044Z",
    "cancel_reason": "patient is unwell",
}

PENDING_REQUEST = {
    "id": REQUEST_ID,
    "kind": "book",
    "status": "pending",
    "provider_id": PROVIDER_ID,
    "booking_id": None,
    "start": "2026-12-07T09:00:00-05:00",
    "booking": None,
    "error": None,
    "created_at": "2026-11-30T14:05:02.771203Z",
    "completed_at": None,
}
SUCCEEDED_REQUEST = {
    **PENDING_REQUEST,
    "status": "succeeded",
    "booking_id": BOOKING_ID,
    "booking": BOOKING,
    "completed_at": "2026-11-30T14:05:02.918311Z",
}

# What each rejection code means, with the message a client sees.
REJECTIONS = {
    "slot_unavailable": "that slot is already booked",
    "outside_hours": "2026-12-07T18:00:00-05:00 is outside the provider's hours",
    "not_on_slot_boundary": (
        "2026-12-07T09:10:00-05:00 is not on the provider's 30-minute slot grid"
    ),
    "in_past": "2026-11-02T09:00:00-05:00 is in the past",
    "too_soon": "bookings need 120 minutes of notice",
    "too_far_ahead": "bookings open at most 365 days ahead",
    "provider_not_found": f"provider {PROVIDER_ID} not found",
    "booking_not_found": f"booking {BOOKING_ID} not found",
    "booking_cancelled": f"booking {BOOKING_ID} is cancelled",
}
# The rejections made before the 202 (they need no other booking).
FAST_REJECTIONS = ("in_past", "too_soon", "too_far_ahead", "outside_hours", "not_on_slot_boundary")


def _rejected(code: str, message: str) -> dict[str, Any]:
    return {
        **PENDING_REQUEST,
        "status": "rejected",
        "error": {"code": code, "message": message},
        "completed_at": "2026-11-30T14:05:02.918311Z",
    }


def examples(**named: Any) -> list[Example]:
    return [
        Example(id=name, summary=name.replace("_", " "), value=value)
        for name, value in named.items()
    ]


REQUEST_OUTCOMES = [
    Example(
        id="pending",
        summary="Not decided yet (answered with Retry-After: 1)",
        value=PENDING_REQUEST,
    ),
    Example(id="succeeded", summary="Booked: the booking is included", value=SUCCEEDED_REQUEST),
    *(
        Example(id=f"rejected_{code}", summary=f"Rejected: {code}", value=_rejected(code, message))
        for code, message in REJECTIONS.items()
    ),
    Example(
        id="failed",
        summary="Failed after retries (rare; alert on it)",
        value=_rejected("internal_error", "the request could not be processed")
        | {"status": "failed"},
    ),
]

AVAILABILITY_IN_BERLIN = {
    "provider_id": PROVIDER_ID,
    "timezone": "Europe/Berlin",
    "slot_minutes": 30,
    "slots": [
        {"start": "2026-12-07T15:00:00+01:00", "end": "2026-12-07T15:30:00+01:00"},
        {"start": "2026-12-07T15:30:00+01:00", "end": "2026-12-07T16:00:00+01:00"},
        {"start": "2026-12-07T16:00:00+01:00", "end": "2026-12-07T16:30:00+01:00"},
    ],
}
