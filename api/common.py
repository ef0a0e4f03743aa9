"""Pieces several resources share: path ids, the Timezone header, pages, wall-clock intervals."""

from __future__ import annotations

import re
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Generic, TypeVar
from uuid import UUID
from zoneinfo import ZoneInfo

import msgspec
from litestar.params import HeaderParameter, Parameter, ParameterKwarg, QueryParameter

from domain.availability import FIRST_COMPUTABLE_DAY, LAST_COMPUTABLE_DAY, computable
from domain.errors import BadRequest, FieldError, NotFound, ValidationFailed
from domain.schedule import Interval, format_wall_time, load_zone, zone_names

T = TypeVar("T")
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)

# Wall-clock times: msgspec enforces the pattern (so the schema states exactly what is read);
# api.errors turns a mismatch into a sentence. Order and overlap are checked by domain.schedule.
_HH_MM = "([01][0-9]|2[0-3]):[0-5][0-9]"
WALL_START_PATTERN = f"^{_HH_MM}$"
WALL_END_PATTERN = f"^({_HH_MM}|24:00)$"
# RFC 3339 date-time with the offset optional: msgspec enforces the form (so the schema says
# exactly what is read), parse_start the calendar (no 30 February).
START_PATTERN = (
    "^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])[Tt]([01][0-9]|2[0-3]):[0-5][0-9]:"
    "[0-5][0-9]([.][0-9]{1,6})?([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9])?$"
)
# An absolute http(s) URL without credentials; where it points is checked when it is used.
# Host names in ASCII (punycode for others), labels of at most 63 characters, or an IP literal.
_HOST = r"(\[[0-9A-Fa-f:.]{2,45}\]|([A-Za-z0-9_-]{1,63}\.)*[A-Za-z0-9_-]{1,63}\.?)"
CALLBACK_URL_PATTERN = rf"^[Hh][Tt][Tt][Pp][Ss]?://{_HOST}(:[0-9]{{1,5}})?([/?#][^\s]*)?$"
WallStart = Annotated[
    str,
    msgspec.Meta(
        pattern=WALL_START_PATTERN,
        description="Wall-clock time `HH:MM` (00:00 to 23:59) in the provider's zone.",
        examples=["09:00"],
    ),
]
WallEnd = Annotated[
    str,
    msgspec.Meta(
        pattern=WALL_END_PATTERN,
        description="Wall-clock time `HH:MM`; `24:00` ends the day at midnight. "
        "After `start` (an interval never crosses midnight).",
        examples=["17:00"],
    ),
]


class IntervalBody(msgspec.Struct):
    """Working hours from `start` to `end`, wall-clock time; slots start at `start` and every
    `slot_minutes` after. Intervals of one day may not overlap."""

    start: WallStart
    end: WallEnd


class PageBody(msgspec.Struct, Generic[T]):
    items: list[T]
    next_cursor: Annotated[
        str | None,
        msgspec.Meta(description="Pass as `cursor` for the next page; null on the last page."),
    ]


# Every zone name the API accepts (the IANA database's, as Python's zoneinfo has it). A body's
# `timezone` is decoded into this enum; the `Timezone` header is read by `parse_zone_header`.
ZoneName = StrEnum("ZoneName", {name: name for name in zone_names()})  # type: ignore[misc]

Limit = Annotated[int, QueryParameter(ge=1, le=500, description="Page size (default 50, max 500).")]
Cursor = Annotated[
    str | None,
    QueryParameter(
        max_length=512,
        description="`next_cursor` of the previous page (a cursor this API did not give out "
        "is a 400).",
    ),
]
TimezoneHeader = Annotated[
    str | None,
    HeaderParameter(
        name="Timezone",
        required=False,
        description="IANA zone name (e.g. `Europe/Berlin`) that this request's dates and "
        "offset-less times are read in, and that times are shown in. Default: the provider's "
        "zone. An unknown name is a 400.",
        schema_extra={"enum": zone_names()},
    ),
]


def _id_path(what: str) -> ParameterKwarg:
    parameter: ParameterKwarg = Parameter(
        description=f"The {what}'s id, a UUID (anything else names nothing: 404).",
        schema_extra={"format": "uuid"},
    )
    return parameter


ProviderIdPath = Annotated[str, _id_path("provider")]
BookingIdPath = Annotated[str, _id_path("booking")]
RequestIdPath = Annotated[str, _id_path("booking request")]
DayPath = Annotated[
    str,
    Parameter(
        description="A provider-local calendar date, `YYYY-MM-DD`.",
        schema_extra={"format": "date"},
    ),
]


def day_query(name: str, description: str = "A calendar date, `YYYY-MM-DD`.") -> QueryParameter:
    return QueryParameter(
        name=name,
        max_length=10,
        description=description,
        schema_extra={"format": "date"},
    )


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
