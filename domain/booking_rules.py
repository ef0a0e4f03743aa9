"""Whether a start time may be booked: the checks that need no other booking."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import NoReturn
from zoneinfo import ZoneInfo

from domain.availability import (
    Rules,
    Slot,
    bound_to_instant,
    expand_hours,
    local_today,
    wall_to_instant,
)
from domain.errors import BookingRejected
from domain.schedule import Interval


def resolve_start(start: datetime, zone: ZoneInfo) -> datetime:
    """An aware instant for `start`; a naive one is read as wall-clock time in `zone`."""
    if start.tzinfo is not None:
        return start
    instant = wall_to_instant(start, zone)
    if instant is None:
        raise BookingRejected(
            "not_on_slot_boundary",
            f"{start.isoformat()} does not exist in {zone.key}: the clocks skip it",
        )
    return instant


def check_start(
    rules: Rules,
    intervals: tuple[Interval, ...],
    start: datetime,
    accepted_at: datetime,
    now: datetime,
) -> Slot:
    """The slot starting at `start`, or BookingRejected with the API's rejection code.

    Notice and horizon count from `accepted_at` (a request that was in time stays in time
    while it waits in the queue); "in the past" counts from `now`.
    """
    zone = rules.zone
    if start < now:
        raise BookingRejected("in_past", f"{start.isoformat()} is in the past")
    if start < accepted_at + timedelta(minutes=rules.min_notice_minutes):
        raise BookingRejected(
            "too_soon",
            f"bookings need {rules.min_notice_minutes} minutes of notice",
        )
    wall = start.astimezone(zone)
    day = wall.date()
    if (day - local_today(accepted_at, zone)).days > rules.max_advance_days:
        raise BookingRejected(
            "too_far_ahead",
            f"bookings open at most {rules.max_advance_days} days ahead",
        )
    # A grid slot starts at its wall time's first occurrence, inside the interval that holds
    # that wall time; only that interval's grid needs walking, and only up to the start.
    minute = wall.hour * 60 + wall.minute
    holding = [i for i in intervals if i.start <= minute < i.end] if not wall.fold else []
    for slot in expand_hours(day, holding, zone, rules.slot_minutes):
        if slot.start == start:
            return slot
        if slot.start > start:
            break
    if wall.fold and any(i.start <= minute < i.end for i in intervals):
        _repeated_hour(start, zone)
    midnight = datetime.combine(day, datetime.min.time())
    for interval in intervals:
        opens = bound_to_instant(midnight + timedelta(minutes=interval.start), zone)
        closes = bound_to_instant(midnight + timedelta(minutes=interval.end), zone)
        if opens <= start < closes:
            return _not_on_grid(rules, start, closes)
    raise BookingRejected(
        "outside_hours", f"{start.astimezone(zone).isoformat()} is outside the provider's hours"
    )


def _repeated_hour(start: datetime, zone: ZoneInfo) -> NoReturn:
    """A start in the second pass of a fall-back day's repeated hour: the grid offers that wall
    time once, at its first occurrence."""
    wall = start.astimezone(zone)
    first = wall.replace(fold=0)
    raise BookingRejected(
        "not_on_slot_boundary",
        f"{wall.isoformat()} is in the repeated hour of the clock change in {zone.key}; "
        f"its slots are offered once, at the first occurrence ({first.isoformat()})",
    )


def _not_on_grid(rules: Rules, start: datetime, closes: datetime) -> NoReturn:
    if start + timedelta(minutes=rules.slot_minutes) > closes:
        raise BookingRejected(
            "outside_hours",
            f"a {rules.slot_minutes}-minute slot at {start.astimezone(rules.zone).isoformat()} "
            "would end after the provider's hours",
        )
    raise BookingRejected(
        "not_on_slot_boundary",
        f"{start.astimezone(rules.zone).isoformat()} is not on the provider's "
        f"{rules.slot_minutes}-minute slot grid",
    )
