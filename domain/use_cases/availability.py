"""The free slots of one provider over a range of calendar days."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Protocol
from uuid import UUID
from zoneinfo import ZoneInfo

from domain.availability import (
    MAX_RANGE_DAYS,
    Availability,
    Span,
    day_window,
    free_slots,
    provider_days,
)
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
        overrides = await uow.overrides.between(provider.id, *provider_days(window, rules.zone))
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
        confirmed = await uow.bookings.confirmed_spans([provider.id], reach)
        blocked = [span for _, span in confirmed[provider.id]]
    return AvailabilityAnswer(
        provider=provider,
        zone=zone,
        availability=free_slots(rules, overrides, blocked, window, now),
    )


class AvailabilityCache(Protocol):
    """Rendered answers, filed under the provider's version counter."""

    async def lookup(self, provider_id: UUID, question: str) -> tuple[int | None, bytes | None]:
        """The provider's version, and the answer filed under it for `question`, if any."""

    async def adopt_version(self, provider_id: UUID, version: int) -> None:
        """Set the counter if it is unset (after a restart or a flush of the cache)."""

    async def put(
        self, provider_id: UUID, version: int, question: str, value: bytes, ttl: timedelta
    ) -> None: ...


def question_of(query: AvailabilityQuery) -> str:
    zone = query.zone.key if query.zone else "-"
    return f"{zone}:{query.first}:{query.last}"


async def cached_availability(
    query: AvailabilityQuery,
    uow: UnitOfWork,
    cache: AvailabilityCache,
    render: Callable[[AvailabilityAnswer], bytes],
    now: datetime,
) -> tuple[bytes, bool]:
    """The rendered answer and whether it came from the cache.

    Every commit that changes a provider's bookings or hours raises its version after the
    commit. A reader that computed from older data stores its answer under the older
    version, which nobody reads again, so the cache never serves a slot taken before the
    version moved. An answer is kept only until `valid_until`, the first moment it would
    change by the clock alone, so a cached answer is exact, not merely recent.
    """
    check_range(query.first, query.last)
    question = question_of(query)
    version, hit = await cache.lookup(query.provider_id, question)
    if hit is not None:
        return hit, True
    answer = await find_availability(query, uow, now)
    if version is None:
        version = answer.provider.version
        await cache.adopt_version(query.provider_id, version)
    body = render(answer)
    ttl = answer.availability.valid_until - now
    if ttl > timedelta(0):
        await cache.put(query.provider_id, version, question, body, ttl)
    return body, False
