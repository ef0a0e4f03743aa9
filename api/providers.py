"""Providers, their weekly hours and date overrides."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

import msgspec
from litestar import Controller, Response, delete, get, patch, post, put
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT

from api.auth import require_admin
from api.common import (
    Cursor,
    IntervalBody,
    Limit,
    PageBody,
    day_query,
    intervals_body,
    parse_day,
    parse_id,
)
from api.dependencies import Injected
from api.errors import READ_PROBLEMS, WRITE_PROBLEMS
from domain.commands import (
    CreateProvider,
    DeleteOverride,
    PutOverride,
    PutSchedule,
    RawWeek,
    UpdateProvider,
)
from domain.model import Provider
from domain.ports import Notifier, UnitOfWork
from domain.schedule import WEEKDAYS
from domain.use_cases import providers as use_cases
from domain.use_cases.providers import LIMITS, MAX_NAME_LENGTH

SlotMinutes = Annotated[
    int, msgspec.Meta(ge=LIMITS["slot_minutes"][0], le=LIMITS["slot_minutes"][1])
]
Buffer = Annotated[int, msgspec.Meta(ge=0, le=LIMITS["buffer_before_minutes"][1])]
Notice = Annotated[int, msgspec.Meta(ge=0, le=LIMITS["min_notice_minutes"][1])]
Advance = Annotated[int, msgspec.Meta(ge=0, le=LIMITS["max_advance_days"][1])]
ZoneName = Annotated[str, msgspec.Meta(max_length=64, examples=["America/New_York"])]
Name = Annotated[str, msgspec.Meta(max_length=MAX_NAME_LENGTH)]
Intervals = Annotated[list[IntervalBody], msgspec.Meta(max_length=96)]


class WeekBody(msgspec.Struct, forbid_unknown_fields=True):
    """Wall-clock hours per week day in the provider's zone; an absent or empty day is closed."""

    monday: Intervals = []
    tuesday: Intervals = []
    wednesday: Intervals = []
    thursday: Intervals = []
    friday: Intervals = []
    saturday: Intervals = []
    sunday: Intervals = []


class ProviderCreate(msgspec.Struct):
    timezone: ZoneName
    weekly_schedule: WeekBody
    id: UUID | None = None
    name: Name | None = None
    slot_minutes: SlotMinutes = 30
    buffer_before_minutes: Buffer = 0
    buffer_after_minutes: Buffer = 0
    min_notice_minutes: Notice = 0
    max_advance_days: Advance = 365


class ProviderPatch(msgspec.Struct):
    """Any subset of the provider's settings; absent fields keep their value."""

    name: Name | None = None
    timezone: ZoneName | None = None
    weekly_schedule: WeekBody | None = None
    slot_minutes: SlotMinutes | None = None
    buffer_before_minutes: Buffer | None = None
    buffer_after_minutes: Buffer | None = None
    min_notice_minutes: Notice | None = None
    max_advance_days: Advance | None = None


class ScheduleBody(msgspec.Struct):
    timezone: ZoneName
    weekly_schedule: WeekBody
    slot_minutes: SlotMinutes | None = None


class ProviderBody(msgspec.Struct):
    id: UUID
    name: str | None
    timezone: str
    slot_minutes: int
    weekly_schedule: WeekBody
    buffer_before_minutes: int
    buffer_after_minutes: int
    min_notice_minutes: int
    max_advance_days: int
    created_at: datetime
    updated_at: datetime


class OverrideBody(msgspec.Struct):
    intervals: Intervals


class OverrideOut(msgspec.Struct):
    date: str
    intervals: list[IntervalBody]


def raw_week(week: WeekBody) -> RawWeek:
    return {day: [(i.start, i.end) for i in getattr(week, day)] for day in WEEKDAYS}


def provider_body(provider: Provider) -> ProviderBody:
    return ProviderBody(
        id=provider.id,
        name=provider.name,
        timezone=provider.timezone,
        slot_minutes=provider.slot_minutes,
        weekly_schedule=WeekBody(
            **{name: intervals_body(day) for name, day in provider.weekly.as_names().items()}
        ),
        buffer_before_minutes=provider.buffer_before_minutes,
        buffer_after_minutes=provider.buffer_after_minutes,
        min_notice_minutes=provider.min_notice_minutes,
        max_advance_days=provider.max_advance_days,
        created_at=provider.created_at,
        updated_at=provider.updated_at,
    )


