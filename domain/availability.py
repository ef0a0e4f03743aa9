"""Slot grids per local date and the free slots left after bookings, notice and horizon.

All instants here are aware datetimes in UTC; wall-clock times are naive datetimes read in the
provider's zone. The rules are those of docs/reference.md ("Availability").
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from uuid import UUID
from zoneinfo import ZoneInfo

from domain.schedule import Interval, WeeklySchedule, intervals_for

MAX_RANGE_DAYS = 62
# The dates the service computes with: datetime reaches years 1 to 9999, and the rules look a
# day or two past a date in some zone; keeping a year clear of each end leaves room for that.
FIRST_COMPUTABLE_DAY = date(2, 1, 1)
LAST_COMPUTABLE_DAY = date(9998, 12, 31)
_ONE_DAY = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Span:
    """A half-open span of real time `[start, end)`."""

    start: datetime
    end: datetime

    def overlaps(self, other: Span) -> bool:
        return self.start < other.end and other.start < self.end


@dataclass(frozen=True, slots=True)
class Slot:
    start: datetime
    end: datetime
    local_date: date  # the provider-local date whose hours produced it


@dataclass(frozen=True, slots=True)
class AvailabilityQuery:
    provider_id: UUID
    first: date
    last: date
    zone: ZoneInfo | None = None  # the request's zone; None means the provider's own


@dataclass(frozen=True, slots=True)
class DayPlan:
    """What a query needs: the real-time window it asks about, the provider-local dates
    whose slots can start inside it, and the zone it is shown in."""

    window: Span
    first_day: date
    last_day: date
    zone: ZoneInfo

    @property
    def days(self) -> list[date]:
        count = (self.last_day - self.first_day).days + 1
        return [date.fromordinal(self.first_day.toordinal() + i) for i in range(count)]


@dataclass(frozen=True, slots=True)
class Rules:
    """What availability needs to know about a provider."""

    zone: ZoneInfo
    slot_minutes: int
    weekly: WeeklySchedule
    buffer_before_minutes: int = 0
    buffer_after_minutes: int = 0
    min_notice_minutes: int = 0
    max_advance_days: int = 365

    def blocked_span(self, start: datetime, end: datetime) -> Span:
        """The span a booking (or a candidate slot) `[start, end)` occupies with its buffers."""
        return Span(
            start - timedelta(minutes=self.buffer_before_minutes),
            end + timedelta(minutes=self.buffer_after_minutes),
        )


@dataclass(frozen=True, slots=True)
class Availability:
    slots: list[Slot]
    # The answer holds until this instant unless bookings or hours change: the first moment
    # a slot falls inside the notice period, or a new date enters the horizon.
    valid_until: datetime


def computable(day: date) -> bool:
    return FIRST_COMPUTABLE_DAY <= day <= LAST_COMPUTABLE_DAY


def wall_to_instant(wall: datetime, zone: ZoneInfo) -> datetime | None:
    """The first instant a naive wall time occurs in `zone`, or None if it does not exist."""
    instant = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if instant.astimezone(zone).replace(tzinfo=None) != wall:
        return None
    return instant


def bound_to_instant(wall: datetime, zone: ZoneInfo) -> datetime:
    """An interval bound as an instant: its first occurrence, or the moment the clocks jump."""
    instant = wall_to_instant(wall, zone)
    if instant is not None:
        return instant
    # In a gap, fold=1 reads the wall time with the offset after the jump, fold=0 with the
    # offset before it; the jump lies between the two. Find it to the second.
    low = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    high = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if high < low:
        low, high = high, low
    after_offset = high.astimezone(zone).utcoffset()
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) / 2
        middle = middle.replace(microsecond=0)
        if middle.astimezone(zone).utcoffset() == after_offset:
            high = middle
        else:
            low = middle
    return high


def expand_hours(
    day: date, intervals: Iterable[Interval], zone: ZoneInfo, slot_minutes: int
) -> Iterator[Slot]:
    """The grid of one local date: every slot that fits its interval, in order."""
    midnight = datetime.combine(day, time())
    length = timedelta(minutes=slot_minutes)
    previous_end: datetime | None = None
    # Most days keep one UTC offset from midnight to midnight: then a wall time is that
    # midnight's instant plus its minutes, with no zone lookups per slot.
    first = wall_to_instant(midnight, zone)
    following = wall_to_instant(midnight + _ONE_DAY, zone)
    steady = (
        first is not None
        and following is not None
        and following - first == _ONE_DAY
        and _next_offset_change(first, following, zone) is None
    )
    for interval in intervals:
        if steady:
            assert first is not None
            interval_end = first + timedelta(minutes=interval.end)
        else:
            interval_end = bound_to_instant(midnight + timedelta(minutes=interval.end), zone)
        for minute in range(interval.start, interval.end, slot_minutes):
            if steady:
                assert first is not None
                start: datetime | None = first + timedelta(minutes=minute)
            else:
                start = wall_to_instant(midnight + timedelta(minutes=minute), zone)
            if start is None:
                continue
            end = start + length
            if end > interval_end:
                # Wall times only move forward through a day, so later candidates end later.
                break
            if previous_end is not None and start < previous_end:
                # Across a spring-forward gap shorter than a slot, two wall-clock candidates
                # are closer than one slot in real time; only the first is offered.
                continue
            previous_end = end
            yield Slot(start, end, day)


def day_window(first: date, last: date, zone: ZoneInfo) -> Span:
    """The real-time span of the calendar days `first`..`last` (inclusive) in `zone`."""
    return Span(
        bound_to_instant(datetime.combine(first, time()), zone),
        bound_to_instant(datetime.combine(last + _ONE_DAY, time()), zone),
    )


def local_today(now: datetime, zone: ZoneInfo) -> date:
    return now.astimezone(zone).date()


def provider_days(window: Span, zone: ZoneInfo) -> tuple[date, date]:
    """The provider-local dates whose slots can start inside `window`.

    One day wider on each side than the window's ends read in `zone`: where clocks fell back
    across midnight (Newfoundland until 2010 went from 00:01 back to 23:01), local dates run
    backwards for a moment, and a date can appear inside a window that its ends do not name.
    """
    first = window.start.astimezone(zone).date() - _ONE_DAY
    last = (window.end - timedelta(microseconds=1)).astimezone(zone).date() + _ONE_DAY
    return first, last


def _next_offset_change(start: datetime, end: datetime, zone: ZoneInfo) -> datetime | None:
    """The instant in `(start, end]` at which `zone`'s UTC offset changes, if it does."""
    before = start.astimezone(zone).utcoffset()
    if end.astimezone(zone).utcoffset() == before:
        return None
    # Clocks change on whole seconds: search those, so the answer is the change itself.
    low, high = math.floor(start.timestamp()), math.ceil(end.timestamp())
    while high - low > 1:
        middle = (low + high) // 2
        if datetime.fromtimestamp(middle, zone).utcoffset() == before:
            low = middle
        else:
            high = middle
    return datetime.fromtimestamp(high, UTC)


