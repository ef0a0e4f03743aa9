"""The SSRF guard with real processes: private and loopback targets are refused when they are
registered and again when a delivery is sent, however the name resolved before.

The API and the worker resolve names with a DNS server the test runs and programs
(`WEBHOOK_DNS_SERVERS`): a real server answering real queries, so a name can resolve to a
public address at registration and to 127.0.0.1 later, as in a DNS rebinding attack.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from tests.webhook_servers import DnsServer, Receiver
from tests.workers.conftest import Pipeline, running_pipeline
from tests.workers.test_webhooks import book, outcome, provider, register

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]

PUBLIC = "93.184.216.34"


@pytest.fixture(scope="module")
def dns_server() -> Iterator[DnsServer]:
    server = DnsServer()
    server.records = {
        "internal.test": ["10.0.0.5"],
        "metadata.test": ["169.254.169.254"],
        "loopback6.test": ["::1"],
        "mixed.test": [PUBLIC, "127.0.0.1"],
    }
    yield server
    server.close()


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory, dns_server: DnsServer) -> Iterator[Pipeline]:
    with running_pipeline(
        tmp_path_factory,
        WEBHOOK_ALLOW_PRIVATE_TARGETS="false",
        WEBHOOK_DNS_SERVERS=dns_server.address,
        WEBHOOK_DNS_CACHE_SECONDS="0",
        WEBHOOK_RETRY_DELAYS=",".join(["1"] * 20),
    ) as pipe:
        yield pipe


@pytest.fixture
def api(guarded: Pipeline) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=guarded.base_url, timeout=60) as client:
        yield client


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://[::1]/hook",
        "http://10.1.2.3/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://internal.test/hook",
        "http://metadata.test/hook",
        "http://loopback6.test/hook",
        "http://mixed.test/hook",
        "http://nowhere.test/hook",
        "gopher://93.184.216.34/hook",
        "http://user:secret@93.184.216.34/hook",
    ],
)
def test_private_targets_are_refused_at_registration(
    guarded: Pipeline, api: httpx.Client, url: str
) -> None:
    response = api.post(
        "/v1/webhook-endpoints", json={"url": url, "events": ["*"]}, headers=guarded.client
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in response.json()["errors"]] == ["url"]
    listed = api.get("/v1/webhook-endpoints", headers=guarded.client).json()["items"]
    assert url not in [e["url"] for e in listed]


def test_a_private_callback_url_is_refused(guarded: Pipeline, api: httpx.Client) -> None:
    provider_id = provider(api, guarded)
    response = api.post(
        "/v1/bookings",
        json={
            "provider_id": provider_id,
            "start": "2030-01-07T09:00:00Z",
            "callback_url": "http://internal.test/cb",
        },
        headers=guarded.client,
    )
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == ["callback_url"]


def test_a_name_that_turns_to_loopback_after_registration_is_not_called(
    guarded: Pipeline, api: httpx.Client, dns_server: DnsServer
) -> None:
    receiver = Receiver().start()
    try:
        dns_server.records["rebind.test"] = [PUBLIC]
        endpoint = register(api, guarded, receiver.url("/hook", host="rebind.test"))
        dns_server.records["rebind.test"] = ["127.0.0.1"]  # the attacker's DNS changes its mind

        guarded.start_scheduler()
        guarded.start_worker()
        outcome(api, guarded, book(api, guarded, provider(api, guarded), 9))
        path = f"/v1/webhook-endpoints/{endpoint['id']}/deliveries"
        deadline = time.monotonic() + 60
        while True:
            items = api.get(path, headers=guarded.client).json()["items"]
            if items and items[0]["attempts"] >= 2:
                [delivery] = items
                break
            assert time.monotonic() < deadline, items
            time.sleep(0.1)
        assert delivery["status"] == "pending"  # DNS may change back: it is retried
        assert "refused" in delivery["last_error"]
        assert delivery["last_status_code"] is None
        log = api.get(f"/v1/webhook-deliveries/{delivery['id']}", headers=guarded.client).json()
        assert all("refused" in a["error"] for a in log["attempts"])
        assert receiver.calls == []  # never called, though it listens on that address
        assert dns_server.questions.count("rebind.test") >= 3  # asked again at each delivery
    finally:
        guarded.stop_workers()
        guarded.stop_scheduler()
        receiver.stop()
