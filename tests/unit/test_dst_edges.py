"""Named daylight-saving edges of the availability math, each with the instants it must produce.

The clock changes these rely on are checked against zoneinfo in the tests themselves, so a tzdata
update that moved them would fail loudly here rather than make a test pass for the wrong reason.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest

from domain.availability import Rules, bound_to_instant, day_window, expand_hours, free_slots
from domain.schedule import CLOSED_WEEK, Interval, WeeklySchedule, parse_wall_time

NEW_YORK = ZoneInfo("America/New_York")


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def hours(start: str, end: str) -> tuple[Interval, ...]:
    return (Interval(parse_wall_time(start, is_end=False), parse_wall_time(end, is_end=True)),)


def occurrences(wall: datetime, zone: ZoneInfo) -> set[datetime]:
    """Every instant at which the clocks in `zone` show the naive `wall` (none, one or two)."""
    return {
        instant
        for fold in (0, 1)
        if (instant := wall.replace(tzinfo=zone, fold=fold).astimezone(UTC))
        .astimezone(zone)
        .replace(tzinfo=None)
        == wall
    }


def exists(wall: datetime, zone: ZoneInfo) -> bool:
    return bool(occurrences(wall, zone))


def offered(
    zone: ZoneInfo,
    overrides: dict[date, tuple[Interval, ...]],
    slot_minutes: int,
    first: date,
    last: date | None = None,
    weekly: WeeklySchedule = CLOSED_WEEK,
) -> list[tuple[datetime, datetime]]:
    """Free slots of the provider-zone days `first`..`last`, asked a month ahead, no bookings."""
    rules = Rules(zone=zone, slot_minutes=slot_minutes, weekly=weekly, max_advance_days=3650)
    window = day_window(first, last or first, zone)
    now = window.start - timedelta(days=30)
    answer = free_slots(rules, overrides, [], window, now)
    return [(slot.start, slot.end) for slot in answer.slots]


def assert_never_overlap(slots: list[tuple[datetime, datetime]]) -> None:
    for (_, earlier_end), (later_start, _) in pairwise(slots):
        assert earlier_end <= later_start


def test_new_york_90_minute_slots_never_overlap_on_spring_forward_day() -> None:
    day = date(2027, 3, 14)
    assert not exists(datetime(2027, 3, 14, 2, 30), NEW_YORK)
    slots = offered(NEW_YORK, {day: hours("00:00", "06:00")}, 90, day)
    # Candidates 00:00, 01:30, 03:00 and 04:30: 01:30 EST runs to 04:00 EDT, so 03:00 EDT (only
    # 30 real minutes after 01:30) is skipped rather than offered on top of it.
    assert slots == [
        (utc("2027-03-14T05:00Z"), utc("2027-03-14T06:30Z")),
        (utc("2027-03-14T06:30Z"), utc("2027-03-14T08:00Z")),
        (utc("2027-03-14T08:30Z"), utc("2027-03-14T10:00Z")),
    ]
    assert_never_overlap(slots)


def test_interval_ending_at_a_nonexistent_time_ends_when_the_clocks_jump() -> None:
    day = date(2027, 3, 14)
    end = datetime(2027, 3, 14, 2, 30)
    assert not exists(end, NEW_YORK)
    assert bound_to_instant(end, NEW_YORK) == utc("2027-03-14T07:00Z")
    slots = offered(NEW_YORK, {day: hours("00:00", "02:30")}, 30, day)
    assert slots == [
        (utc("2027-03-14T05:00Z"), utc("2027-03-14T05:30Z")),
        (utc("2027-03-14T05:30Z"), utc("2027-03-14T06:00Z")),
        (utc("2027-03-14T06:00Z"), utc("2027-03-14T06:30Z")),
        # 01:30 EST: ends at 07:00Z, the jump, which is the interval's end.
        (utc("2027-03-14T06:30Z"), utc("2027-03-14T07:00Z")),
    ]


@pytest.mark.parametrize(
    ("zone_name", "saturday", "jump", "saturday_slots", "sunday_slots"),
    [
        pytest.param(
            "America/Santiago",
            date(2026, 9, 5),
            "2026-09-06T04:00Z",
            [
                ("2026-09-06T02:00Z", "2026-09-06T03:00Z"),
                ("2026-09-06T03:00Z", "2026-09-06T04:00Z"),
            ],
            [("2026-09-06T04:00Z", "2026-09-06T05:00Z")],
            id="santiago",
        ),
        pytest.param(
            "America/Havana",
            date(2027, 3, 13),
            "2027-03-14T05:00Z",
            [
                ("2027-03-14T03:00Z", "2027-03-14T04:00Z"),
                ("2027-03-14T04:00Z", "2027-03-14T05:00Z"),
            ],
            [("2027-03-14T05:00Z", "2027-03-14T06:00Z")],
            id="havana",
        ),
    ],
)
def test_24_00_end_is_the_jump_when_the_next_midnight_does_not_exist(
    zone_name: str,
    saturday: date,
    jump: str,
    saturday_slots: list[tuple[str, str]],
    sunday_slots: list[tuple[str, str]],
) -> None:
    zone = ZoneInfo(zone_name)
    sunday = saturday + timedelta(days=1)
    sunday_midnight = datetime.combine(sunday, time())
    # The clocks go from 23:59:59 on Saturday straight to 01:00 on Sunday.
    assert not exists(sunday_midnight, zone)
    assert not exists(sunday_midnight + timedelta(minutes=59), zone)
    assert exists(sunday_midnight + timedelta(hours=1), zone)
    assert bound_to_instant(sunday_midnight, zone) == utc(jump)

    overrides = {saturday: hours("22:00", "24:00"), sunday: hours("00:00", "02:00")}
    expected_saturday = [(utc(start), utc(end)) for start, end in saturday_slots]
    expected_sunday = [(utc(start), utc(end)) for start, end in sunday_slots]
    assert offered(zone, overrides, 60, saturday) == expected_saturday
    # Sunday's day starts at the jump too; its first slot is 01:00, right after Saturday's last.
    assert day_window(sunday, sunday, zone).start == utc(jump)
    assert offered(zone, overrides, 60, sunday) == expected_sunday
    assert offered(zone, overrides, 60, saturday, sunday) == expected_saturday + expected_sunday


def test_lord_howe_repeated_half_hour_is_offered_once() -> None:
    zone = ZoneInfo("Australia/Lord_Howe")
    day = date(2027, 4, 4)
    # 02:00 at +11:00 becomes 01:30 at +10:30: 01:30-01:59 happen twice.
    assert occurrences(datetime(2027, 4, 4, 1, 30), zone) == {
        utc("2027-04-03T14:30Z"),
        utc("2027-04-03T15:00Z"),
    }
    slots = offered(zone, {day: hours("01:00", "03:00")}, 30, day)
    assert slots == [
        (utc("2027-04-03T14:00Z"), utc("2027-04-03T14:30Z")),  # 01:00 +11:00
        (utc("2027-04-03T14:30Z"), utc("2027-04-03T15:00Z")),  # 01:30 +11:00, the first one
        (utc("2027-04-03T15:30Z"), utc("2027-04-03T16:00Z")),  # 02:00 +10:30
        (utc("2027-04-03T16:00Z"), utc("2027-04-03T16:30Z")),  # 02:30 +10:30
    ]


def test_lord_howe_skipped_half_hour_is_not_offered() -> None:
    zone = ZoneInfo("Australia/Lord_Howe")
    day = date(2027, 10, 3)
    # 02:00 at +10:30 becomes 02:30 at +11:00: 02:00-02:29 never happen.
    assert not exists(datetime(2027, 10, 3, 2, 0), zone)
    assert not exists(datetime(2027, 10, 3, 2, 29), zone)
    assert exists(datetime(2027, 10, 3, 2, 30), zone)
    slots = offered(zone, {day: hours("01:00", "03:00")}, 30, day)
    assert slots == [
        (utc("2027-10-02T14:30Z"), utc("2027-10-02T15:00Z")),  # 01:00 +10:30
        (utc("2027-10-02T15:00Z"), utc("2027-10-02T15:30Z")),  # 01:30 +10:30
        (utc("2027-10-02T15:30Z"), utc("2027-10-02T16:00Z")),  # 02:30 +11:00
    ]


def test_apia_offers_nothing_on_the_day_it_skipped_and_keeps_the_next_day_normal() -> None:
    zone = ZoneInfo("Pacific/Apia")
    skipped = date(2011, 12, 30)
    # Samoa went from 23:59:59 on 29 December (-10:00) to 00:00 on 31 December (+14:00).
    assert not any(
        exists(datetime.combine(skipped, time()) + timedelta(minutes=m), zone)
        for m in range(0, 1440, 30)
    )
    every_day = WeeklySchedule(days=(hours("09:00", "17:00"),) * 7)
    assert list(expand_hours(skipped, every_day.days[skipped.weekday()], zone, 60)) == []
    assert day_window(skipped, skipped, zone).start == day_window(skipped, skipped, zone).end
    assert offered(zone, {}, 60, skipped, weekly=every_day) == []

    slots = offered(zone, {}, 60, date(2011, 12, 29), date(2011, 12, 31), weekly=every_day)
    thursday = [s for s in slots if s[0] < utc("2011-12-30T10:00Z")]
    saturday = [s for s in slots if s[0] >= utc("2011-12-30T10:00Z")]
    hour = timedelta(hours=1)
    # 09:00-17:00 at -10:00 on the 29th, then 09:00-17:00 at +14:00 on the 31st.
    assert thursday == [
        (utc("2011-12-29T19:00Z") + n * hour, utc("2011-12-29T20:00Z") + n * hour) for n in range(8)
    ]
    assert saturday == [
        (utc("2011-12-30T19:00Z") + n * hour, utc("2011-12-30T20:00Z") + n * hour) for n in range(8)
    ]
    assert len(slots) == 16


def test_interval_ending_at_a_repeated_time_ends_at_its_first_occurrence() -> None:
    day = date(2026, 11, 1)
    end = datetime(2026, 11, 1, 1, 30)
    assert occurrences(end, NEW_YORK) == {utc("2026-11-01T05:30Z"), utc("2026-11-01T06:30Z")}
    assert bound_to_instant(end, NEW_YORK) == utc("2026-11-01T05:30Z")
    assert offered(NEW_YORK, {day: hours("00:00", "01:30")}, 30, day) == [
        (utc("2026-11-01T04:00Z"), utc("2026-11-01T04:30Z")),
        (utc("2026-11-01T04:30Z"), utc("2026-11-01T05:00Z")),
        (utc("2026-11-01T05:00Z"), utc("2026-11-01T05:30Z")),  # ends at the FIRST 01:30 EDT
    ]
    # A 90-minute slot fills the interval exactly; the second 01:30 would have allowed more.
    assert offered(NEW_YORK, {day: hours("00:00", "01:30")}, 90, day) == [
        (utc("2026-11-01T04:00Z"), utc("2026-11-01T05:30Z")),
    ]


def test_havana_repeated_midnight_starts_the_day_at_its_first_occurrence() -> None:
    zone = ZoneInfo("America/Havana")
    day = date(2027, 11, 7)
    # 01:00 at -04:00 becomes 00:00 at -05:00: the day's first hour happens twice.
    assert occurrences(datetime(2027, 11, 7), zone) == {
        utc("2027-11-07T04:00Z"),
        utc("2027-11-07T05:00Z"),
    }
    assert day_window(day, day, zone).start == utc("2027-11-07T04:00Z")
    assert offered(zone, {day: hours("00:00", "02:00")}, 30, day) == [
        (utc("2027-11-07T04:00Z"), utc("2027-11-07T04:30Z")),  # 00:00 -04:00
        (utc("2027-11-07T04:30Z"), utc("2027-11-07T05:00Z")),  # 00:30 -04:00
        (utc("2027-11-07T06:00Z"), utc("2027-11-07T06:30Z")),  # 01:00 -05:00
        (utc("2027-11-07T06:30Z"), utc("2027-11-07T07:00Z")),  # 01:30 -05:00
    ]


def test_st_johns_00_01_fall_back_offers_the_midnight_slot_inside_the_window() -> None:
    zone = ZoneInfo("America/St_Johns")
    # 2010-11-07 00:00 NDT (02:30Z) happened, then at 00:01 NDT the clocks went back to
    # 2010-11-06 23:01 NST: local dates ran backwards for a minute.
    assert occurrences(datetime(2010, 11, 7), zone) == {
        utc("2010-11-07T02:30Z"),
        utc("2010-11-07T03:30Z"),
    }
    assert utc("2010-11-07T02:31Z").astimezone(zone).date() == date(2010, 11, 6)
    # Asked from Buenos Aires for 6 November: 03:00Z on the 6th to 03:00Z on the 7th.
    window = day_window(date(2010, 11, 6), date(2010, 11, 6), ZoneInfo("America/Buenos_Aires"))
    assert (window.start, window.end) == (utc("2010-11-06T03:00Z"), utc("2010-11-07T03:00Z"))
    every_day = WeeklySchedule(days=(hours("00:00", "24:00"),) * 7)
    rules = Rules(zone=zone, slot_minutes=30, weekly=every_day, max_advance_days=3650)
    answer = free_slots(rules, {}, [], window, now=utc("2010-10-01T00:00Z"))
    starts = {slot.start for slot in answer.slots}
    # 00:00 NDT on the 7th starts inside the window, so it is offered.
    assert utc("2010-11-07T02:30Z") in starts


def test_an_answer_ends_where_the_clocks_fall_back_across_midnight() -> None:
    zone = ZoneInfo("America/St_Johns")
    every_day = WeeklySchedule(days=(hours("00:00", "24:00"),) * 7)
    rules = Rules(zone=zone, slot_minutes=30, weekly=every_day, max_advance_days=0)
    window = day_window(date(2010, 11, 7), date(2010, 11, 7), zone)
    just_after_midnight = utc("2010-11-07T02:30:30Z")  # 00:00:30 NDT on the 7th: today
    answer = free_slots(rules, {}, [], window, now=just_after_midnight)
    assert answer.slots  # the 7th is today, inside a horizon of 0 days
    # At 00:01 NDT the clocks go back to 23:01 on the 6th, and the 7th is beyond the horizon
    # again: the answer must not be reused past that moment.
    assert answer.valid_until <= utc("2010-11-07T02:31Z")
    assert free_slots(rules, {}, [], window, now=utc("2010-11-07T02:31Z")).slots == []


def test_horizon_grows_at_the_first_of_two_midnights() -> None:
    zone = ZoneInfo("America/Havana")
    sunday = date(2027, 11, 7)  # 00:00-00:59 happen twice (01:00 -04:00 becomes 00:00 -05:00)
    first_midnight = utc("2027-11-07T04:00Z")
    assert occurrences(datetime.combine(sunday, time()), zone) == {
        first_midnight,
        utc("2027-11-07T05:00Z"),
    }
    every_day = WeeklySchedule(days=(hours("09:00", "11:00"),) * 7)
    rules = Rules(zone=zone, slot_minutes=60, weekly=every_day, max_advance_days=0)
    window = day_window(sunday, sunday, zone)
    # On Saturday evening Sunday is beyond a zero-day horizon; it enters at the FIRST midnight.
    before = free_slots(rules, {}, [], window, now=first_midnight - timedelta(minutes=30))
    assert before.slots == []
    assert before.valid_until == first_midnight
    after = free_slots(rules, {}, [], window, now=first_midnight)
    assert [(s.start, s.end) for s in after.slots] == [
        (utc("2027-11-07T14:00Z"), utc("2027-11-07T15:00Z")),  # 09:00 -05:00
        (utc("2027-11-07T15:00Z"), utc("2027-11-07T16:00Z")),  # 10:00 -05:00
    ]


def test_an_answer_near_a_clock_change_is_computed_when_now_has_microseconds() -> None:
    # 2026-11-01 06:00Z: New York falls back. With "now" half a second past an hour before it,
    # the search for that change once rounded its midpoint down onto its lower end, forever.
    zone = ZoneInfo("America/New_York")
    rules = Rules(
        zone=zone, slot_minutes=30, weekly=WeeklySchedule(days=(hours("09:00", "17:00"),) * 7)
    )
    now = utc("2026-11-01T05:00Z") + timedelta(microseconds=500_000)
    window = day_window(date(2026, 11, 2), date(2026, 11, 2), zone)
    answer = free_slots(rules, {}, [], window, now=now)
    assert len(answer.slots) == 16
    assert answer.valid_until == utc("2026-11-01T06:00Z")
