"""Hypothesis strategies for the availability math, and the independent reference model they share.

The reference model never reads a wall time with `fold`: it only converts instants to local time
(which is unambiguous), finds every UTC offset change of a zone by scanning, and answers wall-time
questions from those offset segments. Instants are whole minutes since the Unix epoch (UTC);
wall times are whole minutes since 1970-01-01 00:00 on the local clock.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

from hypothesis import strategies as st

from domain.availability import Rules, Span
from domain.schedule import Interval, WeeklySchedule

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
EPOCH_DAY = date(1970, 1, 1)
MINUTES_PER_DAY = 1440
# Generated dates start in 2011. Until 2010 Newfoundland, Moncton and Goose Bay fell back at
# 00:01 to 23:01 of the day before (local dates running backwards); the reference below is
# not built for that, and two named tests in test_dst_edges.py cover it instead.
FIRST_DATE = date(2011, 1, 1)
EARLIEST_NOW = datetime(2011, 1, 1, tzinfo=UTC)
LAST_DATE = date(2039, 12, 31)
# No offset is further than this from UTC: a wall time w occurs within this of w read as UTC.
_OFFSET_REACH = 16 * 60
# Offset changes are months apart, and never undone within this many minutes.
_SCAN_STEP = 6 * 60

# Zones whose clocks are unusual: 30-minute DST (Lord Howe), changes at midnight (Santiago,
# Havana, Beirut, Asuncion, Gaza), a skipped calendar day (Apia, 2011-12-30), odd offsets
# (Chatham, St John's, Kolkata, Kathmandu, Kiritimati at +14:00), negative DST (Dublin), a
# two-hour DST (Troll), DST that stopped (Sao Paulo, Tehran), and plain ones.
UNUSUAL_ZONES = (
    "America/New_York",
    "Europe/London",
    "Australia/Lord_Howe",
    "America/Santiago",
    "America/Havana",
    "Asia/Kolkata",
    "Pacific/Apia",
    "Pacific/Chatham",
    "America/St_Johns",
    "UTC",
    "America/Goose_Bay",
    "Europe/Dublin",
    "Antarctica/Troll",
    "Asia/Kathmandu",
    "Asia/Tehran",
    "Africa/Casablanca",
    "America/Sao_Paulo",
    "Pacific/Kiritimati",
    "Asia/Beirut",
    "America/Asuncion",
    "Asia/Gaza",
)
ALL_ZONES = tuple(sorted(name for name in available_timezones() if "/" in name or name == "UTC"))
# For choices that should mostly go one way (hypothesis favours the first element).
MOSTLY = (True, True, True, False)
COMMON_SLOT_MINUTES = (15, 30, 45, 60, 90)
# Wall times where clocks change somewhere (midnight, 00:01, 01:00, 01:30, 02:00, 02:30, 03:00)
# and the ends of the day.
INTERESTING_MINUTES = (0, 1, 30, 60, 61, 90, 120, 150, 180, 1380, 1410, 1439, 1440)


def to_instant(minute: int) -> datetime:
    return EPOCH + timedelta(minutes=minute)


def to_minute(instant: datetime) -> int:
    """An instant that must fall on a whole minute, as minutes since the epoch."""
    delta = instant - EPOCH
    assert delta % timedelta(minutes=1) == timedelta(0), f"{instant} is not on a whole minute"
    return delta // timedelta(minutes=1)


def floor_minute(instant: datetime) -> int:
    return (instant - EPOCH) // timedelta(minutes=1)


def wall(day: date, minute_of_day: int) -> int:
    """`minute_of_day` minutes after local midnight of `day` (1440 is the next midnight)."""
    return (day - EPOCH_DAY).days * MINUTES_PER_DAY + minute_of_day


def wall_date(wall_minute: int) -> date:
    return EPOCH_DAY + timedelta(days=wall_minute // MINUTES_PER_DAY)


def _offset_minutes(zone: ZoneInfo, minute: int) -> int:
    offset = to_instant(minute).astimezone(zone).utcoffset()
    assert offset is not None
    assert offset % timedelta(minutes=1) == timedelta(0), f"{zone.key} has a sub-minute offset"
    return offset // timedelta(minutes=1)


@cache
def _year_segments(key: str, year: int) -> tuple[tuple[int, int], ...]:
    """(first UTC minute, offset) of each stretch of constant offset that starts in `year`."""
    zone = ZoneInfo(key)
    start = to_minute(datetime(year, 1, 1, tzinfo=UTC))
    stop = to_minute(datetime(year + 1, 1, 1, tzinfo=UTC))
    segments = [(start, _offset_minutes(zone, start))]
    for step in range(start, stop, _SCAN_STEP):
        if _offset_minutes(zone, step + _SCAN_STEP) == segments[-1][1]:
            continue
        # Something changed in this step: look hour by hour (offsets change at most once an
        # hour in any real zone), then find the minute.
        for hour in range(step, step + _SCAN_STEP, 60):
            after = _offset_minutes(zone, hour + 60)
            if after == segments[-1][1]:
                continue
            low, high = hour, hour + 60  # low has the old offset, high the new one
            while high - low > 1:
                middle = (low + high) // 2
                if _offset_minutes(zone, middle) == after:
                    high = middle
                else:
                    low = middle
            segments.append((high, after))
    return tuple(segments)


@dataclass(frozen=True, slots=True)
class ZoneTimeline:
    """A zone's UTC offsets over a few years, answering wall-clock questions by brute force."""

    key: str
    starts: tuple[int, ...]  # UTC minute each segment starts
    offsets: tuple[int, ...]
    stop: int  # UTC minute the last segment ends

    def _segment_range(self, wall_minute: int) -> range:
        """Segments that may hold instants whose local time is near `wall_minute`."""
        low = wall_minute - _OFFSET_REACH
        high = wall_minute + _OFFSET_REACH
        assert self.starts[0] <= low and high < self.stop, f"{wall_minute} outside the timeline"
        first = bisect_right(self.starts, low) - 1
        last = bisect_right(self.starts, high) - 1
        return range(first, last + 1)

    def _end(self, index: int) -> int:
        return self.starts[index + 1] if index + 1 < len(self.starts) else self.stop

    def offset_at(self, minute: int) -> int:
        return self.offsets[bisect_right(self.starts, minute) - 1]

    def local(self, minute: int) -> int:
        """The wall time at UTC minute `minute`."""
        return minute + self.offset_at(minute)

    def local_date(self, instant: datetime) -> date:
        return wall_date(self.local(floor_minute(instant)))

    def first_occurrence(self, wall_minute: int) -> int | None:
        """The first instant the clocks show `wall_minute`, or None if they never do."""
        for index in self._segment_range(wall_minute):
            offset = self.offsets[index]
            if self.starts[index] + offset <= wall_minute < self._end(index) + offset:
                return wall_minute - offset
        return None

    def bound(self, wall_minute: int) -> int:
        """The first instant the clocks show `wall_minute` or later (a gap: the jump moment)."""
        for index in self._segment_range(wall_minute):
            offset = self.offsets[index]
            if self._end(index) + offset > wall_minute:
                return max(self.starts[index], wall_minute - offset)
        raise AssertionError(f"{wall_minute} is never reached")  # pragma: no cover

    def changes(self) -> list[tuple[int, int, int]]:
        """(UTC minute, offset before, offset after) of every change on the timeline."""
        return [
            (start, before, after)
            for start, before, after in zip(
                self.starts[1:], self.offsets, self.offsets[1:], strict=False
            )
        ]


