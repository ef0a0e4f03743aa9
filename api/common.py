"""Pieces several resources share: path ids, the Timezone header, pages, wall-clock intervals."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Generic, TypeVar
from uuid import UUID
from zoneinfo import ZoneInfo

import msgspec
from litestar.params import HeaderParameter, QueryParameter

from domain.availability import FIRST_COMPUTABLE_DAY, LAST_COMPUTABLE_DAY, computable
from domain.errors import BadRequest, FieldError, NotFound, ValidationFailed
from domain.schedule import Interval, format_wall_time, load_zone

T = TypeVar("T")
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)

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


_OUT_OF_RANGE = (
    f"is outside the dates this service computes ({FIRST_COMPUTABLE_DAY} to {LAST_COMPUTABLE_DAY})"
)
_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,6})?([Zz]|[+-]\d{2}:\d{2})?", re.ASCII
)


def parse_day(raw: str, field: str) -> date:
    try:
        if not _DAY.fullmatch(raw):
            raise ValueError
        day = date.fromisoformat(raw)
    except ValueError:
        raise ValidationFailed(
            [FieldError(field, f"{raw[:32]!r} is not a date in YYYY-MM-DD form")]
        ) from None
    if not computable(day):
        raise ValidationFailed([FieldError(field, f"{raw} {_OUT_OF_RANGE}")])
    return day


def parse_date_time(raw: str, field: str) -> datetime:
    """RFC 3339 exactly (`2026-12-01T09:00:00-05:00`), except that the offset may be left out."""
    try:
        if not _RFC3339.fullmatch(raw):
            raise ValueError
        moment = datetime.fromisoformat(raw.upper())
    except ValueError:
        raise ValidationFailed(
            [
                FieldError(
                    field,
                    f"{raw[:64]!r} is not an RFC 3339 date-time "
                    "(for example 2026-12-01T09:00:00-05:00)",
                )
            ]
        ) from None
    if not computable(moment.date()):
        raise ValidationFailed([FieldError(field, f"{raw} {_OUT_OF_RANGE}")])
    return moment


def intervals_body(intervals: tuple[Interval, ...]) -> list[IntervalBody]:
    return [IntervalBody(format_wall_time(i.start), format_wall_time(i.end)) for i in intervals]
