"""Malformed input is a 4xx naming the problem, never a 500, and changes nothing.

Each case here answered 500 (or was read loosely) before: the reproductions of issue 9.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.api.conftest import Api
from tests.api.helpers import create_provider, new_id
from tests.api.test_bad_input import assert_problem
from tests.api.test_bookings import MONDAY_10, book, booked


def my_requests(api: Api) -> int:
    """How many bookings this client has: must not move when a request is refused."""
    return len(api.get("/v1/bookings?limit=500").json()["items"])


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"metadata": {"note": "a\x00b"}}, "metadata.note"),
        ({"metadata": {"k\x00": "v"}}, "metadata"),
        ({"metadata": {"deep": [{"x": "\x00"}]}}, "metadata.deep[0].x"),
        ({"customer_id": "patient\x00"}, "customer_id"),
    ],
)
def test_nul_in_a_booking_is_422_naming_the_field(
    api: Api, extra: dict[str, Any], field: str
) -> None:
    provider = create_provider(api)
    before = my_requests(api)
    assert_problem(book(api, provider, **extra), 422, field, "NUL")
    assert my_requests(api) == before


def test_nul_in_a_cancel_reason_provider_name_or_query_is_422(api: Api) -> None:
    provider = create_provider(api)
    booking = booked(api, provider)["booking_id"]
    cancel = api.post(f"/v1/bookings/{booking}/cancel", {"reason": "x\x00"}, headers=api.user)
    assert_problem(cancel, 422, "reason")
    assert api.get(f"/v1/bookings/{booking}").json()["status"] == "confirmed"
    assert_problem(
        api.post("/v1/providers", {"name": "\x00", "timezone": "UTC", "weekly_schedule": {}}),
        422,
        "name",
    )
    assert_problem(api.patch(f"/v1/providers/{provider}", {"name": "Dr.\x00"}), 422, "name")
    assert api.get(f"/v1/providers/{provider}").json()["name"] is None
    assert_problem(api.get("/v1/bookings?customer_id=%00"), 422, "customer_id")
    assert_problem(api.get("/v1/bookings?customer_id=a%00b&status=confirmed"), 422, "customer_id")


@pytest.mark.parametrize("day", ["9999-12-31", "0001-01-01", "0001-01-02", "9999-01-01"])
def test_dates_at_the_calendars_edges_are_422(api: Api, day: str) -> None:
    provider = create_provider(api)
    assert_problem(api.get(f"/v1/providers/{provider}/availability?date={day}"), 422, "date")
    assert_problem(
        api.get(f"/v1/providers/{provider}/availability?from={day}&to={day}"), 422, "from"
    )
    assert_problem(api.get(f"/v1/bookings?from={day}"), 422, "from")
    assert_problem(api.get(f"/v1/bookings?to={day}"), 422, "to")
    assert_problem(api.put(f"/v1/providers/{provider}/overrides/{day}", {"intervals": []}), 422)


@pytest.mark.parametrize(
    "start",
    [
        "9999-12-31T23:30:00-12:00",
        "0001-01-01T00:00:00+14:00",
        "9999-12-31T23:59:59Z",
        "0001-01-01T00:00:00",
    ],
)
def test_booking_starts_at_the_calendars_edges_are_422(api: Api, start: str) -> None:
    provider = create_provider(api)
    before = my_requests(api)
    assert_problem(book(api, provider, start), 422, "start")
    assert_problem(api.get(f"/v1/bookings?from={start.replace('+', '%2B')}"), 422, "from")
    assert my_requests(api) == before


def nested(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


@pytest.mark.parametrize("depth", [33, 800, 1000, 5000])
def test_deeply_nested_json_is_400(api: Api, depth: int) -> None:
    provider = create_provider(api)
    body = f'{{"provider_id": "{provider}", "start": "{MONDAY_10}", "metadata": {nested(depth)}}}'
    response = api.client.post(
        "/v1/bookings",
        content=body.encode(),
        headers={**api.user, "Content-Type": "application/json"},
    )
    assert_problem(response, 400, "nested deeper")


def test_json_nested_a_sane_depth_is_fine(api: Api) -> None:
    provider = create_provider(api)
    metadata = json.loads(nested(20))
    assert book(api, provider, metadata=metadata).status_code == 202


@pytest.mark.parametrize("content_type", ["text/plain", None, "application/x-www-form-urlencoded"])
def test_a_body_that_is_not_json_by_its_content_type_is_415(
    api: Api, content_type: str | None
) -> None:
    provider = create_provider(api)
    body = json.dumps({"provider_id": provider, "start": MONDAY_10}).encode()
    headers = {**api.user}
    if content_type:
        headers["Content-Type"] = content_type
    before = my_requests(api)
    response = api.client.post("/v1/bookings", content=body, headers=headers)
    assert_problem(response, 415, "application/json")
    assert my_requests(api) == before
    for ok in ("application/json", "application/json; charset=utf-8", "application/problem+json"):
        accepted = api.client.post(
            "/v1/bookings",
            content=json.dumps({"provider_id": provider, "start": "2026-11-30T11:00:00-05:00"}),
            headers={**api.user, "Content-Type": ok, "Idempotency-Key": f"ct-{ok}-{content_type}"},
        )
        assert accepted.status_code == 202, (ok, accepted.text)


def test_two_authorization_headers_are_400(api: Api) -> None:
    provider = create_provider(api)
    key = api.user["Authorization"]
    for pair in ([key, "Bearer nonsense"], ["Bearer nonsense", key], [key, key]):
        response = api.client.get(
            f"/v1/providers/{provider}", headers=[("Authorization", v) for v in pair]
        )
        assert_problem(response, 400, "Authorization")


def test_an_empty_idempotency_key_is_400(api: Api) -> None:
    provider = create_provider(api)
    before = my_requests(api)
    for empty in ("", " "):
        response = book(api, provider, headers={"Idempotency-Key": empty})
        assert_problem(response, 400, "Idempotency-Key")
    assert my_requests(api) == before


@pytest.mark.parametrize("zone", ["localtime", "Factory", "posixrules", "posix/UTC", "right/UTC"])
def test_zone_names_outside_the_iana_database_are_refused(api: Api, zone: str) -> None:
    provider = create_provider(api)
    response = api.get(
        f"/v1/providers/{provider}/availability?date=2026-12-01",
        headers={**api.user, "Timezone": zone},
    )
    assert_problem(response, 400, "Timezone")
    created = api.post("/v1/providers", {"timezone": zone, "weekly_schedule": {}})
    assert_problem(created, 422, "timezone")


@pytest.mark.parametrize(
    "start",
    [
        "2026-W49-1T10:00:00-05:00",
        "20261130T100000-0500",
        "2026-11-30T10:00:00-0500",
        "2026-11-30T10:00-05:00",
        "2026-11-30 10:00:00-05:00",
        "2026-11-30",
        "2026-334T10:00:00-05:00",
        "2026-11-30T10:00:00.1234567-05:00",
        "\uff12\uff10\uff12\uff16-11-30T10:00:00-05:00",  # full-width digits
    ],
)
def test_start_must_be_rfc_3339(api: Api, start: str) -> None:
    provider = create_provider(api)
    assert_problem(book(api, provider, start), 422, "start", "RFC 3339")


def test_rfc_3339_spellings_are_accepted(api: Api) -> None:
    provider = create_provider(api)
    for start in ("2026-11-30T15:00:00Z", "2026-11-30t15:30:00z", "2026-11-30T11:00:00.000-05:00"):
        assert book(api, provider, start).status_code == 202, start


@pytest.mark.parametrize(
    "url", [" https://93.184.215.14/hook", "https://93.184.215.14/hook\t", "http://[::127.0.0.1]/"]
)
def test_callback_urls_with_spaces_or_embedded_private_addresses_are_422(
    api: Api, url: str
) -> None:
    provider = create_provider(api)
    before = my_requests(api)
    assert_problem(book(api, provider, callback_url=url), 422, "callback_url")
    assert my_requests(api) == before


def test_unknown_ids_with_nul_are_404_not_500(api: Api) -> None:
    assert_problem(api.get(f"/v1/bookings/{new_id()}%00"), 404)
    assert_problem(api.get("/v1/booking-requests/%00"), 404)