@cache
def timeline(key: str, first_year: int, last_year: int) -> ZoneTimeline:
    starts: list[int] = []
    offsets: list[int] = []
    for year in range(first_year, last_year + 1):
        for start, offset in _year_segments(key, year):
            if offsets and offsets[-1] == offset:
                continue
            starts.append(start)
            offsets.append(offset)
    stop = to_minute(datetime(last_year + 1, 1, 1, tzinfo=UTC))
    return ZoneTimeline(key, tuple(starts), tuple(offsets), stop)


def timeline_around(zone: ZoneInfo, *days: date) -> ZoneTimeline:
    """A timeline reaching a few days past each of `days`."""
    margin = timedelta(days=3)
    first_year = min(day - margin for day in days).year
    last_year = max(day + margin for day in days).year
    return timeline(zone.key, first_year, last_year)


# --- The reference availability ---------------------------------------------------------------


@dataclass(frozen=True, slots=True, order=True)
class RefSlot:
    start: int  # UTC minutes
    end: int
    local_date: date


def hours_of(
    day: date, weekly: WeeklySchedule, overrides: Mapping[date, tuple[Interval, ...]]
) -> tuple[Interval, ...]:
    return overrides[day] if day in overrides else weekly.days[day.weekday()]


def reference_grid(
    line: ZoneTimeline,
    day: date,
    intervals: Sequence[Interval],
    slot_minutes: int,
) -> list[RefSlot]:
    """Every grid slot of one local date (docs/reference.md's rules), from the offset segments.

    A candidate that starts before the previous grid slot of the date ends is skipped (across a
    spring-forward gap shorter than a slot), so that slots never overlap: the intended rule.
    """
    grid: list[RefSlot] = []
    previous_end: int | None = None
    for interval in sorted(intervals):
        interval_end = line.bound(wall(day, interval.end))
        for minute in range(interval.start, interval.end, slot_minutes):
            start = line.first_occurrence(wall(day, minute))
            if start is None:
                continue
            end = start + slot_minutes
            if end > interval_end:
                continue
            if previous_end is not None and start < previous_end:
                continue
            previous_end = end
            grid.append(RefSlot(start, end, day))
    return grid


