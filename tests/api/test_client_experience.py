"""What a client developer meets (issue 8): exact errors, one problem-type style, replays that
show what GET shows, Idempotency by instant, and refusals that say why.

Each test here failed before the change it names (see docs/usage.md's before/after table).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.api.conftest import Api
from tests.api.helpers import create_provider, hours, new_id
from tests.api.test_bad_input import assert_problem
from tests.api.test_bookings import MONDAY_10, book, booked
from tests.api.test_webhooks import publish

PROBLEM_TYPE = re.compile(r"^urn:booking:problem:[a-z_]+$")


@pytest.fixture(autouse=True)
def outbox_published(api: Api) -> Iterator[None]:
    """Bookings made here leave no unpublished events for the webhook tests to fan out."""
    yield
    publish(api)


@pytest.mark.parametrize("path", ["/v1/providers", "/v1/bookings"])
def test_empty_body_is_400_request_body_is_empty(api: Api, path: str) -> None:
    response = api.client.post(
        path, content=b"", headers={**api.admin, "Content-Type": "application/json"}
    )
    body = assert_problem(response, 400)
    assert body["detail"] == "request body is empty"
    assert body["type"] == "urn:booking:problem:empty_body"


def test_missing_field_is_named_by_its_real_name(api: Api) -> None:
    body = assert_problem(api.post("/v1/providers", json={"weekly_schedule": {}}), 422)
    assert body["errors"] == [{"field": "timezone", "message": "is required"}]
    assert "data" not in body["detail"]


def test_missing_nested_field_is_named_by_its_path(api: Api) -> None:
    week = {"monday": [{"start": "09:00"}]}
    response = api.post("/v1/providers", json={"timezone": "UTC", "weekly_schedule": week})
    body = assert_problem(response, 422)
    assert body["errors"][0]["field"] == "weekly_schedule.monday[0].end"


def test_body_that_is_not_an_object_names_the_body(api: Api) -> None:
    body = assert_problem(api.post("/v1/providers", json=[]), 422)
    assert body["errors"][0]["field"] == "body"


@pytest.mark.parametrize("start", ["2026-11-30", "2026-11-30T10", "0", "2026-11-30 10:00:00"])
def test_start_that_is_not_a_date_time_is_422(api: Api, start: str) -> None:
    provider = create_provider(api)
    body = assert_problem(book(api, provider, start), 422, "start")
    assert body["code"] == "validation_failed"


@pytest.mark.parametrize("start", ["2026-11-30T10:00:00Z", "2026-11-30t10:00:00z"])
def test_start_in_rfc_3339_forms_is_read(api: Api, start: str) -> None:
    provider = create_provider(api, timezone="UTC")
    assert book(api, provider, start).status_code == 202


def test_every_problem_type_is_urn_booking_problem_and_its_code(api: Api) -> None:
    provider = create_provider(api)
    answers = [
        api.client.post(
            "/v1/providers", content=b"{", headers={**api.admin, "Content-Type": "application/json"}
        ),  # 400
        api.client.post("/v1/providers", content=b"{}", headers=api.admin),  # 415, no JSON type
        api.client.get("/v1/providers"),  # 401
        api.post(
            "/v1/providers", json={"timezone": "UTC", "weekly_schedule": {}}, headers=api.user
        ),
        api.get(f"/v1/providers/{new_id()}"),  # 404
        api.client.delete("/v1/providers", headers=api.admin),  # 405
        api.post("/v1/providers", json={"id": provider, "timezone": "UTC", "weekly_schedule": {}}),
        api.post(
            "/v1/providers", json={"timezone": "UTC", "weekly_schedule": {}, "name": "x" * 70_000}
        ),
        api.post("/v1/providers", json={"timezone": "Mars/Olympus", "weekly_schedule": {}}),
        book(api, provider, "2026-11-30T10:10:00-05:00"),  # not on the grid
    ]
    seen = set()
    for response in answers:
        body: dict[str, Any] = response.json()
        assert PROBLEM_TYPE.match(body["type"]), body
        assert body["type"] == f"urn:booking:problem:{body['code']}"
        seen.add((response.status_code, body["code"]))
    assert seen == {
        (400, "malformed_body"),
        (401, "unauthenticated"),
        (403, "forbidden"),
        (404, "not_found"),
        (405, "method_not_allowed"),
        (409, "conflict"),
        (413, "body_too_large"),
        (415, "unsupported_media_type"),
        (422, "validation_failed"),
        (422, "not_on_slot_boundary"),
    }


def test_idempotent_replay_of_a_succeeded_request_shows_what_get_shows(api: Api) -> None:
    provider = create_provider(api)
    key = {"Idempotency-Key": new_id()}
    outcome = booked(api, provider, headers=key)
    assert outcome["status"] == "succeeded"
    replay = book(api, provider, headers=key)
    assert replay.status_code == 202
    assert replay.json() == outcome
    assert replay.json()["booking"] is not None


def test_idempotency_compares_instants_not_how_they_are_written(api: Api) -> None:
    provider = create_provider(api)
    key = {"Idempotency-Key": new_id()}
    first = book(api, provider, "2026-11-30T10:00:00-05:00", headers=key)
    same_instant = book(api, provider, "2026-11-30T15:00:00Z", headers=key)
    assert first.status_code == same_instant.status_code == 202
    assert same_instant.json()["id"] == first.json()["id"]
    other_instant = book(api, provider, "2026-11-30T10:30:00-05:00", headers=key)
    assert_problem(other_instant, 409)


def test_slot_blocked_only_by_a_buffer_says_so(api: Api) -> None:
    provider = create_provider(api, buffer_after_minutes=30)
    assert booked(api, provider, MONDAY_10)["status"] == "succeeded"
    near = booked(api, provider, "2026-11-30T10:30:00-05:00")  # free, inside the 30-min buffer
    assert near["status"] == "rejected"
    assert near["error"]["code"] == "slot_unavailable"
    assert "too close to another booking" in near["error"]["message"]
    taken = booked(api, provider, MONDAY_10)
    assert taken["error"] == {"code": "slot_unavailable", "message": "that slot is already booked"}


def test_second_pass_of_a_fall_back_hour_is_named_the_repeated_hour(api: Api) -> None:
    # New York falls back on Sunday 2026-11-01: 01:00-01:59 happen twice.
    provider = create_provider(api, weekly_schedule=hours(("sunday",), ("00:00", "04:00")))
    first = book(api, provider, "2026-11-01T01:30:00-04:00")
    assert first.status_code == 202, first.text
    second = book(api, provider, "2026-11-01T01:30:00-05:00")
    body = assert_problem(second, 422, "repeated hour", "2026-11-01T01:30:00-04:00")
    assert body["code"] == "not_on_slot_boundary"


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        ("/v1/providers", "GET, OPTIONS, POST"),
        ("/v1/providers/{id}", "GET, OPTIONS, PATCH"),
        ("/v1/providers/{id}/overrides/2026-12-24", "DELETE, OPTIONS, PUT"),
        ("/v1/bookings", "GET, OPTIONS, POST"),
    ],
)
def test_options_answers_every_method_of_the_path(api: Api, path: str, allowed: str) -> None:
    response = api.client.options(path.replace("{id}", new_id()), headers=api.admin)
    assert response.status_code == 204
    assert response.headers["allow"] == allowed
