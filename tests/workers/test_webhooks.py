"""Webhooks end to end: `booking api`, `booking worker` and `booking scheduler` processes on
PostgreSQL and Redis, delivering to a real HTTP receiver in the test process.

The receiver listens on 127.0.0.1, so these pipelines allow private targets; the SSRF guard
has a module of its own (test_webhook_targets.py) where they are refused.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tests.webhook_servers import Answer, Call, Receiver
from tests.workers.conftest import PARTITIONS, Pipeline, running_pipeline, slot

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]

RETRY_DELAYS = ",".join(["1"] * 20)  # quick retries, so outages of seconds are ridden out


@pytest.fixture(scope="module")
def hooks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    with running_pipeline(
        tmp_path_factory,
        WEBHOOK_ALLOW_PRIVATE_TARGETS="true",
        WEBHOOK_RETRY_DELAYS=RETRY_DELAYS,
        WEBHOOK_TIMEOUT_SECONDS="10",
    ) as pipe:
        yield pipe


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    server = Receiver().start()
    yield server
    server.stop()


@pytest.fixture
def api(hooks: Pipeline) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=hooks.base_url, timeout=60) as client:
        yield client
        # Endpoints of one test must not receive the next test's events.
        listed = client.get("/v1/webhook-endpoints?limit=500", headers=hooks.admin).json()
        for endpoint in listed["items"]:
            client.delete(f"/v1/webhook-endpoints/{endpoint['id']}", headers=hooks.admin)


@pytest.fixture
def delivering(hooks: Pipeline) -> Iterator[Pipeline]:
    """One worker (bookings and webhooks) and the scheduler."""
    hooks.start_scheduler()
    hooks.start_worker()
    yield hooks
    hooks.stop_workers()
    hooks.stop_scheduler()


# -- helpers ---------------------------------------------------------------------------


def register(
    api: httpx.Client, pipe: Pipeline, url: str, events: list[str] | None = None
) -> dict[str, Any]:
    response = api.post(
        "/v1/webhook-endpoints", json={"url": url, "events": events or ["*"]}, headers=pipe.client
    )
    assert response.status_code == 201, response.text
    endpoint: dict[str, Any] = response.json()
    return endpoint


def provider(api: httpx.Client, pipe: Pipeline) -> str:
    open_all_day = {
        day: [{"start": "00:00", "end": "24:00"}]
        for day in ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
    }
    response = api.post(
        "/v1/providers",
        json={"timezone": "UTC", "weekly_schedule": open_all_day},
        headers=pipe.admin,
    )
    assert response.status_code == 201, response.text
    provider_id: str = response.json()["id"]
    return provider_id


def book(api: httpx.Client, pipe: Pipeline, provider_id: str, hour: int, **extra: Any) -> str:
    response = api.post(
        "/v1/bookings",
        json={"provider_id": provider_id, "start": slot(3, hour), **extra},
        headers=pipe.client,
    )
    assert response.status_code == 202, response.text
    request_id: str = response.json()["id"]
    return request_id


def outcome(api: httpx.Client, pipe: Pipeline, request_id: str) -> dict[str, Any]:
    response = api.get(f"/v1/booking-requests/{request_id}?wait=20", headers=pipe.client)
    body: dict[str, Any] = response.json()
    assert body["status"] != "pending", body
    return body


def deliveries(api: httpx.Client, pipe: Pipeline, endpoint_id: str) -> list[dict[str, Any]]:
    response = api.get(
        f"/v1/webhook-endpoints/{endpoint_id}/deliveries?limit=500", headers=pipe.client
    )
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def wait_deliveries(
    api: httpx.Client,
    pipe: Pipeline,
    endpoint_id: str,
    count: int,
    status: str = "succeeded",
    timeout: float = 60,
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        found = [d for d in deliveries(api, pipe, endpoint_id) if d["status"] == status]
        if len(found) >= count:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(
                f"{len(found)} of {count} deliveries {status} after {timeout}s: "
                f"{deliveries(api, pipe, endpoint_id)}"
            )
        time.sleep(0.1)


def verify(secret: str, call: Call) -> dict[str, Any]:
    payload: dict[str, Any] = Webhook(secret).verify(call.body, call.headers)
    return payload


def unique_path(name: str) -> str:
    return f"/{name}/{uuid.uuid4().hex[:8]}"


# -- the tests -------------------------------------------------------------------------


def test_every_delivery_verifies_against_the_right_secret(
    delivering: Pipeline, api: httpx.Client, receiver: Receiver
) -> None:
    pipe = delivering
    path, callback = unique_path("signed"), unique_path("callback")
    endpoint = register(api, pipe, receiver.url(path))
    provider_id = provider(api, pipe)
    request_id = book(api, pipe, provider_id, 9, callback_url=receiver.url(callback))
    booked = outcome(api, pipe, request_id)
    assert booked["status"] == "succeeded"
    cancel = api.post(f"/v1/bookings/{booked['booking_id']}/cancel", json={}, headers=pipe.client)
    assert cancel.status_code == 202
    outcome(api, pipe, cancel.json()["id"])

    at_endpoint = receiver.wait_for(path, 2)
    at_callback = receiver.wait_for(callback, 1)
    assert pipe.signing_secret is not None
    for call in at_endpoint:
        verify(endpoint["secret"], call)
        with pytest.raises(WebhookVerificationError):
            verify(pipe.signing_secret, call)  # not signed with the client's secret
    event = verify(pipe.signing_secret, at_callback[0])
    with pytest.raises(WebhookVerificationError):
        verify(endpoint["secret"], at_callback[0])
    tampered = Call(
        callback,
        at_callback[0].headers,
        at_callback[0].body.replace(b"succeeded", b"rejected"),
        0,
        200,
    )
    with pytest.raises(WebhookVerificationError):
        verify(pipe.signing_secret, tampered)

    # The event carries the request and the booking as the API shows them.
    assert event["type"] == "booking.confirmed"
    assert event["id"] == at_callback[0].webhook_id
    assert event["id"].startswith("evt_")
    assert datetime.fromisoformat(event["created_at"]).tzinfo is not None
    assert event["data"]["request"]["id"] == request_id
    assert event["data"]["request"]["status"] == "succeeded"
    shown = api.get(f"/v1/bookings/{booked['booking_id']}", headers=pipe.client).json()
    assert event["data"]["booking"]["id"] == shown["id"]
    assert event["data"]["booking"]["customer_id"] == shown["customer_id"]
    # A booking's events carry an increasing sequence: confirmed before cancelled.
    by_type = {json.loads(c.body)["type"]: json.loads(c.body) for c in at_endpoint}
    assert by_type.keys() == {"booking.confirmed", "booking.cancelled"}
    assert by_type["booking.cancelled"]["sequence"] > by_type["booking.confirmed"]["sequence"]
    wait_deliveries(api, pipe, endpoint["id"], 2)  # and the log says so


def test_outage_then_errors_then_recovery_delivers_everything_once_logged(
    delivering: Pipeline, api: httpx.Client
) -> None:
    pipe = delivering
    flaky = Receiver()  # not listening yet: connections are refused
    path = "/flaky"
    endpoint = register(api, pipe, flaky.url(path))
    provider_id = provider(api, pipe)
    requests = [book(api, pipe, provider_id, hour) for hour in (9, 10, 11)]
    for request_id in requests:
        outcome(api, pipe, request_id)
    time.sleep(2.5)  # a few refused attempts
    flaky.answer(path, Answer(500))
    flaky.start()
    try:
        deadline = time.monotonic() + 60
        while len({c.webhook_id for c in flaky.calls_to(path)}) < 3:  # each event saw a 500
            assert time.monotonic() < deadline
            time.sleep(0.1)
        flaky.answer(path, Answer(200))
        done = wait_deliveries(api, pipe, endpoint["id"], 3)
        calls = flaky.wait_for(path, 3)
    finally:
        flaky.stop()

    assert len(done) == 3
    event_ids = {d["event_id"] for d in done}
    assert {c.webhook_id for c in calls} == event_ids  # each event delivered, 200 once each
    assert len(calls) == 3
    every_call = flaky.calls_to(path)
    for delivery in done:
        # The same webhook-id on every attempt of one event; attempts all logged.
        attempts_seen = [c for c in every_call if c.webhook_id == delivery["event_id"]]
        assert [c.status for c in attempts_seen][-1] == 200
        log = api.get(f"/v1/webhook-deliveries/{delivery['id']}", headers=pipe.client).json()
        statuses = [a["status_code"] for a in log["attempts"]]
        assert len(statuses) == delivery["attempts"] >= 3
        assert statuses[0] is None  # refused: no answer at all
        assert log["attempts"][0]["error"]
        assert 500 in statuses
        assert statuses[-1] == 200
        assert statuses.count(500) == sum(1 for c in attempts_seen if c.status == 500)


def test_gone_disables_the_endpoint_and_retry_after_is_honoured(
    delivering: Pipeline, api: httpx.Client, receiver: Receiver
) -> None:
    pipe = delivering
    gone, busy = unique_path("gone"), unique_path("busy")
    receiver.answer(gone, Answer(410))
    receiver.answer(
        busy, lambda before: Answer(429, {"Retry-After": "3"}) if before == 0 else Answer(200)
    )
    gone_endpoint = register(api, pipe, receiver.url(gone))
    register(api, pipe, receiver.url(busy), ["booking.confirmed"])
    provider_id = provider(api, pipe)
    outcome(api, pipe, book(api, pipe, provider_id, 9))

    receiver.wait_for(gone, 1, status=410)
    [first, second] = receiver.wait_for(busy, 2, status=None)[:2]
    assert (first.status, second.status) == (429, 200)
    assert second.at - first.at >= 2.9  # Retry-After: 3, although the schedule says 1 s
    assert first.webhook_id == second.webhook_id

    deadline = time.monotonic() + 30
    while (
        api.get(f"/v1/webhook-endpoints/{gone_endpoint['id']}", headers=pipe.client).json()[
            "status"
        ]
        != "disabled"
    ):
        assert time.monotonic() < deadline, "410 did not disable the endpoint"
        time.sleep(0.1)
    [failed] = deliveries(api, pipe, gone_endpoint["id"])
    assert (failed["status"], failed["attempts"], failed["last_status_code"]) == ("failed", 1, 410)
    # Later events are not sent to it.
    outcome(api, pipe, book(api, pipe, provider_id, 10))
    receiver.wait_for(busy, 3, status=None)  # the second event reached the other endpoint
    time.sleep(1)
    assert len(receiver.calls_to(gone)) == 1
    assert len(deliveries(api, pipe, gone_endpoint["id"])) == 1


def test_rotated_secret_overlaps_and_replay_delivers_what_a_disabled_endpoint_missed(
    delivering: Pipeline, api: httpx.Client, receiver: Receiver
) -> None:
    pipe = delivering
    since = datetime.now(UTC).isoformat()
    path = unique_path("rotating")
    endpoint = register(api, pipe, receiver.url(path))
    rotated = api.post(f"/v1/webhook-endpoints/{endpoint['id']}/rotate-secret", headers=pipe.client)
    assert rotated.status_code == 200
    new_secret = rotated.json()["secret"]
    assert new_secret != endpoint["secret"]
    provider_id = provider(api, pipe)
    outcome(api, pipe, book(api, pipe, provider_id, 9))
    [call] = receiver.wait_for(path, 1)
    assert len(call.headers["webhook-signature"].split(" ")) == 2
    verify(endpoint["secret"], call)  # a receiver still holding the old secret
    verify(new_secret, call)  # and one that has the new one

    # The receiver goes away (410), the endpoint is disabled, events are missed.
    receiver.answer(path, Answer(410))
    outcome(api, pipe, book(api, pipe, provider_id, 10))
    receiver.wait_for(path, 1, status=410)
    deadline = time.monotonic() + 30
    while (
        api.get(f"/v1/webhook-endpoints/{endpoint['id']}", headers=pipe.client).json()["status"]
        != "disabled"
    ):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    missed = [book(api, pipe, provider_id, hour) for hour in (11, 12)]
    for request_id in missed:
        outcome(api, pipe, request_id)
    time.sleep(1)
    assert len(receiver.calls_to(path)) == 2  # nothing sent while disabled

    # Back, re-enabled, replayed: everything since `since` arrives, signed with the new secret.
    receiver.answer(path, Answer(200))
    enabled = api.patch(
        f"/v1/webhook-endpoints/{endpoint['id']}", json={"status": "enabled"}, headers=pipe.client
    )
    assert enabled.json()["status"] == "enabled"
    replayed = api.post(
        f"/v1/webhook-endpoints/{endpoint['id']}/replay",
        params={"since": since},
        headers=pipe.client,
    )
    assert replayed.status_code == 202, replayed.text
    assert replayed.json()["queued"] == 4
    calls = receiver.wait_for(path, 1 + 4)  # the first one, and four replayed
    received = {c.webhook_id for c in calls}
    assert len(received) == 4
    for call in calls:
        verify(new_secret, call)
    wait_deliveries(api, pipe, endpoint["id"], 4)


def test_a_hanging_receiver_slows_neither_decisions_nor_other_endpoints(
    delivering: Pipeline, api: httpx.Client, receiver: Receiver
) -> None:
    pipe = delivering
    slow, fast = unique_path("slow"), unique_path("fast")
    receiver.answer(slow, Answer(200, sleep=14))  # past the 10 s timeout
    register(api, pipe, receiver.url(slow))
    register(api, pipe, receiver.url(fast))
    provider_id = provider(api, pipe)
    # Warm up: the first event starts the slow receiver hanging.
    outcome(api, pipe, book(api, pipe, provider_id, 8))
    receiver.wait_for(fast, 1)

    decided, delivered = [], []
    for hour in range(9, 15):
        started = time.monotonic()
        outcome(api, pipe, book(api, pipe, provider_id, hour))
        decided.append(time.monotonic() - started)
        calls = receiver.wait_for(fast, 1 + hour - 8)
        delivered.append(calls[-1].at - started)
    print(f"while one receiver hangs: decisions {decided}, other endpoint reached {delivered}")
    # Both are far below the hanging receiver's timeout: nothing waited on it.
    assert max(decided) < 5
    assert max(delivered) < 5


def test_worker_killed_between_commit_and_publish_still_delivers_once_per_endpoint(
    hooks: Pipeline, api: httpx.Client, receiver: Receiver
) -> None:
    pipe = hooks
    first, second = unique_path("first"), unique_path("second")
    register(api, pipe, receiver.url(first))
    register(api, pipe, receiver.url(second))
    provider_id = provider(api, pipe)
    booking_queues = ",".join(f"bookings.{p}" for p in range(PARTITIONS))
    worker = pipe.start_worker(f"--queues={booking_queues}")  # decides, never publishes
    try:
        requests = [book(api, pipe, provider_id, hour) for hour in range(9, 15)]
        for request_id in requests:
            outcome(api, pipe, request_id)
        worker.kill()  # SIGKILL after its commits
        unpublished = pipe.sql("SELECT count(*) FROM events WHERE published_at IS NULL")[0][0]
        assert unpublished >= 6
        pipe.redis().delete("webhooks")  # and the wake-ups it sent are lost too
        # Two webhook-only workers and the scheduler pick the events up.
        pipe.start_scheduler()
        pipe.start_worker("--queues=webhooks")
        pipe.start_worker("--queues=webhooks")
        calls_first = receiver.wait_for(first, 6)
        calls_second = receiver.wait_for(second, 6)
        time.sleep(2)  # anything sent twice would have arrived by now
    finally:
        pipe.stop_workers()
        pipe.stop_scheduler()
    for calls in (receiver.calls_to(first), receiver.calls_to(second)):
        ids = [c.webhook_id for c in calls]
        assert len(ids) == len(set(ids)) == 6
    assert {c.webhook_id for c in calls_first} == {c.webhook_id for c in calls_second}
