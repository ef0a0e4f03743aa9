"""Properties of the availability math (docs/reference.md, "Availability") over random
providers and clocks.

Each check is computed independently of the code under test, from the zone's offset segments in
`tests.unit.strategies` (never from `wall_to_instant`, `bound_to_instant` or `expand_hours`).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, example, given, note, settings
from hypothesis import strategies as st

from domain.availability import (
    Availability,
    Rules,
    Slot,
    Span,
    bound_to_instant,
    day_window,
    expand_hours,
    free_slots,
)
from domain.schedule import Interval, WeeklySchedule
from tests.unit.strategies import (
    MINUTES_PER_DAY,
    RefSlot,
    Scenario,
    grid_days,
    hours_of,
    reference_grid,
    requested_days,
    round_the_clock,
    sampled_instants,
    scenarios,
    timeline,
    to_instant,
    to_minute,
    wall,
    wall_date,
    walls_near_changes,
)

# Zone loading and the first timeline scans make the first examples slow; the whole file
# stays well under twenty seconds on two cores.
PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CHEAP = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _nine_to_five(zone: str, max_advance_days: int = 365) -> Rules:
    return Rules(
        zone=ZoneInfo(zone),
        slot_minutes=30,
        weekly=WeeklySchedule(days=((Interval(9 * 60, 17 * 60),),) * 7),
        max_advance_days=max_advance_days,
    )


# Examples that always run, for cases random generation reaches only now and then.
# A long booking holding a short one that starts later: it blocks until its own end.
NESTED_BOOKINGS = Scenario(
    rules=_nine_to_five("UTC"),
    overrides={},
    blocked=[
        Span(datetime(2030, 1, 7, 10, tzinfo=UTC), datetime(2030, 1, 7, 10, 30, tzinfo=UTC)),
        Span(datetime(2030, 1, 7, 9, 30, tzinfo=UTC), datetime(2030, 1, 7, 12, tzinfo=UTC)),
    ],
    request_zone=ZoneInfo("UTC"),
    first=date(2030, 1, 7),
    last=date(2030, 1, 7),
    now=datetime(2030, 1, 1, tzinfo=UTC),
)
# Sunday enters a zero-day horizon at the first of Havana's two midnights (fall back at 01:00).
HAVANA_HORIZON = Scenario(
    rules=_nine_to_five("America/Havana", max_advance_days=0),
    overrides={},
    blocked=[],
    request_zone=ZoneInfo("America/Havana"),
    first=date(2027, 11, 7),
    last=date(2027, 11, 7),
    now=datetime(2027, 11, 7, 3, 30, tzinfo=UTC),
)


def offered(scenario: Scenario, now: datetime | None = None) -> Availability:
    window = day_window(scenario.first, scenario.last, scenario.request_zone)
    note(f"window {window.start.isoformat()} .. {window.end.isoformat()}")
    answer = free_slots(
        scenario.rules,
        scenario.overrides,
        scenario.blocked,
        window,
        scenario.now if now is None else now,
    )
    note(f"{len(answer.slots)} slots, valid until {answer.valid_until.isoformat()}")
    return answer


def as_ref(slot: Slot) -> RefSlot:
    return RefSlot(to_minute(slot.start), to_minute(slot.end), slot.local_date)


def describe(scenario: Scenario, slot: RefSlot) -> str:
    local = scenario.rules.zone.key
    return (
        f"{to_instant(slot.start).astimezone(scenario.rules.zone).isoformat()} "
        f"({to_instant(slot.start).isoformat()}) .. {to_instant(slot.end).isoformat()} "
        f"of {slot.local_date} in {local}"
    )


@CHEAP
@given(walls_near_changes())
def test_wall_times_read_as_their_first_occurrence_or_the_moment_clocks_jump(
    zone_and_wall: tuple[ZoneInfo, int],
) -> None:
    zone, wall_minute = zone_and_wall
    day = wall_date(wall_minute)
    line = timeline(zone.key, day.year - 1, day.year + 1)
    naive = to_instant(wall_minute).replace(tzinfo=None)
    first = line.first_occurrence(wall_minute)
    expected_bound = line.bound(wall_minute)
    assert bound_to_instant(naive, zone) == to_instant(expected_bound)
    if first is not None:
        assert expected_bound == first


@CHEAP
@given(requested_days())
def test_day_window_runs_from_the_first_local_midnight_to_the_one_after_the_last(
    days: tuple[ZoneInfo, date, date],
) -> None:
    zone, first, last = days
    line = timeline(zone.key, first.year - 1, last.year + 1)
    window = day_window(first, last, zone)
    assert to_minute(window.start) == line.bound(wall(first, 0))
    assert to_minute(window.end) == line.bound(wall(last, MINUTES_PER_DAY))


@CHEAP
@given(grid_days())
def test_expand_hours_yields_the_reference_grid_of_a_date(
    case: tuple[ZoneInfo, date, tuple[Interval, ...], int],
) -> None:
    zone, day, intervals, slot_minutes = case
    line = timeline(zone.key, day.year - 1, day.year + 1)
    grid = [as_ref(s) for s in expand_hours(day, intervals, zone, slot_minutes)]
    assert grid == reference_grid(line, day, intervals, slot_minutes)


@PROPERTY
@given(scenarios())
def test_expand_hours_yields_the_reference_grid_of_each_date(scenario: Scenario) -> None:
    rules = scenario.rules
    line = scenario.provider_line
    for day in scenario.provider_dates():
        intervals = hours_of(day, rules.weekly, scenario.overrides)
        grid = [as_ref(s) for s in expand_hours(day, intervals, rules.zone, rules.slot_minutes)]
        assert grid == reference_grid(line, day, intervals, rules.slot_minutes), day


@CHEAP
@given(round_the_clock())
def test_hours_round_the_clock_fill_the_requested_days_from_any_zone(scenario: Scenario) -> None:
    got = [as_ref(slot) for slot in offered(scenario).slots]
    expected = scenario.reference_free()
    assert got == expected, [describe(scenario, slot) for slot in set(got) ^ set(expected)][:5]


@PROPERTY
@given(scenarios())
def test_every_slot_lies_inside_its_dates_hours(scenario: Scenario) -> None:
    line = scenario.provider_line
    for slot in offered(scenario).slots:
        start, end = to_minute(slot.start), to_minute(slot.end)
        assert wall_date(line.local(start)) == slot.local_date
        intervals = hours_of(slot.local_date, scenario.rules.weekly, scenario.overrides)
        spans = [
            (line.bound(wall(slot.local_date, i.start)), line.bound(wall(slot.local_date, i.end)))
            for i in intervals
        ]
        assert any(low <= start and end <= high for low, high in spans), (slot, spans)


@PROPERTY
@given(scenarios())
def test_every_slot_starts_on_its_intervals_grid_and_lasts_slot_minutes(
    scenario: Scenario,
) -> None:
    line = scenario.provider_line
    slot_minutes = scenario.rules.slot_minutes
    for slot in offered(scenario).slots:
        assert slot.end - slot.start == timedelta(minutes=slot_minutes)
        start = to_minute(slot.start)
        wall_minute = line.local(start)
        # Read at its first occurrence: a repeated wall time is offered only the first time.
        assert line.first_occurrence(wall_minute) == start
        minute_of_day = wall_minute - wall(slot.local_date, 0)
        intervals = hours_of(slot.local_date, scenario.rules.weekly, scenario.overrides)
        assert any(
            i.start <= minute_of_day < i.end and (minute_of_day - i.start) % slot_minutes == 0
            for i in intervals
        ), (slot, minute_of_day, intervals)


@PROPERTY
@given(scenarios())
@example(NESTED_BOOKINGS)
def test_no_slot_widened_by_its_buffers_overlaps_a_blocked_span(scenario: Scenario) -> None:
    before = timedelta(minutes=scenario.rules.buffer_before_minutes)
    after = timedelta(minutes=scenario.rules.buffer_after_minutes)
    for slot in offered(scenario).slots:
        needs_start, needs_end = slot.start - before, slot.end + after
        for span in scenario.blocked:
            # Half-open: touching is allowed.
            assert span.end <= needs_start or needs_end <= span.start, (slot, span)


@PROPERTY
@given(scenarios(max_days=6))
def test_slots_are_ordered_and_never_overlap(scenario: Scenario) -> None:
    slots = offered(scenario).slots
    for earlier, later in pairwise(slots):
        assert earlier.start < later.start, (earlier, later)
        assert earlier.end <= later.start, (earlier, later)


@PROPERTY
@given(scenarios())
def test_no_slot_is_sooner_than_the_notice_or_beyond_the_horizon(scenario: Scenario) -> None:
    earliest = scenario.now + timedelta(minutes=scenario.rules.min_notice_minutes)
    last_day = scenario.today() + timedelta(days=scenario.rules.max_advance_days)
    for slot in offered(scenario).slots:
        assert slot.start >= earliest, slot
        assert slot.local_date <= last_day, (slot, last_day)


@PROPERTY
@given(scenarios())
def test_every_slot_starts_inside_the_requested_days(scenario: Scenario) -> None:
    window_start, window_end = scenario.reference_window()
    for slot in offered(scenario).slots:
        assert window_start <= to_minute(slot.start) < window_end, slot


@PROPERTY
@given(scenarios())
@example(NESTED_BOOKINGS)
@example(HAVANA_HORIZON)
def test_every_free_grid_slot_is_offered(scenario: Scenario) -> None:
    got = [as_ref(slot) for slot in offered(scenario).slots]
    expected = scenario.reference_free()
    missing = sorted(set(expected) - set(got))
    assert not missing, [describe(scenario, slot) for slot in missing[:5]]
    # And nothing else: together with the checks above this pins the answer down.
    unexpected = sorted(set(got) - set(expected))
    assert not unexpected, [describe(scenario, slot) for slot in unexpected[:5]]
    assert got == expected


@PROPERTY
@given(scenarios(), st.floats(0, 1, exclude_max=True))
@example(HAVANA_HORIZON, 0.9)
def test_the_answer_holds_until_valid_until(scenario: Scenario, fraction: float) -> None:
    answer = offered(scenario)
    assert answer.valid_until >= scenario.now
    later = sampled_instants(scenario.now, answer.valid_until)
    drawn = scenario.now + (answer.valid_until - scenario.now) * fraction
    if drawn < answer.valid_until:  # the product is rounded to a microsecond
        later.append(drawn)
    for instant in later:
        assert offered(scenario, instant).slots == answer.slots, instant


@given(scenarios())
def test_dates_kept_apart_give_the_same_answer_in_any_zone(scenario: Scenario) -> None:
    """What the cache keeps per provider-local date, cut to a viewer's window, is the answer.

    And each date holds until its own `valid_until`: computed again at that moment's edge it
    is unchanged.
    """
    from domain.availability import booking_reach, free_days, provider_days

    window = day_window(scenario.first, scenario.last, scenario.request_zone)
    first_day, last_day = provider_days(window, scenario.rules.zone)
    reach = booking_reach(scenario.rules, first_day, last_day)
    # The use case reads only the bookings that meet `reach`; that must be enough.
    blocked = [b for b in scenario.blocked if b.overlaps(reach)]
    days = free_days(scenario.rules, scenario.overrides, blocked, first_day, last_day, scenario.now)
    kept = [s for d in days for s in d.slots if window.start <= s.start < window.end]
    assert kept == offered(scenario).slots
    for day in days:
        assert day.valid_until >= scenario.now
        just_before = day.valid_until - timedelta(microseconds=1)
        if just_before > scenario.now:
            again = free_days(
                scenario.rules, scenario.overrides, blocked, day.day, day.day, just_before
            )
            assert again[0].slots == day.slots