@dataclass(frozen=True, slots=True)
class Scenario:
    rules: Rules
    overrides: dict[date, tuple[Interval, ...]]
    blocked: list[Span]
    request_zone: ZoneInfo
    first: date
    last: date
    now: datetime

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """How hypothesis prints a falsifying example."""
        printer.text(repr(self))

    def __repr__(self) -> str:
        return (
            f"Scenario(zone={self.rules.zone.key}, request_zone={self.request_zone.key}, "
            f"first={self.first}, last={self.last}, now={self.now.isoformat()}, "
            f"slot_minutes={self.rules.slot_minutes}, "
            f"buffers=({self.rules.buffer_before_minutes}, {self.rules.buffer_after_minutes}), "
            f"min_notice={self.rules.min_notice_minutes}, "
            f"max_advance_days={self.rules.max_advance_days}, "
            f"weekly={self.rules.weekly.as_names()}, overrides={self.overrides}, "
            f"blocked={[(b.start.isoformat(), b.end.isoformat()) for b in self.blocked]})"
        )

    @property
    def provider_line(self) -> ZoneTimeline:
        return timeline_around(self.rules.zone, self.first, self.last, self.now.date())

    @property
    def request_line(self) -> ZoneTimeline:
        return timeline_around(self.request_zone, self.first, self.last)

    def provider_dates(self) -> list[date]:
        """Provider dates that may hold a slot inside the window (offsets differ < 2 days)."""
        return [
            self.first + timedelta(days=n) for n in range(-2, (self.last - self.first).days + 3)
        ]

    def reference_window(self) -> tuple[int, int]:
        line = self.request_line
        return line.bound(wall(self.first, 0)), line.bound(wall(self.last, MINUTES_PER_DAY))

    def reference_grid(self) -> list[RefSlot]:
        line = self.provider_line
        grid: list[RefSlot] = []
        for day in self.provider_dates():
            intervals = hours_of(day, self.rules.weekly, self.overrides)
            grid.extend(reference_grid(line, day, intervals, self.rules.slot_minutes))
        return grid

    def today(self, now: datetime | None = None) -> date:
        return self.provider_line.local_date(self.now if now is None else now)

    def reference_free(self, now: datetime | None = None) -> list[RefSlot]:
        """The slots free_slots should offer at `now` (the scenario's own by default)."""
        now = self.now if now is None else now
        rules = self.rules
        window_start, window_end = self.reference_window()
        earliest = now + timedelta(minutes=rules.min_notice_minutes)
        last_day = self.today(now) + timedelta(days=rules.max_advance_days)
        before = rules.buffer_before_minutes
        after = rules.buffer_after_minutes
        free: list[RefSlot] = []
        for slot in self.reference_grid():
            if not window_start <= slot.start < window_end:
                continue
            if to_instant(slot.start) < earliest or slot.local_date > last_day:
                continue
            needs = Span(to_instant(slot.start - before), to_instant(slot.end + after))
            if any(b.start < needs.end and needs.start < b.end for b in self.blocked):
                continue
            free.append(slot)
        return sorted(free)


