"""Booking requests through the API on both backends: fail-fast checks, ownership, reads.

The suite's clock reads 2026-10-15T12:00Z (08:00 in New York). Requests are decided by the
worker's own use case, run in the app's loop (`api.decide`), on SQLite as on PostgreSQL.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import pytest

from domain.ids import made_within
from tests.api.conftest import Api
from tests.api.helpers import create_provider, new_id, slots
from tests.api.test_bad_input import assert_problem

MONDAY_10 = "2026-11-30T10:00:00-05:00"


def book(api: Api, provider: str, start: str = MONDAY_10, **extra: Any) -> Any:
    headers = {**api.user, **extra.pop("headers", {})}
    return api.client.post(
        "/v1/bookings", json={"provider_id": provider, "start": start, **extra}, headers=headers
    )


def booked(api: Api, provider: str, start: str = MONDAY_10, **extra: Any) -> dict[str, Any]:
    """Book and decide; the request as the client then sees it."""
    accepted = book(api, provider, start, **extra)
    assert accepted.status_code == 202, accepted.text
    api.decide(provider, accepted.json()["id"])
    status = api.get(f"/v1/booking-requests/{accepted.json()['id']}")
    assert status.status_code == 200
    body: dict[str, Any] = status.json()
    return body


def test_accepted_booking_is_202_pending_with_location(api: Api) -> None:
    provider = create_provider(api)
    response = book(api, provider, customer_id="patient-1", metadata={"room": 4})
    assert response.status_code == 202
    body = response.json()
    assert response.headers["location"] == f"/v1/booking-requests/{body['id']}"
    assert body["status"] == "pending"
    assert body["kind"] == "book"
    assert body["start"] == MONDAY_10
    assert (body["booking_id"], body["booking"], body["error"], body["completed_at"]) == (
        None,
        None,
        None,
        None,
    )


def test_a_request_id_carries_its_creation_time_and_finds_the_request(api: Api) -> None:
    """Version 7: a lookup by id reads the one monthly partition its request lives in."""
    provider = create_provider(api)
    body = book(api, provider).json()
    ident = UUID(body["id"])
    window = made_within(ident)
    assert ident.version == 7 and window is not None
    created = datetime.fromisoformat(body["created_at"])
    assert window[0] <= created < window[1]
    status = api.get(f"/v1/booking-requests/{ident}")
    assert status.status_code == 200
    assert status.json()["id"] == body["id"]


def test_decided_booking_shows_the_booking_and_takes_the_slot(api: Api) -> None:
    provider = create_provider(api)
    outcome = booked(api, provider, customer_id="patient-1", metadata={"room": 4})
    assert outcome["status"] == "succeeded"
    booking = outcome["booking"]
    assert booking["id"] == outcome["booking_id"]
    assert (booking["start"], booking["end"]) == (MONDAY_10, "2026-11-30T10:30:00-05:00")
    assert (booking["status"], booking["customer_id"], booking["metadata"]) == (
        "confirmed",
        "patient-1",
        {"room": 4},
    )
    assert MONDAY_10 not in slots(api, provider, date="2026-11-30")
    again = booked(api, provider)
    assert again["status"] == "rejected"
    assert again["error"]["code"] == "slot_unavailable"


def test_start_without_offset_is_read_in_the_request_zone_or_the_providers(api: Api) -> None:
    provider = create_provider(api)
    in_provider_zone = book(api, provider, "2026-11-30T10:00:00")
    assert in_provider_zone.json()["start"] == MONDAY_10
    from_berlin = book(api, provider, "2026-11-30T16:00:00", headers={"Timezone": "Europe/Berlin"})
    assert from_berlin.status_code == 202
    assert from_berlin.json()["start"] == "2026-11-30T16:00:00+01:00"


@pytest.mark.parametrize(
    ("start", "code"),
    [
        ("2026-10-14T10:00:00-04:00", "in_past"),
        ("2026-10-26T10:10:00-04:00", "not_on_slot_boundary"),
        ("2026-10-26T18:00:00-04:00", "outside_hours"),
        ("2026-10-25T10:00:00-04:00", "outside_hours"),  # a Sunday: closed
        ("2026-10-15T08:30:00-04:00", "too_soon"),  # it is 08:00; an hour of notice is needed
        ("2026-10-30T10:00:00-04:00", "too_far_ahead"),  # 15 days ahead; 14 are open
    ],
)
def test_bookings_that_break_a_rule_fail_fast_with_the_reason(
    api: Api, start: str, code: str
) -> None:
    provider = create_provider(api, min_notice_minutes=60, max_advance_days=14)
    body = assert_problem(book(api, provider, start), 422, "start")
    assert body["code"] == code
    assert api.get(f"/v1/bookings?provider_id={provider}").json()["items"] == []


def test_a_slot_that_would_end_after_hours_is_outside_hours(api: Api) -> None:
    hours = {"monday": [{"start": "09:00", "end": "10:45"}]}
    provider = create_provider(api, weekly_schedule=hours)
    body = assert_problem(book(api, provider, "2026-11-30T10:30:00-05:00"), 422, "end after")
    assert body["code"] == "outside_hours"


def test_a_start_inside_a_daylight_saving_gap_is_refused(api: Api) -> None:
    provider = create_provider(
        api, weekly_schedule={"sunday": [{"start": "00:00", "end": "04:00"}]}
    )
    assert_problem(book(api, provider, "2027-03-14T02:30:00"), 422, "does not exist")


def test_unknown_provider_is_404_and_a_malformed_one_422(api: Api) -> None:
    assert_problem(book(api, new_id()), 404)
    assert_problem(book(api, "not-a-uuid"), 422, "provider_id")


def test_malformed_start_metadata_and_callbacks_are_422(api: Api) -> None:
    provider = create_provider(api)
    assert_problem(book(api, provider, "next monday"), 422, "start")
    assert_problem(book(api, provider, metadata={"x": "y" * 5000}), 422, "metadata")
    for url in (
        "http://127.0.0.1/hook",
        "http://10.1.2.3/hook",
        "http://169.254.169.254/latest",
        "http://[::1]/hook",
        "http://localhost:8080/hook",
        "ftp://93.184.215.14/hook",
        "not a url",
    ):
        assert_problem(book(api, provider, callback_url=url), 422, "callback_url")
    assert book(api, provider, callback_url="https://93.184.215.14/hook").status_code == 202


def test_another_clients_requests_and_bookings_are_404(api: Api) -> None:
    provider = create_provider(api)
    outcome = booked(api, provider)
    booking = outcome["booking_id"]
    other = api.other_user
    assert_problem(api.get(f"/v1/booking-requests/{outcome['id']}", headers=other), 404)
    assert_problem(api.get(f"/v1/bookings/{booking}", headers=other), 404)
    move = {"start": "2026-11-30T11:00:00-05:00"}
    assert_problem(api.post(f"/v1/bookings/{booking}/reschedule", move, headers=other), 404)
    assert_problem(api.post(f"/v1/bookings/{booking}/cancel", {}, headers=other), 404)
    assert booking not in [b["id"] for b in api.get("/v1/bookings", headers=other).json()["items"]]
    # The admin sees everyone's.
    assert api.get(f"/v1/bookings/{booking}", headers=api.admin).status_code == 200


def test_reschedule_and_cancel_change_the_booking(api: Api) -> None:
    provider = create_provider(api)
    booking = booked(api, provider)["booking_id"]
    move = api.post(
        f"/v1/bookings/{booking}/reschedule",
        {"start": "2026-11-30T11:00:00-05:00"},
        headers=api.user,
    )
    assert move.status_code == 202
    assert move.json()["kind"] == "reschedule"
    api.decide(provider, move.json()["id"])
    moved = api.get(f"/v1/bookings/{booking}").json()
    assert moved["start"] == "2026-11-30T11:00:00-05:00"
    assert MONDAY_10 in slots(api, provider, date="2026-11-30")
    cancel = api.post(f"/v1/bookings/{booking}/cancel", {"reason": "sick"}, headers=api.user)
    api.decide(provider, cancel.json()["id"])
    cancelled = api.get(f"/v1/bookings/{booking}").json()
    assert (cancelled["status"], cancelled["cancel_reason"]) == ("cancelled", "sick")
    assert cancelled["cancelled_at"] is not None
    again = api.post(f"/v1/bookings/{booking}/cancel", {}, headers=api.user)
    api.decide(provider, again.json()["id"])
    outcome = api.get(f"/v1/booking-requests/{again.json()['id']}").json()
    assert (outcome["status"], outcome["error"]["code"]) == ("rejected", "booking_cancelled")


def test_booking_list_filters_and_pages(api: Api) -> None:
    provider = create_provider(api)
    for hour in (9, 10, 11):
        assert (
            booked(api, provider, f"2026-12-01T{hour:02d}:00:00-05:00", customer_id="c-7")["status"]
            == "succeeded"
        )
    query = f"/v1/bookings?provider_id={provider}&customer_id=c-7&status=confirmed&limit=2"
    first = api.get(query).json()
    assert [b["start"] for b in first["items"]] == [
        "2026-12-01T09:00:00-05:00",
        "2026-12-01T10:00:00-05:00",
    ]
    second = api.get(f"{query}&cursor={first['next_cursor']}").json()
    assert [b["start"] for b in second["items"]] == ["2026-12-01T11:00:00-05:00"]
    assert second["next_cursor"] is None
    ranged = api.get(
        f"/v1/bookings?provider_id={provider}&from=2026-12-01T10:00:00-05:00&to=2026-12-01T11:00:00-05:00"
    ).json()
    assert [b["start"] for b in ranged["items"]] == ["2026-12-01T10:00:00-05:00"]
    assert_problem(api.get("/v1/bookings?provider_id=nope"), 422)


def test_wait_outside_0_to_30_seconds_is_refused(api: Api) -> None:
    provider = create_provider(api)
    request = book(api, provider).json()["id"]
    response = api.get(f"/v1/booking-requests/{request}?wait=31")
    assert response.status_code in {400, 422}
    assert response.headers["content-type"].startswith("application/problem+json")


def test_seen_success_is_never_offered_again_even_before_the_worker_bumps_the_cache(
    api: Api,
) -> None:
    provider = create_provider(api)
    assert MONDAY_10 in slots(api, provider, date="2026-11-30")  # cached now
    accepted = book(api, provider)
    context = api.client.app.state.runtime
    # A worker that commits and dies before it moves the cache version on.
    real_notifier = context.notifier

    class SilentNotifier:
        async def availability_changed(self, provider_id: Any, version: int) -> None:
            return None

        async def provider_changed(self, provider_id: Any, version: int) -> None:
            return None

        async def requests_completed(self, request_ids: Any) -> None:
            return None

        async def events_recorded(self) -> None:
            return None

    context.notifier = SilentNotifier()
    try:
        api.decide(provider, accepted.json()["id"])
    finally:
        context.notifier = real_notifier
    # The stale answer is still cached under the old version...
    outcome = api.get(f"/v1/booking-requests/{accepted.json()['id']}").json()
    assert outcome["status"] == "succeeded"
    # ...but seeing the success moved the version on, so the slot is gone.
    assert MONDAY_10 not in slots(api, provider, date="2026-11-30")


def test_changed_hours_apply_to_the_very_next_booking(api: Api) -> None:
    provider = create_provider(api)
    evening = "2026-11-30T18:00:00-05:00"
    assert book(api, provider, evening).json()["code"] == "outside_hours"
    longer = {"monday": [{"start": "09:00", "end": "20:00"}]}
    assert (
        api.patch(f"/v1/providers/{provider}", json={"weekly_schedule": longer}).status_code == 200
    )
    assert book(api, provider, evening).status_code == 202
    closed = api.put(f"/v1/providers/{provider}/overrides/2026-11-30", json={"intervals": []})
    assert closed.status_code == 200
    assert book(api, provider, "2026-11-30T10:00:00-05:00").json()["code"] == "outside_hours"
