"""Providers, schedules and overrides through the API."""

from __future__ import annotations

from tests.api.conftest import Api
from tests.api.helpers import create_provider, hours, new_id


def test_create_answers_201_with_location_and_defaults(api: Api) -> None:
    response = api.post(
        "/v1/providers",
        json={"name": "Dr. Rivera", "timezone": "America/New_York", "weekly_schedule": hours()},
    )
    assert response.status_code == 201
    body = response.json()
    assert response.headers["location"] == f"/v1/providers/{body['id']}"
    assert body["slot_minutes"] == 30
    assert body["buffer_before_minutes"] == body["buffer_after_minutes"] == 0
    assert body["min_notice_minutes"] == 0
    assert body["max_advance_days"] == 365
    assert body["weekly_schedule"]["monday"] == [{"start": "09:00", "end": "17:00"}]
    assert body["weekly_schedule"]["sunday"] == []
    assert body["created_at"].endswith("Z") or "+" in body["created_at"]
    fetched = api.get(body["location"] if "location" in body else f"/v1/providers/{body['id']}")
    assert fetched.json() == body


def test_empty_week_is_valid_and_closed(api: Api) -> None:
    provider = create_provider(api, weekly_schedule={})
    response = api.get(f"/v1/providers/{provider}/availability?from=2026-12-01&to=2026-12-07")
    assert response.json()["slots"] == []


def test_create_with_client_chosen_id(api: Api) -> None:
    chosen = new_id()
    assert create_provider(api, id=chosen) == chosen


def test_patch_changes_only_the_given_fields(api: Api) -> None:
    provider = create_provider(api, name="Before", slot_minutes=20)
    response = api.patch(
        f"/v1/providers/{provider}", json={"name": "After", "min_notice_minutes": 60}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["name"], body["slot_minutes"], body["min_notice_minutes"]) == ("After", 20, 60)
    assert body["updated_at"] >= body["created_at"]


def test_put_schedule_creates_the_provider_then_updates_it(api: Api) -> None:
    provider = new_id()
    created = api.put(
        f"/v1/providers/{provider}/schedule",
        json={
            "timezone": "Europe/Berlin",
            "weekly_schedule": hours(("monday",)),
            "slot_minutes": 60,
        },
    )
    assert created.status_code == 200, created.text
    assert created.json()["id"] == provider
    assert created.json()["slot_minutes"] == 60
    updated = api.put(
        f"/v1/providers/{provider}/schedule",
        json={"timezone": "Europe/Lisbon", "weekly_schedule": hours(("tuesday",))},
    )
    assert updated.status_code == 200
    body = updated.json()
    assert body["timezone"] == "Europe/Lisbon"
    assert body["slot_minutes"] == 60  # kept when not given
    assert body["weekly_schedule"]["monday"] == []
    assert body["weekly_schedule"]["tuesday"] == [{"start": "09:00", "end": "17:00"}]


def test_list_pages_with_a_cursor_until_the_end(api: Api) -> None:
    mine = {create_provider(api, name=f"paged {i}") for i in range(5)}
    seen: list[str] = []
    cursor: str | None = None
    while True:
        query = "?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = api.get(f"/v1/providers{query}").json()
        assert len(page["items"]) <= 2
        seen.extend(item["id"] for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert mine <= set(seen)
    assert len(seen) == len(set(seen))


def test_overrides_are_listed_by_date_range(api: Api) -> None:
    provider = create_provider(api)
    for day in ("2026-12-24", "2026-12-25", "2026-12-31"):
        api.put(f"/v1/providers/{provider}/overrides/{day}", json={"intervals": []})
    listed = api.get(f"/v1/providers/{provider}/overrides?from=2026-12-25&to=2026-12-31").json()
    assert [item["date"] for item in listed["items"]] == ["2026-12-25", "2026-12-31"]
    everything = api.get(f"/v1/providers/{provider}/overrides").json()
    assert len(everything["items"]) == 3


def test_override_on_unknown_provider_is_404(api: Api) -> None:
    response = api.put(f"/v1/providers/{new_id()}/overrides/2026-12-01", json={"intervals": []})
    assert response.status_code == 404