# --- Strategies ----------------------------------------------------------------------------------

zones = st.one_of(
    st.sampled_from(UNUSUAL_ZONES),
    st.sampled_from(UNUSUAL_ZONES),
    st.sampled_from(UNUSUAL_ZONES),
    st.sampled_from(ALL_ZONES),
).map(ZoneInfo)

slot_lengths = st.one_of(
    st.sampled_from(COMMON_SLOT_MINUTES), st.integers(1, 240), st.integers(1, MINUTES_PER_DAY)
)

buffer_lengths = st.one_of(st.just(0), st.sampled_from((5, 10, 15, 30, 60)), st.integers(0, 240))

notice_lengths = st.one_of(
    st.just(0), st.sampled_from((30, 60, 120, MINUTES_PER_DAY)), st.integers(0, 4 * 1440)
)

horizons = st.one_of(st.sampled_from((0, 1, 2, 7, 30, 365)), st.integers(0, 400))

wall_minutes = st.one_of(
    st.sampled_from(INTERESTING_MINUTES),
    st.sampled_from(range(0, MINUTES_PER_DAY + 1, 15)),
    st.integers(0, MINUTES_PER_DAY),
)


@st.composite
def day_hours(draw: st.DrawFn, focus: Sequence[int] = ()) -> tuple[Interval, ...]:
    """Sorted, disjoint intervals of one day; neighbours often touch, some end at 24:00.

    Bounds are drawn partly from `focus` (wall times around a clock change of that day) and from
    the wall times where clocks change somewhere.
    """
    points_from = (
        st.one_of(wall_minutes, st.sampled_from(focus), st.sampled_from(focus))
        if focus
        else wall_minutes
    )
    points = sorted(draw(st.lists(points_from, max_size=8, unique=True)))
    pairs = list(pairwise(points))
    keep = draw(st.lists(st.booleans(), min_size=len(pairs), max_size=len(pairs)))
    return tuple(Interval(a, b) for (a, b), kept in zip(pairs, keep, strict=True) if kept)


@dataclass(frozen=True, slots=True)
class Focus:
    """Where a scenario looks: a date and, if the clocks change near it, the wall times (minutes
    of that day) where they leave and land, and how far they move."""

    day: date
    change: tuple[int, int] | None = None  # (earlier, later) wall time of the change
    change_minutes: int = 0

    @property
    def walls(self) -> tuple[int, ...]:
        if self.change is None:
            return ()
        return tuple(
            sorted(
                {
                    edge + nudge
                    for edge in self.change
                    for nudge in (-60, -30, -1, 0, 1, 30, 60)
                    if 0 <= edge + nudge <= MINUTES_PER_DAY
                }
            )
        )


@st.composite
def focuses(draw: st.DrawFn, zone: ZoneInfo, other_zone: ZoneInfo) -> Focus:
    """Any date (a few examples), or the local date of a clock change of `zone` (most) or
    `other_zone`."""
    # Hypothesis favours the first of sampled choices, so the interesting one comes first.
    if not draw(st.sampled_from(MOSTLY)):
        return Focus(draw(st.dates(FIRST_DATE, LAST_DATE)))
    looked_in = (zone, other_zone) if draw(st.sampled_from(MOSTLY)) else (other_zone, zone)
    changes: list[tuple[int, int, int]] = []
    for candidate in looked_in:
        for _ in range(3):  # many zones have no change in a given year; look in a few
            year = draw(st.integers(FIRST_DATE.year, LAST_DATE.year))
            changes = timeline(candidate.key, year, year).changes()
            if changes:
                break
        if changes:
            break
    if not changes:
        return Focus(draw(st.dates(FIRST_DATE, LAST_DATE)))
    minute, before, after = draw(st.sampled_from(changes))
    jump_wall = minute + before  # the wall time the clocks leave
    land_wall = minute + after  # the wall time they show next
    day = wall_date(draw(st.sampled_from((jump_wall, land_wall - 1, land_wall))))
    day += timedelta(days=draw(st.sampled_from((0, 0, 0, 0, -1, 1))))
    low, high = sorted((jump_wall - wall(day, 0), land_wall - wall(day, 0)))
    return Focus(day, (low, high), abs(after - before))


