"""Pieces several resources share: path ids, the Timezone header, pages, wall-clock intervals."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Generic, TypeVar
from uuid import UUID
from zoneinfo import ZoneInfo

import msgspec
from litestar.params import HeaderParameter, QueryParameter

from domain.errors import BadRequest, FieldError, NotFound, ValidationFailed
from domain.schedule import Interval, format_wall_time, load_zone

T = TypeVar("T")

WallTime = Annotated[
    str, msgspec.Meta(max_length=5, description="Wall-clock time HH:MM; `24:00` ends a day.")
]


class IntervalBody(msgspec.Struct):
    start: WallTime
    end: WallTime


class PageBody(msgspec.Struct, Generic[T]):
    items: list[T]
    next_cursor: str | None


Limit = Annotated[int, QueryParameter(ge=1, le=500, description="Page size (default 50, max 500).")]
Cursor = Annotated[
    str | None,
    QueryParameter(max_length=512, description="`next_cursor` of the previous page."),
]
TimezoneHeader = Annotated[
    str | None,
    HeaderParameter(
        name="Timezone",
        required=False,
        description="IANA zone for dates and times in this request; default: the provider's.",
    ),
]


def day_query(name: str) -> QueryParameter:
    return QueryParameter(name=name, max_length=10, description="A date, YYYY-MM-DD.")


def parse_id(raw: str, what: str) -> UUID:
    """An id from a path; anything that is not a UUID names nothing here, so 404."""
    try:
        return UUID(raw)
    except ValueError:
        raise NotFound(f"{what} {raw[:64]!r} not found") from None


def parse_zone_header(raw: str | None) -> ZoneInfo | None:
    if raw is None:
        return None
    try:
        return load_zone(raw.strip())
    except ValueError:
        raise BadRequest(
            f"Timezone header {raw[:64]!r} is not a known IANA time zone name "
            "(for example America/New_York)."
        ) from None


def parse_day(raw: str, field: str) -> date:
    try:
        if len(raw) != 10:
            raise ValueError
        return date.fromisoformat(raw)
    except ValueError:
        raise ValidationFailed(
            [FieldError(field, f"{raw[:32]!r} is not a date in YYYY-MM-DD form")]
        ) from None


def intervals_body(intervals: tuple[Interval, ...]) -> list[IntervalBody]:
    return [IntervalBody(format_wall_time(i.start), format_wall_time(i.end)) for i in intervals]