def _merge(spans: Iterable[Span]) -> tuple[list[datetime], list[datetime]]:
    """Union of spans as sorted, disjoint starts and ends (touching spans join)."""
    starts: list[datetime] = []
    ends: list[datetime] = []
    for span in sorted(spans, key=lambda s: s.start):
        if ends and span.start <= ends[-1]:
            ends[-1] = max(ends[-1], span.end)
        else:
            starts.append(span.start)
            ends.append(span.end)
    return starts, ends


@dataclass(frozen=True, slots=True)
class DaySlots:
    """The free slots of one provider-local date, and the instant until which they hold."""

    day: date
    slots: list[Slot]
    valid_until: datetime


def _validity_cap(now: datetime, zone: ZoneInfo) -> datetime:
    # Cap how long an answer may be reused even when nothing in it is due to change, and end
    # it at a change of the clocks: where they fall back across midnight, "today" (and so the
    # horizon) steps back too.
    valid_until = now + timedelta(hours=1)
    change = _next_offset_change(now, valid_until, zone)
    return change if change is not None else valid_until


def _bookable(
    rules: Rules,
    day: date,
    overrides: Mapping[date, tuple[Interval, ...]],
    blocked: tuple[list[datetime], list[datetime]],
    earliest: datetime,
) -> Iterator[Slot]:
    """The slots of one local date that start no sooner than `earliest` and meet no booking."""
    blocked_starts, blocked_ends = blocked
    grid = expand_hours(
        day, intervals_for(day, rules.weekly, overrides), rules.zone, rules.slot_minutes
    )
    before = timedelta(minutes=rules.buffer_before_minutes)
    after = timedelta(minutes=rules.buffer_after_minutes)
    for slot in grid:
        if slot.start < earliest:
            continue
        if blocked_starts:
            # The slot's own span widened by the buffers, as Rules.blocked_span has it.
            index = bisect_left(blocked_starts, slot.end + after) - 1
            if index >= 0 and blocked_ends[index] > slot.start - before:
                continue
        yield slot