@st.composite
def spanning_hours(draw: st.DrawFn, focus: Focus) -> tuple[Interval, ...]:
    """One interval of the focus day around its clock change (room for slots on both sides)."""
    assert focus.change is not None
    low, high = focus.change
    start = max(low - draw(st.sampled_from((0, 30, 1, 60, 90, 180))), 0)
    end = min(high + draw(st.sampled_from((240, 120, 480, 60, 30, 0))), MINUTES_PER_DAY)
    if start >= min(end, MINUTES_PER_DAY):
        return ()
    return (Interval(start, end),)


def focus_day_hours(focus: Focus) -> st.SearchStrategy[tuple[Interval, ...]]:
    if focus.change is None:
        return day_hours()
    return st.one_of(spanning_hours(focus), spanning_hours(focus), day_hours(focus.walls))


def spans_near(
    grid: Sequence[RefSlot], window: tuple[int, int], before: int, after: int
) -> st.SearchStrategy[Span]:
    """Blocked spans: anywhere near the window, or touching, covering or holding grid slots."""
    window_start, window_end = window
    # sampled_from spreads picks evenly where integers() would crowd the low end.
    anywhere = st.tuples(
        st.sampled_from(range(window_start - MINUTES_PER_DAY, window_end + MINUTES_PER_DAY, 7)),
        st.integers(1, 720),
    ).map(lambda pair: Span(to_instant(pair[0]), to_instant(pair[0] + pair[1])))
    if not grid:
        return anywhere

    def near_slot(slot: RefSlot, shape: int, nudge: int, length: int) -> Span:
        if shape == 0:  # ends where the slot's buffered span starts
            end = slot.start - before + nudge
            return Span(to_instant(end - length), to_instant(end))
        if shape == 1:  # starts where the slot's buffered span ends
            start = slot.end + after + nudge
            return Span(to_instant(start), to_instant(start + length))
        if shape == 2:  # covers this slot and a few after it
            start = slot.start + nudge
            return Span(to_instant(start), to_instant(slot.end + 2 * length))
        # the slot itself, booked with some buffers
        return Span(to_instant(slot.start - nudge % 60), to_instant(slot.end + length % 60))

    touching = st.builds(
        near_slot,
        st.sampled_from(grid),
        st.sampled_from((0, 1, 2, 3)),
        st.sampled_from((0, -1, 1, 0, 0)),
        st.integers(1, 240),
    )
    return st.one_of(touching, touching, anywhere)


_NUDGES = (
    timedelta(microseconds=-1),
    timedelta(0),
    timedelta(microseconds=1),
    timedelta(minutes=-1),
    timedelta(seconds=30),
)


def nows(
    zone: ZoneInfo, rules: Rules, first: date, grid: Sequence[RefSlot]
) -> st.SearchStrategy[datetime]:
    return _nows(zone, rules, first, grid).map(lambda now: max(now, EARLIEST_NOW))


