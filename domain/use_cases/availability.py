"""The free slots of one provider over a range of calendar days."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from uuid import UUID
from zoneinfo import ZoneInfo

from domain.availability import MAX_RANGE_DAYS, Availability, Span, day_window, free_slots
from domain.errors import FieldError, NotFound, ValidationFailed
from domain.model import Provider
from domain.ports import UnitOfWork


@dataclass(frozen=True, slots=True)
class AvailabilityQuery:
    provider_id: UUID
    first: date
    last: date
    zone: ZoneInfo | None = None  # the request's zone; None means the provider's own


@dataclass(frozen=True, slots=True)
class AvailabilityAnswer:
    provider: Provider
    zone: ZoneInfo
    availability: Availability


def check_range(first: date, last: date) -> None:
    if first > last:
        raise ValidationFailed([FieldError("from", f"`from` {first} is after `to` {last}")])
    days = (last - first).days + 1
    if days > MAX_RANGE_DAYS:
        raise ValidationFailed(
            [FieldError("to", f"the range spans {days} days; at most {MAX_RANGE_DAYS} are allowed")]
        )


async def find_availability(
    query: AvailabilityQuery, uow: UnitOfWork, now: datetime
) -> AvailabilityAnswer:
    check_range(query.first, query.last)
    async with uow:
        provider = await uow.providers.get(query.provider_id)
        if provider is None:
            raise NotFound(f"provider {query.provider_id} not found")
        rules = provider.rules
        zone = query.zone or rules.zone
        window = day_window(query.first, query.last, zone)
        first_local = window.start.astimezone(rules.zone).date()
        last_local = (window.end - timedelta(microseconds=1)).astimezone(rules.zone).date()
        overrides = await uow.overrides.between(provider.id, first_local, last_local)
        # A booking blocks a slot when their buffered spans meet, so look that far around.
        reach = Span(
            window.start
            - timedelta(minutes=rules.buffer_before_minutes + rules.buffer_after_minutes),
            window.end
            + timedelta(
                minutes=rules.slot_minutes
                + rules.buffer_before_minutes
                + rules.buffer_after_minutes
            ),
        )
        blocked = await uow.bookings.blocked_spans(provider.id, reach)
    return AvailabilityAnswer(
        provider=provider,
        zone=zone,
        availability=free_slots(rules, overrides, blocked, window, now),
    )
