"""Operations with real processes: metrics that move under load (the API's processes in one view,
a worker on its own port), request ids from the API into the worker's log lines, and rate limits
shared by API processes through Redis."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack

import httpx
import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import make_url

from domain.model import Role
from tests.conftest import issue_key
from tests.servers import free_port, running_api
from tests.workers.conftest import PARTITIONS, Pipeline, slot

pytestmark = pytest.mark.anyio

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(url: str) -> Samples:
    text = httpx.get(url, timeout=10).text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum over every series of `name` whose labels include `labels`."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


def wait_for(condition: object, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"still not true after {timeout}s")
        time.sleep(0.2)


@pytest.fixture
def api_pair(pipeline: Pipeline) -> Iterator[list[str]]:
    """Two more `booking api --workers 2` servers on the pipeline's database and Redis."""
    with ExitStack() as stack:
        yield [
            stack.enter_context(running_api(pipeline.env, pipeline.log_dir, workers=2))
            for _ in range(2)
        ]


def _ddl(pipeline: Pipeline, *statements: str) -> None:
    url = make_url(pipeline.database_url).set(drivername="postgresql")
    with psycopg.connect(url.render_as_string(hide_password=False), autocommit=True) as db:
        for statement in statements:
            db.execute(statement)  # type: ignore[arg-type]


def _refuse_bookings_of(pipeline: Pipeline, provider: str) -> None:
    """A trigger that makes deciding this provider's bookings raise, as a bug would."""
    _ddl(
        pipeline,
        """
        CREATE OR REPLACE FUNCTION refuse_booking() RETURNS trigger AS $$
        BEGIN
          IF NEW.provider_id = TG_ARGV[0]::uuid THEN RAISE EXCEPTION 'refused by test'; END IF;
          RETURN NEW;
        END $$ LANGUAGE plpgsql
        """,
        "DROP TRIGGER IF EXISTS refuse_booking ON bookings",
        "CREATE TRIGGER refuse_booking BEFORE INSERT ON bookings"
        f" FOR EACH ROW EXECUTE FUNCTION refuse_booking('{provider}')",
    )


async def test_every_metric_is_present_and_moves_under_load(
    pipeline: Pipeline, api_pair: list[str]
) -> None:
    api = api_pair[0]
    worker_port = free_port()
    pipeline.env["METRICS_PORT"] = str(worker_port)
    pipeline.start_scheduler()
    worker = pipeline.start_worker()
    worker_url = f"http://127.0.0.1:{worker_port}/metrics"
    api_before, worker_before = scrape(f"{api}/metrics"), scrape(worker_url)

    async with httpx.AsyncClient(base_url=api, timeout=60) as http:
        crowded = await pipeline.create_provider(http)
        poisoned = await pipeline.create_provider(http)
        forgotten = await pipeline.create_provider(http)
        _refuse_bookings_of(pipeline, poisoned)
        start = slot(days=5, hour=9)
        books = await asyncio.gather(*(pipeline.book(http, crowded, start) for _ in range(6)))
        books.append(await pipeline.book(http, poisoned, start))
        # A paused worker: the queue fills, and a wake-up that Redis loses is left to the sweep.
        os.kill(worker.pid, signal.SIGSTOP)
        try:
            books.append(await pipeline.book(http, forgotten, start))
            queued = scrape(f"{api}/metrics")
            pipeline.drop_queued(forgotten)
            await asyncio.sleep(3)  # older than PENDING_AFTER_SECONDS
        finally:
            os.kill(worker.pid, signal.SIGCONT)
        ids = [b.json()["id"] for b in books]
        assert Counter(b.status_code for b in books) == {202: 8}
        await asyncio.to_thread(pipeline.wait_all_terminal, ids, 90)
        await http.get(f"/v1/booking-requests/{ids[0]}", headers=pipeline.client)
    _ddl(pipeline, "DROP TRIGGER refuse_booking ON bookings")
    wait_for(lambda: value(scrape(worker_url), "booking_sweep_reenqueued_total") > 0)
    api_after, worker_after = scrape(f"{api}/metrics"), scrape(worker_url)

    def moved(before: Samples, after: Samples, name: str, **labels: str) -> float:
        return total(after, name, **labels) - total(before, name, **labels)

    # The API: two processes, one view (every request counted whichever process served it).
    accepted = moved(api_before, api_after, "booking_requests_total", outcome="accepted")
    assert accepted == 8
    posted = {"method": "POST", "route": "/v1/bookings", "status": "202"}
    assert moved(api_before, api_after, "http_requests_total", **posted) == 8
    assert moved(api_before, api_after, "http_requests_total", status="201") == 3
    assert (
        moved(api_before, api_after, "http_request_duration_seconds_count", route="/v1/bookings")
        == 8
    )
    assert any(
        "{" in dict(labels).get("route", "")
        for (name, labels) in api_after
        if name == "http_requests_total"
    ), "routes are labelled with their template, not the raw path"
    depths = {
        dict(ls)["partition"]: v for (n, ls), v in queued.items() if n == "booking_queue_depth"
    }
    assert set(depths) == {str(p) for p in range(PARTITIONS)}
    assert sum(depths.values()) >= 1  # the paused worker's wake-up
    assert total(api_after, "booking_queue_depth") == 0  # drained

    # The worker, on its own port.
    assert moved(worker_before, worker_after, "booking_requests_total", outcome="succeeded") >= 2
    assert moved(worker_before, worker_after, "booking_requests_total", outcome="rejected") == 5
    assert moved(worker_before, worker_after, "booking_requests_total", outcome="failed") == 1
    assert moved(worker_before, worker_after, "booking_request_latency_seconds_count") == 8
    assert moved(worker_before, worker_after, "booking_processing_attempts_total") >= 4
    assert moved(worker_before, worker_after, "booking_processing_failures_total") >= 3
    assert moved(worker_before, worker_after, "booking_sweep_reenqueued_total") >= 1
    pipeline.stop_workers()
    pipeline.stop_scheduler()
    del pipeline.env["METRICS_PORT"]


