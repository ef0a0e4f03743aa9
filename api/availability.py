"""Free slots of a provider over calendar days in the request's time zone."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated
from uuid import UUID
from zoneinfo import ZoneInfo

import msgspec
from litestar import Controller, MediaType, Response, get
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath

from api.common import day_query, parse_day, parse_id
from api.dependencies import Injected
from api.errors import READ_PROBLEMS
from domain.errors import FieldError, ValidationFailed
from domain.ports import UnitOfWork
from domain.use_cases.availability import (
    AvailabilityAnswer,
    AvailabilityCache,
    AvailabilityQuery,
    cached_availability,
)


class SlotBody(msgspec.Struct):
    start: datetime
    end: datetime


class AvailabilityBody(msgspec.Struct):
    provider_id: UUID
    timezone: str
    slot_minutes: int
    slots: list[SlotBody]


def requested_days(day: str | None, first: str | None, last: str | None) -> tuple[date, date]:
    if day is not None:
        if first is not None or last is not None:
            raise ValidationFailed(
                [FieldError("date", "give `date`, or `from` and `to`, not both")]
            )
        parsed = parse_day(day, "date")
        return parsed, parsed
    if first is None or last is None:
        missing = "to" if first is not None else "from"
        raise ValidationFailed(
            [FieldError(missing, "give `date`, or both `from` and `to` (inclusive)")]
        )
    return parse_day(first, "from"), parse_day(last, "to")


def render(answer: AvailabilityAnswer) -> bytes:
    shown = answer.zone
    return msgspec.json.encode(
        AvailabilityBody(
            provider_id=answer.provider.id,
            timezone=shown.key,
            slot_minutes=answer.provider.slot_minutes,
            slots=[
                SlotBody(s.start.astimezone(shown), s.end.astimezone(shown))
                for s in answer.availability.slots
            ],
        )
    )


class AvailabilityController(Controller):
    path = "/providers/{provider_id:str}/availability"
    tags = ["availability"]

    @get(
        "/",
        responses={
            **READ_PROBLEMS,
            # The body is rendered once and cached as bytes; this documents its shape.
            200: ResponseSpec(AvailabilityBody, description="Bookable slots, in order"),
        },
    )
    async def availability(
        self,
        provider_id: FromPath[str],
        reader: Injected[UnitOfWork],
        availability_cache: Injected[AvailabilityCache],
        now: Injected[datetime],
        zone: Injected[ZoneInfo | None],
        date_: Annotated[str | None, day_query("date")] = None,
        from_: Annotated[str | None, day_query("from")] = None,
        to: Annotated[str | None, day_query("to")] = None,
    ) -> Response[bytes]:
        """Bookable slots on one date, or from `from` to `to` inclusive (at most 62 days)."""
        query = AvailabilityQuery(
            parse_id(provider_id, "provider"),
            *requested_days(date_, from_, to),
            zone=zone,
        )
        body, _ = await cached_availability(query, reader, availability_cache, render, now)
        return Response(content=body, media_type=MediaType.JSON)
