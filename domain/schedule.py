"""Working hours as wall-clock rules in the provider's own zone."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from functools import cache
from itertools import pairwise
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from domain.errors import FieldError, ValidationFailed

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
MINUTES_PER_DAY = 24 * 60
MAX_ZONE_NAME = 64

_WALL_TIME = re.compile(r"(\d{2}):(\d{2})", re.ASCII)


@dataclass(frozen=True, slots=True, order=True)
class Interval:
    """A span of wall-clock time on one local date, in minutes after local midnight.

    `end` may be 1440, which is "24:00": the following midnight.
    """

    start: int
    end: int

    def __str__(self) -> str:
        return f"{format_wall_time(self.start)}-{format_wall_time(self.end)}"


@dataclass(frozen=True, slots=True)
class WeeklySchedule:
    """Intervals per week day, Monday first, each day's intervals sorted and disjoint."""

    days: tuple[tuple[Interval, ...], ...]

    def for_weekday(self, weekday: int) -> tuple[Interval, ...]:
        return self.days[weekday]

    def as_names(self) -> dict[str, tuple[Interval, ...]]:
        return dict(zip(WEEKDAYS, self.days, strict=True))


CLOSED_WEEK = WeeklySchedule(days=((),) * 7)


def format_wall_time(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def parse_wall_time(text: str, *, is_end: bool) -> int:
    """`HH:MM` to minutes after midnight; `24:00` is accepted only as an end."""
    match = _WALL_TIME.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not a wall-clock time in HH:MM form")
    hours, minutes = int(match.group(1)), int(match.group(2))
    if hours == 24 and minutes == 0:
        if not is_end:
            raise ValueError("24:00 may only end an interval")
        return MINUTES_PER_DAY
    if hours > 23 or minutes > 59:
        raise ValueError(f"{text!r} is not a time of day")
    return hours * 60 + minutes


def parse_intervals(raw: Sequence[tuple[str, str]], field: str) -> tuple[Interval, ...]:
    """Parse and check one day's intervals; raises ValidationFailed naming each bad one."""
    errors: list[FieldError] = []
    parsed: list[tuple[int, Interval]] = []
    for index, (start_text, end_text) in enumerate(raw):
        where = f"{field}[{index}]"
        try:
            start = parse_wall_time(start_text, is_end=False)
        except ValueError as exc:
            errors.append(FieldError(f"{where}.start", str(exc)))
            continue
        try:
            end = parse_wall_time(end_text, is_end=True)
        except ValueError as exc:
            errors.append(FieldError(f"{where}.end", str(exc)))
            continue
        if end <= start:
            errors.append(
                FieldError(where, f"interval {start_text}-{end_text} ends before it starts")
            )
            continue
        parsed.append((index, Interval(start, end)))
    ordered = sorted(parsed, key=lambda item: item[1])
    for (_, earlier), (index, later) in pairwise(ordered):
        if later.start < earlier.end:
            errors.append(
                FieldError(f"{field}[{index}]", f"interval {later} overlaps interval {earlier}")
            )
    if errors:
        raise ValidationFailed(errors)
    return tuple(interval for _, interval in ordered)


def parse_weekly_schedule(
    raw: Mapping[str, Sequence[tuple[str, str]]], field: str = "weekly_schedule"
) -> WeeklySchedule:
    errors: list[FieldError] = []
    days: list[tuple[Interval, ...]] = [() for _ in WEEKDAYS]
    for name, intervals in raw.items():
        if name not in WEEKDAYS:
            errors.append(
                FieldError(f"{field}.{name}", f"unknown week day; use one of {', '.join(WEEKDAYS)}")
            )
            continue
        try:
            days[WEEKDAYS.index(name)] = parse_intervals(intervals, f"{field}.{name}")
        except ValidationFailed as exc:
            errors.extend(exc.errors)
    if errors:
        raise ValidationFailed(errors)
    return WeeklySchedule(days=tuple(days))


def intervals_for(
    day: date, weekly: WeeklySchedule, overrides: Mapping[date, tuple[Interval, ...]]
) -> tuple[Interval, ...]:
    """The date's override if one exists, else its week day's hours."""
    override = overrides.get(day)
    return override if override is not None else weekly.for_weekday(day.weekday())


# Names the system's zone files answer to that are not zones of the IANA database: the
# host's own setting (`localtime`), a placeholder, and copies in other layouts.
_NOT_IANA_NAMES = frozenset({"localtime", "Factory", "posixrules"})
_NOT_IANA_PREFIXES = ("posix/", "right/")


@cache
def _known_zone_names() -> frozenset[str]:
    return frozenset(
        name
        for name in available_timezones()
        if name not in _NOT_IANA_NAMES and not name.startswith(_NOT_IANA_PREFIXES)
    )


def zone_names() -> list[str]:
    """Every zone name `load_zone` accepts, sorted."""
    return sorted(_known_zone_names())


def load_zone(name: str) -> ZoneInfo:
    """An IANA zone by name; ValueError with a readable message for anything else."""
    if not name or len(name) > MAX_ZONE_NAME or name not in _known_zone_names():
        raise ValueError(f"{name[:MAX_ZONE_NAME]!r} is not a known IANA time zone")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:  # pragma: no cover - listed but unreadable
        raise ValueError(f"{name!r} is not a known IANA time zone") from exc
