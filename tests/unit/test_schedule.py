"""Parsing and checking wall-clock hours."""

from __future__ import annotations

import pytest

from domain.errors import ValidationFailed
from domain.schedule import (
    Interval,
    load_zone,
    parse_intervals,
    parse_wall_time,
    parse_weekly_schedule,
)


@pytest.mark.parametrize(("text", "minutes"), [("00:00", 0), ("09:30", 570), ("23:59", 1439)])
def test_wall_times_read_as_minutes_after_midnight(text: str, minutes: int) -> None:
    assert parse_wall_time(text, is_end=False) == minutes


def test_24_00_is_midnight_only_as_an_end() -> None:
    assert parse_wall_time("24:00", is_end=True) == 1440
    with pytest.raises(ValueError, match="only end"):
        parse_wall_time("24:00", is_end=False)


@pytest.mark.parametrize(
    "text", ["9:00", "09:0", "0900", "24:30", "25:00", "12:60", "", "ab:cd", "09:00 "]
)
def test_malformed_wall_times_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_wall_time(text, is_end=True)


def test_intervals_are_sorted_and_touching_ones_are_kept_apart() -> None:
    parsed = parse_intervals([("13:00", "17:00"), ("09:00", "13:00")], "monday")
    assert parsed == (Interval(540, 780), Interval(780, 1020))


def test_overlapping_intervals_name_the_later_one() -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_intervals([("09:00", "12:00"), ("11:59", "13:00")], "weekly_schedule.monday")
    assert caught.value.errors[0].field == "weekly_schedule.monday[1]"
    assert "overlaps" in caught.value.errors[0].message


def test_every_problem_of_a_week_is_reported_at_once() -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_weekly_schedule(
            {"monday": [("10:00", "09:00")], "funday": [], "friday": [("09:00", "25:00")]}
        )
    fields = sorted(e.field for e in caught.value.errors)
    assert fields == [
        "weekly_schedule.friday[0].end",
        "weekly_schedule.funday",
        "weekly_schedule.monday[0]",
    ]


def test_absent_days_are_closed() -> None:
    week = parse_weekly_schedule({"tuesday": [("09:00", "17:00")]})
    assert week.for_weekday(0) == ()
    assert week.for_weekday(1) == (Interval(540, 1020),)


@pytest.mark.parametrize("name", ["America/New_York", "UTC", "Asia/Kolkata", "Etc/GMT+5"])
def test_iana_zones_load(name: str) -> None:
    assert load_zone(name).key == name


@pytest.mark.parametrize(
    "name",
    ["", "im so wrong", "../../etc/passwd", "/etc/localtime", "America/", "x" * 1000, "EST\x00"],
)
def test_anything_else_is_not_a_zone(name: str) -> None:
    with pytest.raises(ValueError, match="not a known IANA time zone"):
        load_zone(name)
