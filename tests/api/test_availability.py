"""Availability through the HTTP API, on both backends: the named daylight-saving regressions."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

from tests.api.conftest import Api
from tests.api.helpers import create_provider, hours, slots


def half_hours(day: str, first: str, count: int, offset: str) -> list[str]:
    start = datetime.fromisoformat(f"{day}T{first}:00")
    return [
        f"{day}T{(start.hour * 60 + start.minute + 30 * i) // 60:02d}:"
        f"{(start.minute + 30 * i) % 60:02d}:00{offset}"
        for i in range(count)
    ]


def test_new_york_hours_keep_their_wall_clock_after_spring_forward(api: Api) -> None:
    # Created in winter (the suite's clock is October; the hours were entered at -05:00 rules
    # or -04:00 alike): the hours are wall-clock, so March 15 is 09:00-16:30 at -04:00.
    provider = create_provider(api)
    march = slots(api, provider, date="2027-03-15")
    assert march == half_hours("2027-03-15", "09:00", 16, "-04:00")
    november = slots(api, provider, date="2026-11-30")
    assert november == half_hours("2026-11-30", "09:00", 16, "-05:00")


def test_los_angeles_hours_crossing_utc_midnight_keep_all_sixteen_slots(api: Api) -> None:
    provider = create_provider(api, timezone="America/Los_Angeles")
    winter_monday = slots(api, provider, date="2026-11-30")
    assert winter_monday == half_hours("2026-11-30", "09:00", 16, "-08:00")
    summer_monday = slots(api, provider, date="2027-06-14")
    assert summer_monday == half_hours("2027-06-14", "09:00", 16, "-07:00")


def test_spring_forward_day_offers_no_slot_in_the_skipped_hour(api: Api) -> None:
    provider = create_provider(api, weekly_schedule=hours(("sunday",), ("00:00", "04:00")))
    day = slots(api, provider, date="2027-03-14")
    assert day == [
        "2027-03-14T00:00:00-05:00",
        "2027-03-14T00:30:00-05:00",
        "2027-03-14T01:00:00-05:00",
        "2027-03-14T01:30:00-05:00",
        "2027-03-14T03:00:00-04:00",
        "2027-03-14T03:30:00-04:00",
    ]
    assert not [s for s in day if "T02:" in s]


def test_fall_back_day_offers_the_repeated_hour_once(api: Api) -> None:
    provider = create_provider(api, weekly_schedule=hours(("sunday",), ("00:00", "04:00")))
    day = slots(api, provider, date="2026-11-01")
    assert day == [
        "2026-11-01T00:00:00-04:00",
        "2026-11-01T00:30:00-04:00",
        "2026-11-01T01:00:00-04:00",
        "2026-11-01T01:30:00-04:00",
        "2026-11-01T02:00:00-05:00",
        "2026-11-01T02:30:00-05:00",
        "2026-11-01T03:00:00-05:00",
        "2026-11-01T03:30:00-05:00",
    ]
    assert sum("T01:00:00" in s for s in day) == 1
    assert sum("T01:30:00" in s for s in day) == 1


def test_tokyo_client_sees_new_york_monday_as_tuesday_times(api: Api) -> None:
    provider = create_provider(api, weekly_schedule=hours(("monday",)))
    tokyo = {"Timezone": "Asia/Tokyo"}
    tuesday = slots(api, provider, headers=tokyo, date="2026-12-01")
    # Monday 10:00-16:30 in New York (-05:00) is Tuesday 00:00-06:30 in Tokyo.
    assert tuesday == half_hours("2026-12-01", "00:00", 14, "+09:00")
    both_days = slots(api, provider, headers=tokyo, from_="2026-11-30", to="2026-12-01")
    assert both_days[:2] == ["2026-11-30T23:00:00+09:00", "2026-11-30T23:30:00+09:00"]
    assert both_days[2:] == tuesday
    new_york = slots(api, provider, date="2026-11-30")
    assert [datetime.fromisoformat(s) for s in new_york] == [
        datetime.fromisoformat(s) for s in both_days
    ]


def test_answer_names_the_request_zone_or_the_providers(api: Api) -> None:
    provider = create_provider(api)
    response = api.get(f"/v1/providers/{provider}/availability?date=2026-12-01")
    assert response.json()["timezone"] == "America/New_York"
    assert response.json()["slot_minutes"] == 30
    response = api.get(
        f"/v1/providers/{provider}/availability?date=2026-12-01",
        headers={**api.user, "Timezone": "Europe/Berlin"},
    )
    assert response.json()["timezone"] == "Europe/Berlin"
    assert response.json()["slots"][0]["start"] == "2026-12-01T15:00:00+01:00"
    assert response.json()["slots"][0]["end"] == "2026-12-01T15:30:00+01:00"


def test_midnight_end_written_24_00_offers_slots_up_to_midnight(api: Api) -> None:
    provider = create_provider(api, weekly_schedule=hours(("tuesday",), ("22:00", "24:00")))
    assert slots(api, provider, date="2026-12-01") == half_hours("2026-12-01", "22:00", 4, "-05:00")


def test_slot_that_would_cross_its_intervals_end_is_not_offered(api: Api) -> None:
    provider = create_provider(api, weekly_schedule=hours(("tuesday",), ("09:00", "10:45")))
    assert slots(api, provider, date="2026-12-01") == half_hours("2026-12-01", "09:00", 3, "-05:00")


def test_touching_intervals_are_not_merged(api: Api) -> None:
    provider = create_provider(
        api, weekly_schedule=hours(("tuesday",), ("09:00", "09:45"), ("09:45", "10:30"))
    )
    assert slots(api, provider, date="2026-12-01") == [
        "2026-12-01T09:00:00-05:00",
        "2026-12-01T09:45:00-05:00",
    ]


def test_override_replaces_the_weekly_hours_for_its_date_only(api: Api) -> None:
    provider = create_provider(api)
    short = api.put(
        f"/v1/providers/{provider}/overrides/2026-12-04",
        json={"intervals": [{"start": "09:00", "end": "10:00"}]},
    )
    assert short.status_code == 200, short.text
    closed = api.put(f"/v1/providers/{provider}/overrides/2026-12-03", json={"intervals": []})
    assert closed.status_code == 200
    assert slots(api, provider, date="2026-12-04") == half_hours("2026-12-04", "09:00", 2, "-05:00")
    assert slots(api, provider, date="2026-12-03") == []
    assert len(slots(api, provider, date="2026-12-02")) == 16
    # A Saturday override opens a day the weekly hours keep closed.
    api.put(
        f"/v1/providers/{provider}/overrides/2026-12-05",
        json={"intervals": [{"start": "10:00", "end": "11:00"}]},
    )
    assert slots(api, provider, date="2026-12-05") == half_hours("2026-12-05", "10:00", 2, "-05:00")
    assert api.delete(f"/v1/providers/{provider}/overrides/2026-12-03").status_code == 204
    assert len(slots(api, provider, date="2026-12-03")) == 16


def test_min_notice_and_horizon_limit_what_is_offered(api: Api) -> None:
    # The suite's clock reads 2026-10-15T12:00Z, 08:00 in New York, a Thursday.
    provider = create_provider(api, min_notice_minutes=120, max_advance_days=2)
    today = slots(api, provider, date="2026-10-15")
    assert today[0] == "2026-10-15T10:00:00-04:00"  # 08:00 + two hours of notice
    assert len(slots(api, provider, date="2026-10-16")) == 16  # Friday, within two days
    assert slots(api, provider, date="2026-10-19") == []  # Monday is past the horizon


def test_past_dates_have_no_slots(api: Api) -> None:
    provider = create_provider(api)
    assert slots(api, provider, date="2026-10-14") == []


def test_range_of_62_days_is_answered_and_63_is_refused(api: Api) -> None:
    provider = create_provider(api)
    sixty_two = slots(api, provider, from_="2026-11-01", to="2027-01-01")
    assert len(sixty_two) == 16 * 45  # the 45 week days from November 1 to January 1
    response = api.get(f"/v1/providers/{provider}/availability?from=2026-11-01&to=2027-01-02")
    assert response.status_code == 422
    assert "62" in response.json()["detail"]


def test_answers_come_from_the_cache_until_the_providers_version_moves(api: Api) -> None:
    from sqlalchemy import insert

    from infra.database import make_sync_engine
    from infra.tables import ScheduleOverrideRow

    provider = create_provider(api)
    assert len(slots(api, provider, date="2026-12-01")) == 16
    # Close the day behind the API's back: no version moves, so the cached answer stands.
    engine = make_sync_engine(api.database.url)
    try:
        with engine.begin() as connection:
            connection.execute(
                insert(ScheduleOverrideRow).values(
                    provider_id=uuid.UUID(provider),
                    day=date(2026, 12, 1),
                    intervals={"intervals": []},
                    updated_at=datetime.now(UTC),
                )
            )
    finally:
        engine.dispose()
    assert len(slots(api, provider, date="2026-12-01")) == 16
    # Any change through the API moves the version; the next answer is computed afresh.
    assert api.patch(f"/v1/providers/{provider}", json={"name": "renamed"}).status_code == 200
    assert slots(api, provider, date="2026-12-01") == []
