"""Providers, their weekly hours and date overrides."""

from __future__ import annotations

from datetime import date as date_
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Controller, Response, delete, get, patch, post, put
from litestar.datastructures import ResponseHeader
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Body
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT

from api.auth import require_admin
from api.common import (
    Cursor,
    DayPath,
    IntervalBody,
    Limit,
    PageBody,
    ProviderIdPath,
    ZoneName,
    day_query,
    intervals_body,
    parse_day,
    parse_id,
)
from api.dependencies import Injected
from api.errors import READ_PROBLEMS, WRITE_PROBLEMS
from api.examples import NEW_PROVIDER, PROVIDER, WEEK, examples
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
    int,
    msgspec.Meta(
        ge=LIMITS["slot_minutes"][0],
        le=LIMITS["slot_minutes"][1],
        description="Length of one slot in minutes, and the step of the slot grid.",
    ),
]
BufferBefore = Annotated[
    int,
    msgspec.Meta(
        ge=0,
        le=LIMITS["buffer_before_minutes"][1],
        description="Minutes kept free before each booking.",
    ),
]
BufferAfter = Annotated[
    int,
    msgspec.Meta(
        ge=0,
        le=LIMITS["buffer_after_minutes"][1],
        description="Minutes kept free after each booking.",
    ),
]
Notice = Annotated[
    int,
    msgspec.Meta(
        ge=0,
        le=LIMITS["min_notice_minutes"][1],
        description="A slot starting sooner than this many minutes from now is not offered.",
    ),
]
Advance = Annotated[
    int,
    msgspec.Meta(
        ge=0,
        le=LIMITS["max_advance_days"][1],
        description="How many days after today (the provider's local date) slots are offered.",
    ),
]
Zone = Annotated[
    ZoneName,
    msgspec.Meta(
        description="The provider's IANA time zone; weekly hours are wall-clock times in it.",
        examples=["America/New_York"],
    ),
]
Name = Annotated[
    str,
    msgspec.Meta(max_length=MAX_NAME_LENGTH, description="A name to show; not unique."),
]
Intervals = Annotated[
    list[IntervalBody],
    msgspec.Meta(max_length=96, description="The day's working hours; `[]` closes the day."),
]


class WeekBody(msgspec.Struct, forbid_unknown_fields=True):
    """Wall-clock hours per week day in the provider's zone; an absent or empty day is closed.

    They stay at the same wall-clock time across daylight-saving changes.
    """

    monday: Intervals = []
    tuesday: Intervals = []
    wednesday: Intervals = []
    thursday: Intervals = []
    friday: Intervals = []
    saturday: Intervals = []
    sunday: Intervals = []


ProviderId = Annotated[
    UUID,
    msgspec.Meta(description="The provider's id; generated when absent."),
]


class ProviderCreate(msgspec.Struct):
    """A new provider: only `timezone` and `weekly_schedule` are required."""

    timezone: Zone
    weekly_schedule: WeekBody
    id: ProviderId | None = None
    name: Name | None = None
    slot_minutes: SlotMinutes = 30
    buffer_before_minutes: BufferBefore = 0
    buffer_after_minutes: BufferAfter = 0
    min_notice_minutes: Notice = 0
    max_advance_days: Advance = 365


class ProviderPatch(msgspec.Struct):
    """Any subset of the provider's settings; absent fields keep their value."""

    name: Name | None = None
    timezone: Zone | None = None
    weekly_schedule: WeekBody | None = None
    slot_minutes: SlotMinutes | None = None
    buffer_before_minutes: BufferBefore | None = None
    buffer_after_minutes: BufferAfter | None = None
    min_notice_minutes: Notice | None = None
    max_advance_days: Advance | None = None


class ScheduleBody(msgspec.Struct):
    """A provider's zone and weekly hours (and slot length), as the old API's upsert took them."""

    timezone: Zone
    weekly_schedule: WeekBody
    slot_minutes: SlotMinutes | None = None


class ProviderBody(msgspec.Struct):
    """A provider, with every setting."""

    id: Annotated[UUID, msgspec.Meta(description="The provider's id.")]
    name: Annotated[str | None, msgspec.Meta(description="A name to show.")]
    timezone: Annotated[str, msgspec.Meta(description="The provider's IANA time zone.")]
    slot_minutes: SlotMinutes
    weekly_schedule: WeekBody
    buffer_before_minutes: BufferBefore
    buffer_after_minutes: BufferAfter
    min_notice_minutes: Notice
    max_advance_days: Advance
    created_at: Annotated[datetime, msgspec.Meta(description="When it was created.")]
    updated_at: Annotated[datetime, msgspec.Meta(description="Its last change.")]