def booking_reach(rules: Rules, first_day: date, last_day: date) -> Span:
    """Where a booking must lie to block a slot of the local dates `first_day`..`last_day`.

    A day wider on each side: a date's slots can start outside its own midnights where the
    clocks fell back across midnight.
    """
    days = day_window(first_day - _ONE_DAY, last_day + _ONE_DAY, rules.zone)
    buffers = timedelta(minutes=rules.buffer_before_minutes + rules.buffer_after_minutes)
    return Span(days.start - buffers, days.end + buffers + timedelta(minutes=rules.slot_minutes))


def free_days(
    rules: Rules,
    overrides: Mapping[date, tuple[Interval, ...]],
    blocked: Sequence[Span],
    first_day: date,
    last_day: date,
    now: datetime,
) -> list[DaySlots]:
    """Per provider-local date `first_day`..`last_day`: what a client may book at `now`.

    Each date's answer is exact until its own `valid_until` unless bookings or hours change,
    so it can be kept and reused apart from the others (and for viewers in any zone).
    """
    zone = rules.zone
    earliest = now + timedelta(minutes=rules.min_notice_minutes)
    today = local_today(now, zone)
    last_bookable_day = today + timedelta(days=rules.max_advance_days)
    merged = _merge(blocked)
    cap = _validity_cap(now, zone)
    # Tomorrow's local midnight brings one more date into the horizon.
    next_midnight = bound_to_instant(datetime.combine(today + _ONE_DAY, time()), zone)
    answers: list[DaySlots] = []
    day = first_day
    while day <= last_day:
        if day > last_bookable_day:
            answers.append(DaySlots(day, [], min(cap, next_midnight)))
        else:
            slots = list(_bookable(rules, day, overrides, merged, earliest))
            valid_until = cap
            if slots:
                notice = timedelta(minutes=rules.min_notice_minutes)
                valid_until = min(cap, slots[0].start - notice)
            answers.append(DaySlots(day, slots, valid_until))
        day += _ONE_DAY
    return answers


def free_slots(
    rules: Rules,
    overrides: Mapping[date, tuple[Interval, ...]],
    blocked: Sequence[Span],
    window: Span,
    now: datetime,
) -> Availability:
    """Slots starting inside `window` that a client may book at `now`."""
    zone = rules.zone
    earliest = now + timedelta(minutes=rules.min_notice_minutes)
    today = local_today(now, zone)
    last_bookable_day = today + timedelta(days=rules.max_advance_days)
    merged = _merge(blocked)
    valid_until = _validity_cap(now, zone)

    slots: list[Slot] = []
    day, last_day = provider_days(window, zone)
    while day <= last_day:
        if day > last_bookable_day:
            # Tomorrow's local midnight brings one more date into the horizon.
            next_midnight = bound_to_instant(datetime.combine(today + _ONE_DAY, time()), zone)
            valid_until = min(valid_until, next_midnight)
            break
        slots.extend(
            slot
            for slot in _bookable(rules, day, overrides, merged, earliest)
            if window.start <= slot.start < window.end
        )
        day += _ONE_DAY
    if slots:
        valid_until = min(valid_until, slots[0].start - timedelta(minutes=rules.min_notice_minutes))
    return Availability(slots=slots, valid_until=valid_until)
