"""The entities the use cases work on."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from uuid import UUID

from domain.availability import Rules, Span
from domain.schedule import Interval, WeeklySchedule, load_zone


class Role(enum.StrEnum):
    ADMIN = "admin"
    CLIENT = "client"


@dataclass(frozen=True, slots=True)
class ApiClient:
    id: UUID
    name: str
    role: Role

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    """An API key as operators list it: never the key itself, which is kept only as a hash."""

    client: ApiClient
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class Provider:
    id: UUID
    name: str | None
    timezone: str
    slot_minutes: int
    weekly: WeeklySchedule
    buffer_before_minutes: int
    buffer_after_minutes: int
    min_notice_minutes: int
    max_advance_days: int
    version: int
    created_at: datetime
    updated_at: datetime

    @property
    def rules(self) -> Rules:
        return Rules(
            zone=load_zone(self.timezone),
            slot_minutes=self.slot_minutes,
            weekly=self.weekly,
            buffer_before_minutes=self.buffer_before_minutes,
            buffer_after_minutes=self.buffer_after_minutes,
            min_notice_minutes=self.min_notice_minutes,
            max_advance_days=self.max_advance_days,
        )


@dataclass(frozen=True, slots=True)
class ScheduleOverride:
    provider_id: UUID
    day: date
    intervals: tuple[Interval, ...]


class BookingStatus(enum.StrEnum):
    CONFIRMED = "confirmed"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class Booking:
    id: UUID
    client_id: UUID
    provider_id: UUID
    customer_id: str | None
    start: datetime
    end: datetime
    blocked: Span
    status: BookingStatus
    metadata: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    cancelled_at: datetime | None = None
    cancel_reason: str | None = None


class RequestKind(enum.StrEnum):
    BOOK = "book"
    RESCHEDULE = "reschedule"
    CANCEL = "cancel"


class RequestStatus(enum.StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    REJECTED = "rejected"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class BookingRequest:
    id: UUID
    seq: int
    client_id: UUID
    kind: RequestKind
    provider_id: UUID
    booking_id: UUID | None
    start: datetime | None
    status: RequestStatus
    created_at: datetime
    customer_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None
    callback_url: str | None = None
    idempotency_key: str | None = None
    fingerprint: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    attempts: int = 0
    completed_at: datetime | None = None
    http_request_id: str | None = None  # X-Request-ID of the call that made it, for logs