@st.composite
def _nows(
    draw: st.DrawFn, zone: ZoneInfo, rules: Rules, first: date, grid: Sequence[RefSlot]
) -> datetime:
    """A clock reading where the answer is about to change, or anywhere near the window.

    Right at a slot's notice deadline, at the local midnight that brings a slot's date into the
    horizon, near a clock change, or within a few days of the window.
    """
    shape = draw(st.integers(0, 4)) if grid else draw(st.integers(3, 4))
    nudge = draw(st.sampled_from(_NUDGES))
    if shape == 0:
        slot = draw(st.sampled_from(grid))
        return to_instant(slot.start) - timedelta(minutes=rules.min_notice_minutes) + nudge
    if shape == 1:
        slot = draw(st.sampled_from(grid))
        day = slot.local_date - timedelta(days=rules.max_advance_days)
        return to_instant(timeline_around(zone, day).bound(wall(day, 0))) + nudge
    if shape == 2:
        slot = draw(st.sampled_from(grid))
        day = slot.local_date - timedelta(days=rules.max_advance_days)
        line = timeline_around(zone, day)
        midnight = line.bound(wall(day, 0))
        if changes := line.changes():
            minute, _, _ = min(changes, key=lambda change: abs(change[0] - midnight))
            return to_instant(minute + draw(st.integers(-90, 90))) + nudge
    anchor_day = draw(st.sampled_from((first, first - timedelta(days=rules.max_advance_days))))
    anchor = timeline_around(zone, anchor_day).bound(wall(anchor_day, 0))
    spread = draw(st.sampled_from((90, 3 * MINUTES_PER_DAY)))
    minute = anchor + draw(st.integers(-spread, spread))
    seconds = draw(st.one_of(st.just(0), st.integers(0, 59)))
    micros = draw(st.one_of(st.just(0), st.integers(0, 999_999)))
    return to_instant(minute) + timedelta(seconds=seconds, microseconds=micros)


@st.composite
def scenarios(draw: st.DrawFn, max_days: int = 3) -> Scenario:
    zone = draw(zones)
    request_zone = draw(st.one_of(st.just(zone), zones))
    focus = draw(focuses(zone, request_zone))
    first = focus.day - timedelta(days=draw(st.sampled_from((0, 0, 0, 1))))
    last = max(first + timedelta(days=draw(st.integers(0, max_days))), focus.day)
    rules = Rules(
        zone=zone,
        # Slots a little longer than a spring-forward gap straddle it: the overlap rule.
        slot_minutes=draw(
            st.one_of(slot_lengths, st.integers(1, 90).map(lambda n: n + focus.change_minutes))
        ),
        weekly=draw(
            st.lists(day_hours(focus.walls), min_size=7, max_size=7).map(
                lambda days: WeeklySchedule(days=tuple(days))
            )
        ),
        buffer_before_minutes=draw(buffer_lengths),
        buffer_after_minutes=draw(buffer_lengths),
        min_notice_minutes=draw(notice_lengths),
        max_advance_days=draw(horizons),
    )
    bare = Scenario(rules, {}, [], request_zone, first, last, datetime.combine(first, time(), UTC))
    overrides = {
        day: draw(day_hours())
        for day in bare.provider_dates()
        if day != focus.day and not draw(st.sampled_from(MOSTLY))
    }
    if draw(st.sampled_from(MOSTLY)):
        overrides[focus.day] = draw(focus_day_hours(focus))
    with_hours = Scenario(rules, overrides, [], request_zone, first, last, bare.now)
    grid = with_hours.reference_grid()
    window = with_hours.reference_window()
    in_window = [slot for slot in grid if window[0] <= slot.start < window[1]]
    # A drawn count: hypothesis would leave most lists empty.
    count = draw(st.sampled_from((3, 1, 2, 0, 4, 6)))
    blocked = draw(
        st.lists(
            spans_near(
                in_window or grid, window, rules.buffer_before_minutes, rules.buffer_after_minutes
            ),
            min_size=count,
            max_size=count,
        )
    )
    nest = draw(st.booleans())
    if blocked and nest:
        # One span inside another: the outer one keeps blocking after the inner one ends.
        inner = draw(st.sampled_from(blocked))
        widen = draw(st.sampled_from((60, 0, 15, 180, 480)))
        blocked.append(
            Span(
                inner.start - timedelta(minutes=draw(st.sampled_from((15, 0)))),
                inner.end + timedelta(minutes=widen),
            )
        )
    edge = draw(horizon_edges(zone, in_window)) if draw(st.sampled_from(MOSTLY)) else None
    if edge is None:
        now = draw(nows(zone, rules, first, in_window))
    else:
        max_advance_days, now = edge
        rules = replace(rules, max_advance_days=max_advance_days)
    return Scenario(rules, overrides, blocked, request_zone, first, last, now)