async def test_the_request_id_is_echoed_and_reaches_the_workers_log_line(
    pipeline: Pipeline,
) -> None:
    pipeline.env["LOG_LEVEL"] = "DEBUG"
    try:
        worker = pipeline.start_worker()
    finally:
        pipeline.env["LOG_LEVEL"] = "INFO"
    async with pipeline.http() as http:
        provider = await pipeline.create_provider(http)
        mine = f"trace-{uuid.uuid4().hex}"
        sent = await pipeline.book(
            http, provider, slot(days=6, hour=9), headers={"X-Request-ID": mine}
        )
        made_up = await pipeline.book(http, provider, slot(days=6, hour=10))
        assert sent.headers["x-request-id"] == mine
        assert made_up.headers["x-request-id"] and made_up.headers["x-request-id"] != mine
        await pipeline.outcomes(http, [sent.json()["id"], made_up.json()["id"]])

    def decided_line() -> dict[str, object] | None:
        for line in worker.log.read_text(errors="replace").splitlines():
            if line.startswith("{") and mine in line:
                record: dict[str, object] = json.loads(line)
                return record
        return None

    wait_for(lambda: decided_line() is not None, timeout=30)
    record = decided_line()
    assert record is not None
    assert record["request_id"] == mine
    assert record["booking_request_id"] == sent.json()["id"]
    assert record["event"] == "booking request succeeded"
    api_lines = [
        json.loads(line)
        for line in (pipeline.log_dir / "api.log").read_text(errors="replace").splitlines()
        if line.startswith("{")
    ]
    assert api_lines, "the API logs JSON lines"
    pipeline.stop_workers()


async def test_a_burst_past_the_limit_gets_429_and_two_servers_share_one_budget(
    pipeline: Pipeline,
) -> None:
    limit = 12
    env = {**pipeline.env, "RATE_LIMIT_PER_MINUTE": str(limit)}
    keys = [
        (await asyncio.to_thread(issue_key, pipeline.database_url, Role.CLIENT)).key
        for _ in range(2)
    ]
    burst, other = ({"Authorization": f"Bearer {key}"} for key in keys)
    with (
        running_api(env, pipeline.log_dir, workers=2) as one,
        running_api(env, pipeline.log_dir, workers=1) as two,
    ):
        async with httpx.AsyncClient(timeout=60) as http:
            answers = await asyncio.gather(
                *(
                    http.get(f"{base}/v1/providers", headers=burst)
                    for base in (one, two)
                    for _ in range(limit)
                )
            )
            others = [await http.get(f"{one}/v1/providers", headers=other) for _ in range(5)]
            # Which server refused depends on timing: count the refusals on both.
            limited_scrapes = [scrape(f"{base}/metrics") for base in (one, two)]
    statuses = Counter(a.status_code for a in answers)
    assert statuses == {200: limit, 429: limit}, statuses
    for answer in answers:
        assert answer.headers["ratelimit-limit"] == str(limit)
        assert int(answer.headers["ratelimit-reset"]) in range(1, 61)
    for refused in (a for a in answers if a.status_code == 429):
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        assert refused.headers["ratelimit-remaining"] == "0"
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["status"] == 429
    remaining = sorted(
        int(a.headers["ratelimit-remaining"]) for a in answers if a.status_code == 200
    )
    assert remaining == list(range(limit))  # one budget counted down across both servers
    assert [o.status_code for o in others] == [200] * 5
    refused_counted = sum(value(s, "http_rate_limited_total") for s in limited_scrapes)
    assert refused_counted == statuses[429]


async def test_a_revoked_key_gets_401_on_every_api_process_within_a_second(
    pipeline: Pipeline, api_pair: list[str]
) -> None:
    issued = await asyncio.to_thread(issue_key, pipeline.database_url, Role.CLIENT)
    headers = {"Authorization": f"Bearer {issued.key}"}

    async def burst(http: httpx.AsyncClient, n: int = 30) -> Counter[int]:
        answers = await asyncio.gather(
            *(
                http.get(f"{base}/v1/providers", headers=headers)
                for base in api_pair
                for _ in range(n)
            )
        )
        return Counter(a.status_code for a in answers)

    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=200)) as http:
        assert await burst(http) == {200: 60}  # every process knows (and remembers) the key
        revoke = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "cli",
            "keys",
            "revoke",
            str(issued.client.id),
            env={**os.environ, **pipeline.env},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        out, _ = await revoke.communicate()
        revoked_at = time.monotonic()
        assert revoke.returncode == 0 and b"Revoked" in out
        first_refusal: dict[str, float] = {}
        while time.monotonic() - revoked_at < 1.0:
            for base in api_pair:
                answer = await http.get(f"{base}/v1/providers", headers=headers)
                if answer.status_code == 401:
                    first_refusal.setdefault(base, time.monotonic() - revoked_at)
            await asyncio.sleep(0.05)
        after_a_second = await burst(http)
    print(f"\nfirst 401 after revoke, per server: {first_refusal}")
    assert after_a_second == {401: 60}, after_a_second
    assert set(first_refusal) == set(api_pair)
