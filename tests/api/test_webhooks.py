"""Webhook endpoints through the API on both backends: registration, changes, tenancy.

Deliveries are made by publishing the outbox with the webhook worker's own use case, run in
the app's loop; sending them is the worker tests' business (tests/workers/test_webhooks.py).
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import update

from domain.use_cases.webhooks import publish_events
from infra.tables import EventRow
from tests.api.conftest import NOW, Api
from tests.api.helpers import create_provider, new_id
from tests.api.test_bad_input import assert_problem
from tests.api.test_bookings import booked

PUBLIC_URL = "https://93.184.216.34/hooks"  # an address literal: no DNS needed to check it


class _NoStream:
    async def append(self, events: Any) -> None:
        return None


def publish(api: Api) -> None:
    context = api.client.app.state.runtime

    async def run() -> None:
        while await publish_events(context.database, _NoStream(), NOW):
            pass

    api.client.blocking_portal.call(run)


def register(api: Api, headers: dict[str, str] | None = None, **fields: Any) -> dict[str, Any]:
    body = {"url": PUBLIC_URL, "events": ["*"], **fields}
    response = api.post("/v1/webhook-endpoints", json=body, headers=headers or api.user)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def test_registering_shows_the_secret_once(api: Api) -> None:
    created = register(api, events=["booking.confirmed"], description="back office")
    assert created["secret"].startswith("whsec_")
    assert created["status"] == "enabled"
    assert created["events"] == ["booking.confirmed"]
    shown = api.get(f"/v1/webhook-endpoints/{created['id']}")
    assert shown.status_code == 200
    assert "secret" not in shown.json()
    listed = api.get("/v1/webhook-endpoints?limit=500").json()["items"]
    assert created["id"] in [e["id"] for e in listed]
    assert all("secret" not in e for e in listed)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "http://127.0.0.1:9/x", "events": ["*"]}, "url"),
        ({"url": "http://10.1.2.3/x", "events": ["*"]}, "url"),
        ({"url": "http://169.254.169.254/latest", "events": ["*"]}, "url"),
        ({"url": "http://[::1]/x", "events": ["*"]}, "url"),
        ({"url": "ftp://93.184.216.34/x", "events": ["*"]}, "url"),
        ({"url": "https://user:pw@93.184.216.34/x", "events": ["*"]}, "url"),
        ({"url": PUBLIC_URL, "events": []}, "events"),
        ({"url": PUBLIC_URL, "events": ["booking.exploded"]}, "events"),
    ],
)
def test_bad_endpoints_are_refused_with_422(api: Api, body: dict[str, Any], field: str) -> None:
    before = len(api.get("/v1/webhook-endpoints?limit=500", headers=api.admin).json()["items"])
    response = api.post("/v1/webhook-endpoints", json=body, headers=api.user)
    assert_problem(response, 422)
    assert field in [e["field"] for e in response.json()["errors"]]
    after = len(api.get("/v1/webhook-endpoints?limit=500", headers=api.admin).json()["items"])
    assert after == before


def test_patch_changes_fields_and_reenables(api: Api) -> None:
    created = register(api)
    path = f"/v1/webhook-endpoints/{created['id']}"
    changed = api.patch(path, json={"status": "disabled"}, headers=api.user)
    assert changed.status_code == 200, changed.text
    assert changed.json()["status"] == "disabled"
    changed = api.patch(
        path,
        json={"status": "enabled", "events": ["booking.cancelled"], "description": "d"},
        headers=api.user,
    )
    assert changed.json()["status"] == "enabled"
    assert changed.json()["events"] == ["booking.cancelled"]
    assert changed.json()["description"] == "d"
    assert_problem(api.patch(path, json={"status": "asleep"}, headers=api.user), 422)
    assert_problem(api.patch(path, json={"url": "http://127.0.0.1/"}, headers=api.user), 422)


def test_rotating_gives_a_new_secret(api: Api) -> None:
    created = register(api)
    rotated = api.post(f"/v1/webhook-endpoints/{created['id']}/rotate-secret", headers=api.user)
    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["secret"].startswith("whsec_")
    assert rotated.json()["secret"] != created["secret"]
    assert rotated.json()["previous_secret_expires_at"] is not None


def test_deliveries_are_listed_filtered_and_retried(api: Api) -> None:
    publish(api)  # earlier tests' events, on this session's shared database, go out first
    created = register(api, events=["booking.confirmed"])
    provider = create_provider(api)
    booked(api, provider)
    publish(api)
    path = f"/v1/webhook-endpoints/{created['id']}/deliveries"
    items = api.get(path).json()["items"]
    assert len(items) == 1
    delivery = items[0]
    assert delivery["event_type"] == "booking.confirmed"
    assert delivery["event_id"].startswith("evt_")
    assert delivery["status"] == "pending"
    assert delivery["attempts"] == 0
    assert api.get(f"{path}?status=succeeded").json()["items"] == []
    assert_problem(api.get(f"{path}?status=maybe"), 422)
    retried = api.post(f"/v1/webhook-deliveries/{delivery['id']}/retry", headers=api.user)
    assert retried.status_code == 202, retried.text
    assert retried.json()["status"] == "pending"
    log = api.get(f"/v1/webhook-deliveries/{delivery['id']}")
    assert log.status_code == 200
    assert log.json()["attempts"] == []


def test_publishing_twice_makes_no_second_delivery(api: Api) -> None:
    publish(api)  # earlier tests' events, so the new endpoint gets only this test's
    created = register(api, events=["booking.confirmed"])
    booked(api, create_provider(api))
    publish(api)
    path = f"/v1/webhook-endpoints/{created['id']}/deliveries"
    [delivery] = api.get(path).json()["items"]
    context = api.client.app.state.runtime

    async def unpublish() -> None:  # as a crash between the fan-out and its record would
        async with context.database.engine.begin() as connection:
            await connection.execute(
                update(EventRow)
                .where(EventRow.id == delivery["event_id"])
                .values(published_at=None)
            )

    api.client.blocking_portal.call(unpublish)
    publish(api)
    assert [d["id"] for d in api.get(path).json()["items"]] == [delivery["id"]]


def test_replay_queues_events_since_a_time(api: Api) -> None:
    publish(api)
    created = register(api, events=["booking.confirmed"])
    booked(api, create_provider(api))
    publish(api)
    path = f"/v1/webhook-endpoints/{created['id']}"
    replayed = api.post(f"{path}/replay?since=2026-10-15T00:00:00Z", headers=api.user)
    assert replayed.status_code == 202, replayed.text
    assert replayed.json()["queued"] >= 1
    assert_problem(api.post(f"{path}/replay?since=yesterday", headers=api.user), 422)
    assert_problem(api.post(f"{path}/replay?since=2099-01-01T00:00:00Z", headers=api.user), 422)


def test_a_client_never_sees_another_clients_endpoints_or_deliveries(api: Api) -> None:
    publish(api)
    mine = register(api, events=["booking.confirmed"])
    booked(api, create_provider(api))
    publish(api)
    delivery = api.get(f"/v1/webhook-endpoints/{mine['id']}/deliveries").json()["items"][0]
    other = api.other_user
    path = f"/v1/webhook-endpoints/{mine['id']}"
    listed = api.get("/v1/webhook-endpoints?limit=500", headers=other).json()["items"]
    assert mine["id"] not in [e["id"] for e in listed]
    for response in (
        api.get(path, headers=other),
        api.get(f"{path}/deliveries", headers=other),
        api.patch(path, json={"description": "mine now"}, headers=other),
        api.post(f"{path}/rotate-secret", headers=other),
        api.post(f"{path}/replay?since=2026-10-01T00:00:00Z", headers=other),
        api.delete(path, headers=other),
        api.post(f"/v1/webhook-deliveries/{delivery['id']}/retry", headers=other),
        api.get(f"/v1/webhook-deliveries/{delivery['id']}", headers=other),
    ):
        assert_problem(response, 404)
    # Nothing changed, and an admin key sees it all.
    assert api.get(path).json()["description"] is None
    assert api.get(path, headers=api.admin).status_code == 200
    listed = api.get("/v1/webhook-endpoints?limit=500", headers=api.admin).json()["items"]
    assert mine["id"] in [e["id"] for e in listed]


def test_another_clients_bookings_reach_only_admin_endpoints(api: Api) -> None:
    mine = register(api, events=["booking.confirmed"])
    admins = register(api, headers=api.admin, events=["booking.confirmed"])
    provider = create_provider(api)
    accepted = api.client.post(
        "/v1/bookings",
        json={"provider_id": provider, "start": "2026-11-30T11:00:00-05:00"},
        headers=api.other_user,
    )
    assert accepted.status_code == 202, accepted.text
    api.decide(provider, accepted.json()["id"])
    publish(api)

    def events_of(endpoint: dict[str, Any]) -> set[str]:
        path = f"/v1/webhook-endpoints/{endpoint['id']}/deliveries?limit=500"
        return {d["event_id"] for d in api.get(path, headers=api.admin).json()["items"]}

    assert events_of(admins) - events_of(mine)  # the other client's event: the admin's only


def test_deleting_an_endpoint(api: Api) -> None:
    created = register(api)
    path = f"/v1/webhook-endpoints/{created['id']}"
    assert api.delete(path, headers=api.user).status_code == 204
    assert_problem(api.get(path), 404)
    assert_problem(api.delete(f"/v1/webhook-endpoints/{new_id()}", headers=api.user), 404)
    assert_problem(api.delete("/v1/webhook-endpoints/not-an-id", headers=api.user), 404)