class OverrideBody(msgspec.Struct):
    """One date's hours, replacing the weekly hours that date."""

    intervals: Intervals


class OverrideOut(msgspec.Struct):
    """A date override: the hours of one provider-local date."""

    date: Annotated[
        date_,
        msgspec.Meta(description="The provider-local date the hours apply to."),
    ]
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


_LOCATION = ResponseHeader(
    name="Location",
    description="The new provider's path, `/v1/providers/{id}`.",
    documentation_only=True,
    required=True,
)
_CHRISTMAS_EVE: dict[str, Any] = {
    "date": "2026-12-24",
    "intervals": [{"start": "09:00", "end": "12:00"}],
}


def _provider_answer(description: str, **named: Any) -> ResponseSpec:
    return ResponseSpec(
        ProviderBody, description=description, generate_examples=False, examples=examples(**named)
    )


class ProviderController(Controller):
    path = "/providers"
    tags = ["providers"]

    @post(
        "/",
        guards=[require_admin],
        status_code=HTTP_201_CREATED,
        summary="Create a provider",
        operation_id="createProvider",
        responses={**WRITE_PROBLEMS, 201: _provider_answer("Created", new_york=PROVIDER)},
        response_headers=[_LOCATION],
    )
    async def create(
        self,
        data: Annotated[
            ProviderCreate,
            Body(
                examples=examples(
                    new_york=NEW_PROVIDER,
                    closed_weekly_open_by_overrides={
                        "timezone": "Europe/Berlin",
                        "weekly_schedule": {},
                    },
                )
            ),
        ],
        uow: Injected[UnitOfWork],
        now: Injected[datetime],
    ) -> Response[ProviderBody]:
        """Creates a provider (admin key). Weekly hours are wall-clock times in the provider's
        zone; overlapping intervals, an end before its start, or anything not `HH:MM` is a 422
        naming the interval. An `id` already taken is a 409."""
        provider = await use_cases.create_provider(
            CreateProvider(
                provider_id=data.id,
                name=data.name,
                timezone=data.timezone.value,
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

    @get(
        "/",
        summary="List providers",
        operation_id="listProviders",
        responses={
            **READ_PROBLEMS,
            200: ResponseSpec(
                PageBody[ProviderBody],
                description="A page of providers",
                generate_examples=False,
                examples=examples(page={"items": [PROVIDER], "next_cursor": None}),
            ),
        },
    )
    async def list_all(
        self, reader: Injected[UnitOfWork], limit: Limit = 50, cursor: Cursor = None
    ) -> PageBody[ProviderBody]:
        """Providers, oldest first, a page at a time (any key)."""
        page = await use_cases.list_providers(reader, limit, cursor)
        return PageBody([provider_body(p) for p in page.items], page.next_cursor)

    @get(
        "/{provider_id:str}",
        summary="Get a provider",
        operation_id="getProvider",
        responses={**READ_PROBLEMS, 200: _provider_answer("The provider", new_york=PROVIDER)},
    )
    async def get_one(
        self, provider_id: ProviderIdPath, reader: Injected[UnitOfWork]
    ) -> ProviderBody:
        """One provider with all its settings (any key)."""
        provider = await use_cases.get_provider(parse_id(provider_id, "provider"), reader)
        return provider_body(provider)

    @patch(
        "/{provider_id:str}",
        guards=[require_admin],
        summary="Change a provider's settings",
        operation_id="updateProvider",
        responses={
            **WRITE_PROBLEMS,
            200: _provider_answer(
                "The provider as changed", longer_slots={**PROVIDER, "slot_minutes": 45}
            ),
        },
    )
    async def update(
        self,
        provider_id: ProviderIdPath,
        data: Annotated[
            ProviderPatch,
            Body(
                examples=examples(
                    longer_slots={"slot_minutes": 45}, rename={"name": "Dr. Ana Rivera"}
                )
            ),
        ],
        uow: Injected[UnitOfWork],
        notifier: Injected[Notifier],
        now: Injected[datetime],
    ) -> ProviderBody:
        """Changes any subset of a provider's settings (admin key). Existing bookings stay as
        they are, with the span they were made with."""
        provider = await use_cases.update_provider(
            UpdateProvider(
                provider_id=parse_id(provider_id, "provider"),
                name=data.name,
                timezone=data.timezone.value if data.timezone else None,
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
        status_code=HTTP_200_OK,
        summary="Set a provider's hours, creating it if needed",
        operation_id="putProviderSchedule",
        responses={**WRITE_PROBLEMS, 200: _provider_answer("The provider", new_york=PROVIDER)},
    )
    async def put_schedule(
        self,
        provider_id: ProviderIdPath,
        data: Annotated[
            ScheduleBody,
            Body(
                examples=examples(
                    new_york={
                        "timezone": "America/New_York",
                        "weekly_schedule": WEEK,
                        "slot_minutes": 30,
                    }
                )
            ),
        ],
        uow: Injected[UnitOfWork],
        notifier: Injected[Notifier],
        now: Injected[datetime],
    ) -> ProviderBody:
        """Sets a provider's zone, weekly hours and slot length, creating the provider with
        this id when it does not exist (admin key): the upsert clients of the old API used."""
        provider, _ = await use_cases.put_schedule(
            PutSchedule(
                provider_id=parse_id(provider_id, "provider"),
                timezone=data.timezone.value,
                weekly_schedule=raw_week(data.weekly_schedule),
                slot_minutes=data.slot_minutes,
            ),
            uow,
            notifier,
            now,
        )
        return provider_body(provider)

    @get(
        "/{provider_id:str}/overrides",
        summary="List a provider's date overrides",
        operation_id="listOverrides",
        responses={
            **READ_PROBLEMS,
            200: ResponseSpec(
                PageBody[OverrideOut],
                description="The overrides, by date",
                generate_examples=False,
                examples=examples(christmas_eve={"items": [_CHRISTMAS_EVE], "next_cursor": None}),
            ),
        },
    )
    async def list_overrides(
        self,
        provider_id: ProviderIdPath,
        reader: Injected[UnitOfWork],
        from_: Annotated[str | None, day_query("from")] = None,
        to: Annotated[str | None, day_query("to")] = None,
    ) -> PageBody[OverrideOut]:
        """A provider's date overrides, by date, optionally from `from` to `to` (inclusive;
        either may be left out). Always one page: `next_cursor` is null."""
        found = await use_cases.list_overrides(
            parse_id(provider_id, "provider"),
            parse_day(from_, "from") if from_ is not None else None,
            parse_day(to, "to") if to is not None else None,
            reader,
        )
        return PageBody([OverrideOut(day, intervals_body(iv)) for day, iv in found], None)

    @put(
        "/{provider_id:str}/overrides/{day:str}",
        guards=[require_admin],
        status_code=HTTP_200_OK,
        summary="Set one date's hours",
        operation_id="putOverride",
        responses={
            **WRITE_PROBLEMS,
            200: ResponseSpec(
                OverrideOut,
                description="The override",
                generate_examples=False,
                examples=examples(christmas_eve=_CHRISTMAS_EVE),
            ),
        },
    )
    async def put_override(
        self,
        provider_id: ProviderIdPath,
        day: DayPath,
        data: Annotated[
            OverrideBody,
            Body(
                examples=examples(
                    morning_only={"intervals": _CHRISTMAS_EVE["intervals"]},
                    closed={"intervals": []},
                )
            ),
        ],
        uow: Injected[UnitOfWork],
        notifier: Injected[Notifier],
    ) -> OverrideOut:
        """Sets one provider-local date's hours, replacing the weekly hours that date; `[]`
        closes the day (admin key). Existing bookings stay."""
        override = await use_cases.put_override(
            PutOverride(
                provider_id=parse_id(provider_id, "provider"),
                day=parse_day(day, "date"),
                intervals=[(i.start, i.end) for i in data.intervals],
            ),
            uow,
            notifier,
        )
        return OverrideOut(override.day, intervals_body(override.intervals))

    @delete(
        "/{provider_id:str}/overrides/{day:str}",
        guards=[require_admin],
        responses=WRITE_PROBLEMS,
        status_code=HTTP_204_NO_CONTENT,
        summary="Remove a date override",
        operation_id="deleteOverride",
    )
    async def delete_override(
        self,
        provider_id: ProviderIdPath,
        day: DayPath,
        uow: Injected[UnitOfWork],
        notifier: Injected[Notifier],
    ) -> None:
        """Removes a date override; the weekly hours apply again that date (admin key).
        Removing one that does not exist is a 204 too."""
        await use_cases.delete_override(
            DeleteOverride(parse_id(provider_id, "provider"), parse_day(day, "date")),
            uow,
            notifier,
        )