@st.composite
def horizon_edges(
    draw: st.DrawFn, zone: ZoneInfo, grid: Sequence[RefSlot]
) -> tuple[int, datetime] | None:
    """A horizon and a clock reading at which a slot's date is about to enter the horizon on a
    day the clocks change: just before that local midnight, or just before the change."""
    if not grid:
        return None
    slot = draw(st.sampled_from(grid))
    line = timeline_around(zone, slot.local_date - timedelta(days=400), slot.local_date)
    changes = [
        change
        for change in line.changes()
        if slot.local_date - timedelta(days=400)
        <= wall_date(change[0] + change[2])
        <= slot.local_date
    ]
    if not changes:
        return None
    minute, before, after = draw(st.sampled_from(changes[::-1]))
    day = draw(st.sampled_from((wall_date(minute + after), wall_date(minute - 1 + before))))
    max_advance_days = (slot.local_date - day).days
    if max_advance_days < 0:
        return None
    at = draw(st.sampled_from((line.bound(wall(day, 0)), minute)))
    now = to_instant(at) + draw(st.sampled_from(_NUDGES))
    return max_advance_days, max(now, EARLIEST_NOW)


@st.composite
def round_the_clock(draw: st.DrawFn) -> Scenario:
    """A provider open every minute of every day, asked from any zone, well ahead, no bookings."""
    zone = draw(zones)
    request_zone = draw(zones)
    focus = draw(focuses(zone, request_zone))
    first = focus.day - timedelta(days=draw(st.sampled_from((0, 1))))
    last = max(first + timedelta(days=draw(st.sampled_from((0, 1, 2)))), focus.day)
    every_day = (Interval(0, MINUTES_PER_DAY),)
    rules = Rules(
        zone=zone,
        slot_minutes=draw(st.sampled_from((60, 30, 15, 45, 90, 7, 240))),
        weekly=WeeklySchedule(days=(every_day,) * 7),
        max_advance_days=1000,
    )
    now = datetime.combine(first - timedelta(days=10), time(), UTC)
    return Scenario(rules, {}, [], request_zone, first, last, now)


@st.composite
def grid_days(draw: st.DrawFn) -> tuple[ZoneInfo, date, tuple[Interval, ...], int]:
    """One provider date, mostly one with a clock change, its hours and a slot length."""
    zone = draw(zones)
    focus = draw(focuses(zone, zone))
    hours = draw(focus_day_hours(focus))
    gap_relative = st.integers(1, 90).map(lambda n: n + focus.change_minutes)
    slot_minutes = draw(st.one_of(gap_relative, slot_lengths))
    return zone, focus.day, hours, slot_minutes


@st.composite
def requested_days(draw: st.DrawFn) -> tuple[ZoneInfo, date, date]:
    """A request zone and an inclusive range of its days, mostly starting or ending at a change."""
    zone = draw(zones)
    focus = draw(focuses(zone, zone))
    first = focus.day - timedelta(days=draw(st.sampled_from((0, 1, 0, 2))))
    last = max(first + timedelta(days=draw(st.sampled_from((0, 1, 2, 6)))), focus.day)
    return zone, first, last


@st.composite
def walls_near_changes(draw: st.DrawFn) -> tuple[ZoneInfo, int]:
    """A zone and a wall time (minutes) close to one of its clock changes, or anywhere."""
    zone = draw(zones)
    year = draw(st.integers(FIRST_DATE.year, LAST_DATE.year))
    changes = timeline(zone.key, year, year).changes()
    if changes and draw(st.sampled_from(MOSTLY)):
        minute, before, _ = draw(st.sampled_from(changes))
        return zone, minute + before + draw(st.integers(-180, 180))
    day = draw(st.dates(date(year, 1, 1), date(year, 12, 31)))
    return zone, wall(day, draw(wall_minutes))


def sampled_instants(low: datetime, high: datetime) -> list[datetime]:
    """A few instants in [low, high): the ends and points in between."""
    if high <= low:
        return []
    gap = high - low
    points = {low, high - timedelta(microseconds=1), low + gap / 2, low + gap / 7}
    return sorted(point for point in points if low <= point < high)