class ProviderController(Controller):
    path = "/providers"
    tags = ["providers"]

    @post("/", guards=[require_admin], responses=WRITE_PROBLEMS, status_code=HTTP_201_CREATED)
    async def create(
        self,
        data: JSONBody[ProviderCreate],
        uow: Injected[UnitOfWork],
        now: Injected[datetime],
    ) -> Response[ProviderBody]:
        """Create a provider (admin)."""
        provider = await use_cases.create_provider(
            CreateProvider(
                provider_id=data.id,
                name=data.name,
                timezone=data.timezone,
                weekly_schedule=raw_week(data.weekly_schedule),
                slot_minutes=data.slot_minutes,
                buffer_before_minutes=data.buffer_before_minutes,
                buffer_after_minutes=data.buffer_after_minutes,
                min_notice_minutes=data.min_notice_minutes,
                max_advance_days=data.max_advance_days,
            ),
            uow,
            now,
        )
        return Response(
            provider_body(provider),
            status_code=HTTP_201_CREATED,
            headers={"Location": f"/v1/providers/{provider.id}"},
        )

    @get("/", responses=READ_PROBLEMS)
    async def list_all(
        self, reader: Injected[UnitOfWork], limit: Limit = 50, cursor: Cursor = None
    ) -> PageBody[ProviderBody]:
        """List providers."""
        page = await use_cases.list_providers(reader, limit, cursor)
        return PageBody([provider_body(p) for p in page.items], page.next_cursor)

    @get("/{provider_id:str}", responses=READ_PROBLEMS)
    async def get_one(
        self, provider_id: FromPath[str], reader: Injected[UnitOfWork]
    ) -> ProviderBody:
        """Get a provider."""
        provider = await use_cases.get_provider(parse_id(provider_id, "provider"), reader)
        return provider_body(provider)

    @patch("/{provider_id:str}", guards=[require_admin], responses=WRITE_PROBLEMS)
    async def update(
        self,
        provider_id: FromPath[str],
        data: JSONBody[ProviderPatch],
        uow: Injected[UnitOfWork],
        notifier: Injected[Notifier],
        now: Injected[datetime],
    ) -> ProviderBody:
        """Change some of a provider's settings (admin). Existing bookings stay as they are."""
        provider = await use_cases.update_provider(
            UpdateProvider(
                provider_id=parse_id(provider_id, "provider"),
                name=data.name,
                timezone=data.timezone,
                weekly_schedule=raw_week(data.weekly_schedule) if data.weekly_schedule else None,
                slot_minutes=data.slot_minutes,
                buffer_before_minutes=data.buffer_before_minutes,
                buffer_after_minutes=data.buffer_after_minutes,
                min_notice_minutes=data.min_notice_minutes,
                max_advance_days=data.max_advance_days,
            ),
            uow,
            notifier,
            now,
        )
        return provider_body(provider)

    @put(
        "/{provider_id:str}/schedule",
        guards=[require_admin],
        responses=WRITE_PROBLEMS,
        status_code=HTTP_200_OK,
    )
    async def put_schedule(
        self,
        provider_id: FromPath[str],
        data: JSONBody[ScheduleBody],
        uow: Injected[UnitOfWork],
        notifier: Injected[Notifier],
        now: Injected[datetime],
    ) -> ProviderBody:
        """Set a provider's zone and weekly hours, creating the provider if needed (admin)."""
        provider, _ = await use_cases.put_schedule(
            PutSchedule(
                provider_id=parse_id(provider_id, "provider"),
                timezone=data.timezone,
                weekly_schedule=raw_week(data.weekly_schedule),
                slot_minutes=data.slot_minutes,
            ),
            uow,
            notifier,
            now,
        )
        return provider_body(provider)

    @get("/{provider_id:str}/overrides", responses=READ_PROBLEMS)
    async def list_overrides(
        self,
        provider_id: FromPath[str],
        reader: Injected[UnitOfWork],
        from_: Annotated[str | None, day_query("from")] = None,
        to: Annotated[str | None, day_query("to")] = None,
    ) -> PageBody[OverrideOut]:
        """List date overrides, optionally between two dates (inclusive)."""
        found = await use_cases.list_overrides(
            parse_id(provider_id, "provider"),
            parse_day(from_, "from") if from_ else None,
            parse_day(to, "to") if to else None,
            reader,
        )
        return PageBody(
            [OverrideOut(day.isoformat(), intervals_body(iv)) for day, iv in found], None
        )

    @put(
        "/{provider_id:str}/overrides/{day:str}",
        guards=[require_admin],
        responses=WRITE_PROBLEMS,
        status_code=HTTP_200_OK,
    )
    async def put_override(
        self,
        provider_id: FromPath[str],
        day: FromPath[str],
        data: JSONBody[OverrideBody],
        uow: Injected[UnitOfWork],
        notifier: Injected[Notifier],
    ) -> OverrideOut:
        """Set one date's hours, replacing the weekly hours that date (`[]` closes it) (admin)."""
        override = await use_cases.put_override(
            PutOverride(
                provider_id=parse_id(provider_id, "provider"),
                day=parse_day(day, "date"),
                intervals=[(i.start, i.end) for i in data.intervals],
            ),
            uow,
            notifier,
        )
        return OverrideOut(override.day.isoformat(), intervals_body(override.intervals))

    @delete(
        "/{provider_id:str}/overrides/{day:str}",
        guards=[require_admin],
        responses=WRITE_PROBLEMS,
        status_code=HTTP_204_NO_CONTENT,
    )
    async def delete_override(
        self,
        provider_id: FromPath[str],
        day: FromPath[str],
        uow: Injected[UnitOfWork],
        notifier: Injected[Notifier],
    ) -> None:
        """Remove a date override; the weekly hours apply again that date (admin)."""
        await use_cases.delete_override(
            DeleteOverride(parse_id(provider_id, "provider"), parse_day(day, "date")),
            uow,
            notifier,
        )
