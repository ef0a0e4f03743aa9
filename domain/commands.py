"""Commands: what a caller asks the system to do, as plain data not yet checked."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from domain.model import Role

RawIntervals = Sequence[tuple[str, str]]
RawWeek = Mapping[str, RawIntervals]
DEFAULT_SLOT_MINUTES = 30


@dataclass(frozen=True, slots=True)
class CreateProvider:
    timezone: str
    weekly_schedule: RawWeek
    provider_id: UUID | None = None
    name: str | None = None
    slot_minutes: int = DEFAULT_SLOT_MINUTES
    buffer_before_minutes: int = 0
    buffer_after_minutes: int = 0
    min_notice_minutes: int = 0
    max_advance_days: int = 365


@dataclass(frozen=True, slots=True)
class UpdateProvider:
    """Change the given settings; a field left as None keeps its value."""

    provider_id: UUID
    name: str | None = None
    timezone: str | None = None
    weekly_schedule: RawWeek | None = None
    slot_minutes: int | None = None
    buffer_before_minutes: int | None = None
    buffer_after_minutes: int | None = None
    min_notice_minutes: int | None = None
    max_advance_days: int | None = None


@dataclass(frozen=True, slots=True)
class PutSchedule:
    """Set a provider's zone and hours, creating the provider when it does not exist."""

    provider_id: UUID
    timezone: str
    weekly_schedule: RawWeek
    slot_minutes: int | None = None


@dataclass(frozen=True, slots=True)
class PutOverride:
    provider_id: UUID
    day: date
    intervals: RawIntervals


@dataclass(frozen=True, slots=True)
class DeleteOverride:
    provider_id: UUID
    day: date


@dataclass(frozen=True, slots=True)
class CreateApiClient:
    name: str
    role: Role


@dataclass(frozen=True, slots=True)
class RevokeApiKey:
    client_id: UUID


@dataclass(frozen=True, slots=True)
class RequestBooking:
    provider_id: UUID
    start: datetime  # naive: wall-clock time in `zone`, or the provider's zone
    zone: ZoneInfo | None = None
    customer_id: str | None = None
    callback_url: str | None = None
    metadata: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class RequestReschedule:
    booking_id: UUID
    start: datetime
    zone: ZoneInfo | None = None


@dataclass(frozen=True, slots=True)
class RequestCancel:
    booking_id: UUID
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class CreateWebhookEndpoint:
    url: str
    events: Sequence[str]
    description: str | None = None


@dataclass(frozen=True, slots=True)
class UpdateWebhookEndpoint:
    """Change the given fields; None keeps a value. `status` "enabled" re-enables."""

    endpoint_id: UUID
    url: str | None = None
    events: Sequence[str] | None = None
    description: str | None = None
    status: str | None = None
