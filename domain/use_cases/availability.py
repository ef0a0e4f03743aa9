"""The free slots of one provider over a range of calendar days: a domain answer, not bytes.

Rendering the answer and keeping it in a cache belong to the API and infra; they build on the
two steps here: which provider-local dates a request needs, and what those dates offer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from uuid import UUID
from zoneinfo import ZoneInfo

from domain.availability import (
    MAX_RANGE_DAYS,
    AvailabilityQuery,
    DayPlan,
    DaySlots,
    Span,
    booking_reach,
    day_window,
    free_days,
    provider_days,
)
from domain.errors import FieldError, NotFound, ValidationFailed
from domain.model import Provider
from domain.ports import UnitOfWork
from domain.schedule import Interval


@dataclass(frozen=True, slots=True)
class DayInputs:
    """Everything `free_days` reads from the record for a provider and a run of dates."""

    provider: Provider
    overrides: Mapping[date, tuple[Interval, ...]]
    blocked: list[Span]

    def free_days(self, first_day: date, last_day: date, now: datetime) -> list[DaySlots]:
        return free_days(
            self.provider.rules, self.overrides, self.blocked, first_day, last_day, now
        )


def check_range(first: date, last: date) -> None:
    if first > last:
        raise ValidationFailed([FieldError("from", f"`from` {first} is after `to` {last}")])
    days = (last - first).days + 1
    if days > MAX_RANGE_DAYS:
        raise ValidationFailed(
            [FieldError("to", f"the range spans {days} days; at most {MAX_RANGE_DAYS} are allowed")]
        )


def plan_days(query: AvailabilityQuery, provider_zone: ZoneInfo) -> DayPlan:
    check_range(query.first, query.last)
    zone = query.zone or provider_zone
    window = day_window(query.first, query.last, zone)
    first_day, last_day = provider_days(window, provider_zone)
    return DayPlan(window, first_day, last_day, zone)


async def load_day_inputs(
    provider_id: UUID, first_day: date, last_day: date, uow: UnitOfWork
) -> DayInputs:
    """The provider, its overrides and the bookings that can block the dates given."""
    async with uow:
        provider = await uow.providers.get(provider_id)
        if provider is None:
            raise NotFound(f"provider {provider_id} not found")
        overrides = await uow.overrides.between(provider.id, first_day, last_day)
        reach = booking_reach(provider.rules, first_day, last_day)
        confirmed = await uow.bookings.confirmed_spans([provider.id], reach)
    return DayInputs(provider, overrides, [span for _, span in confirmed[provider.id]])
