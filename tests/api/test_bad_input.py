"""Bad input gets a clear 4xx naming the problem, and changes nothing."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.conftest import Api
from tests.api.helpers import create_provider, hours, new_id


def assert_problem(response: Any, status: int, *mentions: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert {"type", "title", "status", "detail"} <= body.keys()
    text = body["detail"] + " ".join(e["field"] + e["message"] for e in body.get("errors", []))
    for mention in mentions:
        assert mention in text, f"{mention!r} not in {text!r}"
    return body


def test_unknown_timezone_header_is_a_400_naming_the_value(api: Api) -> None:
    provider = create_provider(api)
    response = api.get(
        f"/v1/providers/{provider}/availability?date=2026-12-01",
        headers={**api.user, "Timezone": "im so wrong"},
    )
    assert_problem(response, 400, "im so wrong")


@pytest.mark.parametrize("zone", ["", "../../etc/passwd", "America/Nowhere", "x" * 300, "UTC\x00"])
def test_other_malformed_timezone_headers_are_400(api: Api, zone: str) -> None:
    provider = create_provider(api)
    response = api.get(
        f"/v1/providers/{provider}/availability?date=2026-12-01",
        headers={**api.user, "Timezone": zone},
    )
    assert_problem(response, 400, "Timezone")


@pytest.mark.parametrize("minutes", [0, -30, 1441, 100000])
def test_slot_minutes_out_of_range_is_422_and_creates_nothing(api: Api, minutes: int) -> None:
    provider_id = new_id()
    response = api.post(
        "/v1/providers",
        json={"id": provider_id, "timezone": "UTC", "weekly_schedule": {}, "slot_minutes": minutes},
    )
    assert_problem(response, 422, "slot_minutes")
    assert api.get(f"/v1/providers/{provider_id}").status_code == 404


def test_zero_slot_minutes_through_patch_is_refused_and_availability_still_answers(
    api: Api,
) -> None:
    provider = create_provider(api)
    assert_problem(api.patch(f"/v1/providers/{provider}", json={"slot_minutes": 0}), 422)
    assert api.get(f"/v1/providers/{provider}").json()["slot_minutes"] == 30
    assert api.get(f"/v1/providers/{provider}/availability?date=2026-12-01").status_code == 200


@pytest.mark.parametrize(
    ("intervals", "mention"),
    [
        ([("09:00", "12:00"), ("11:00", "13:00")], "overlaps"),
        ([("12:00", "09:00")], "ends before it starts"),
        ([("09:00", "09:00")], "ends before it starts"),
        ([("9:00", "12:00")], "HH:MM"),
        ([("09:00", "25:00")], "not a time of day"),
        ([("24:00", "24:00")], "24:00 may only end"),
        ([("09:60", "10:00")], "not a time of day"),
    ],
)
def test_bad_intervals_are_422_naming_the_interval(
    api: Api, intervals: list[tuple[str, str]], mention: str
) -> None:
    response = api.post(
        "/v1/providers",
        json={"timezone": "UTC", "weekly_schedule": hours(("monday",), *intervals)},
    )
    body = assert_problem(response, 422, mention)
    assert body["errors"][0]["field"].startswith("weekly_schedule.monday")


def test_overlapping_override_is_422_and_keeps_the_old_override(api: Api) -> None:
    provider = create_provider(api)
    path = f"/v1/providers/{provider}/overrides/2026-12-01"
    api.put(path, json={"intervals": [{"start": "10:00", "end": "11:00"}]})
    response = api.put(
        path,
        json={
            "intervals": [{"start": "09:00", "end": "12:00"}, {"start": "11:30", "end": "13:00"}]
        },
    )
    assert_problem(response, 422, "overlaps")
    listed = api.get(f"/v1/providers/{provider}/overrides?from=2026-12-01&to=2026-12-01").json()
    assert listed["items"] == [
        {"date": "2026-12-01", "intervals": [{"start": "10:00", "end": "11:00"}]}
    ]


def test_unknown_week_day_is_422(api: Api) -> None:
    response = api.post("/v1/providers", json={"timezone": "UTC", "weekly_schedule": {"mon": []}})
    assert_problem(response, 422, "mon")


def test_unknown_provider_timezone_is_422(api: Api) -> None:
    response = api.post("/v1/providers", json={"timezone": "Mars/Olympus", "weekly_schedule": {}})
    assert_problem(response, 422, "Mars/Olympus")


@pytest.mark.parametrize(
    "ident", ["not-a-uuid", "1", "%00", "00000000-0000-0000-0000-00000000000g"]
)
def test_provider_id_that_is_not_a_uuid_is_404(api: Api, ident: str) -> None:
    assert_problem(api.get(f"/v1/providers/{ident}"), 404)
    assert_problem(api.get(f"/v1/providers/{ident}/availability?date=2026-12-01"), 404)
    assert_problem(api.patch(f"/v1/providers/{ident}", json={"name": "x"}), 404)


def test_unknown_provider_is_404(api: Api) -> None:
    assert_problem(api.get(f"/v1/providers/{new_id()}/availability?date=2026-12-01"), 404)


def test_from_after_to_is_422(api: Api) -> None:
    provider = create_provider(api)
    response = api.get(f"/v1/providers/{provider}/availability?from=2026-12-10&to=2026-12-01")
    assert_problem(response, 422, "from")


@pytest.mark.parametrize(
    "query",
    ["date=2026-13-01", "date=tomorrow", "from=2026-12-01", "date=2026-12-01&from=2026-12-01"],
)
def test_malformed_or_incomplete_dates_are_422(api: Api, query: str) -> None:
    provider = create_provider(api)
    assert_problem(api.get(f"/v1/providers/{provider}/availability?{query}"), 422)


def test_body_over_64_kib_is_413_and_creates_nothing(api: Api) -> None:
    provider_id = new_id()
    body = {"id": provider_id, "timezone": "UTC", "weekly_schedule": {}, "name": "x" * 70_000}
    assert_problem(api.post("/v1/providers", json=body), 413)
    assert api.get(f"/v1/providers/{provider_id}").status_code == 404


def test_body_that_is_not_json_is_400(api: Api) -> None:
    response = api.client.post(
        "/v1/providers",
        content=b'{"timezone": "UTC",',
        headers={**api.admin, "Content-Type": "application/json"},
    )
    assert_problem(response, 400, "JSON")


def test_wrong_types_are_422_naming_the_field(api: Api) -> None:
    response = api.post(
        "/v1/providers", json={"timezone": "UTC", "weekly_schedule": {}, "slot_minutes": "thirty"}
    )
    assert_problem(response, 422, "slot_minutes")


def test_bad_cursor_and_limit_are_client_errors(api: Api) -> None:
    assert_problem(api.get("/v1/providers?cursor=garbage"), 400, "cursor")
    response = api.get("/v1/providers?limit=501")
    assert response.status_code in {400, 422}
    assert response.headers["content-type"].startswith("application/problem+json")


def test_duplicate_provider_id_is_409(api: Api) -> None:
    provider = create_provider(api)
    response = api.post(
        "/v1/providers", json={"id": provider, "timezone": "UTC", "weekly_schedule": {}}
    )
    assert_problem(response, 409, provider)


def test_unknown_path_and_method_are_problem_details(api: Api) -> None:
    assert_problem(api.get("/v1/nothing-here"), 404)
    assert_problem(api.client.delete("/v1/providers", headers=api.admin), 405)
