"""Webhook delivery: throughput per webhook worker process, latency at a steady rate, and what
webhooks cost booking decisions.

Each scenario gets a fresh database and `booking api`; 10 endpoints (an admin's, so they
receive every event) subscribe to everything and point at a fast local receiver, a separate
aiohttp process (`python -m benchmarks.webhooks receiver --port N`) that answers 200 at once.

  throughput  --events outbox events are written at once, as decisions would write them
              (10 deliveries each), then one `booking worker --queues webhooks` starts:
              deliveries per second until all have succeeded (target >= 1,000/s).
  latency     bookings accepted at --rate per second (10 deliveries each) for --duration,
              decided by one booking worker and delivered by one webhook worker: decision
              committed -> receiver's 2xx, p50/p99 from the attempt log (target p99 < 1 s at
              500 deliveries/s).
  decisions   a backlog of --backlog bookings decided by one booking worker, with webhooks
              off (no endpoints) and on (10 endpoints, a webhook worker delivering meanwhile),
              alternating --rounds times: decisions per second (target: on within 10% of off).

    BENCH_REDIS_URL=redis://127.0.0.1:6402/0 python -m benchmarks.webhooks
    python -m benchmarks.webhooks --scenario throughput --events 5000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from aiohttp import web

from benchmarks import common
from tests.servers import Process, free_port, start_booking

try:
    import uvloop
except ImportError:  # not on Windows
    uvloop = None  # type: ignore[assignment]

ENDPOINTS = 10
WEEK = {
    day: [{"start": "00:00", "end": "24:00"}]
    for day in ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
}
WEBHOOK_ENV = {"WEBHOOK_ALLOW_PRIVATE_TARGETS": "true", "LOG_LEVEL": "WARNING"}


# -- the receiver ----------------------------------------------------------------------


def serve_receiver(port: int) -> None:
    """A fast receiver: 200 to every POST, nothing else."""
    count = 0

    async def hook(request: web.Request) -> web.Response:
        nonlocal count
        await request.read()
        count += 1
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/{tail:.*}", hook)
    if uvloop is not None:
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


@contextlib.contextmanager
def receiver(workdir: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = free_port()
    log = (workdir / "receiver.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.webhooks", "receiver", "--port", str(port)],
        cwd=common.REPO,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(OSError):
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            if time.monotonic() > deadline:
                raise RuntimeError("receiver did not start")
            time.sleep(0.1)
        yield url, process
    finally:
        process.terminate()
        process.wait(10)


# -- the stack ---------------------------------------------------------------------------


class Bench:
    def __init__(self, stack: common.Stack, workdir: Path) -> None:
        self.stack = stack
        self.workdir = workdir
        self.processes: list[Process] = []
        assert stack.database is not None
        self.url = common.database_url_psycopg(stack.database)

    def sql(self, query: str, params: Any = ()) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.url) as connection:
            return connection.execute(query, params).fetchall()

    def worker(self, *args: str, name: str = "worker") -> Process:
        index = len(self.processes)
        process = start_booking(
            ["worker", *args], self.stack.env, self.workdir / f"{name}-{index}.log", self.workdir
        )
        self.processes.append(process)  # stopped at the end, whatever happens next
        process.wait_for_log("[queues]")  # the banner; " ready." is logged at INFO only
        return process

    def stop_all(self) -> None:
        for process in self.processes:
            process.stop()
        self.processes.clear()

    def register_endpoints(self, receiver_url: str) -> None:
        admin = self.stack.client()
        for n in range(ENDPOINTS):
            status, _, body = admin.request(
                "POST", "/v1/webhook-endpoints", {"url": f"{receiver_url}/e{n}", "events": ["*"]}
            )
            assert status == 201, body

    def providers(self, count: int) -> list[str]:
        admin = self.stack.client()
        return [
            admin.request("POST", "/v1/providers", {"timezone": "UTC", "weekly_schedule": WEEK})[2][
                "id"
            ]
            for _ in range(count)
        ]

    def deliveries(self, status: str) -> int:
        return int(
            self.sql("SELECT count(*) FROM webhook_deliveries WHERE status = %s", (status,))[0][0]
        )

    def pending_requests(self) -> int:
        return int(self.sql("SELECT count(*) FROM booking_requests WHERE status = 'pending'")[0][0])


@contextlib.contextmanager
def bench(name: str) -> Iterator[Bench]:
    workdir = Path(tempfile.mkdtemp(prefix=f"bench-webhooks-{name}-"))
    with common.booking_stack(f"webhooks_{name}", api_workers=1, extra_env=WEBHOOK_ENV) as stack:
        b = Bench(stack, workdir)
        try:
            yield b
        finally:
            b.stop_all()


def booking_queues() -> str:
    return ",".join(f"bookings.{p}" for p in range(64))


def _pct(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * pct / 100))] if ordered else 0.0


# -- scenarios -------------------------------------------------------------------------


def fake_events(bench: Bench, count: int) -> None:
    """Outbox rows as a decision writes them: a booking and a request, API-shaped."""
    now = datetime.now(UTC)
    rows = []
    for n in range(count):
        request_id, booking_id, provider_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        start = (now + timedelta(days=2, minutes=30 * n)).isoformat()
        payload = {
            "booking": {
                "id": str(booking_id),
                "provider_id": str(provider_id),
                "customer_id": f"patient-{n}",
                "start": start,
                "end": start,
                "status": "confirmed",
                "metadata": {"room": n % 10},
                "created_at": now.isoformat(),
                "updated_at": now.isoformat(),
                "cancelled_at": None,
                "cancel_reason": None,
            },
            "request": {
                "id": str(request_id),
                "kind": "book",
                "status": "succeeded",
                "provider_id": str(provider_id),
                "booking_id": str(booking_id),
                "start": start,
                "error": None,
                "created_at": now.isoformat(),
                "completed_at": now.isoformat(),
            },
        }
        rows.append(
            (
                f"evt_{uuid.uuid4().hex}",
                "booking.confirmed",
                request_id,
                booking_id,
                json.dumps(payload),
                now,
                n,
            )
        )
    with psycopg.connect(bench.url) as connection, connection.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO events (id, type, request_id, booking_id, payload, created_at, sequence)"
            " VALUES (%s, %s, %s, %s, %s::jsonb, %s, %s)",
            rows,
        )


def run_throughput(args: argparse.Namespace) -> dict[str, Any]:
    with bench("throughput") as b, receiver(b.workdir) as (url, receiver_process):
        b.register_endpoints(url)
        fake_events(b, args.events)
        expected = args.events * ENDPOINTS
        common.log(f"{args.events} events in the outbox ({expected} deliveries); starting worker")
        worker = b.worker("--queues=webhooks", name="webhook-worker")
        sampler = common.CpuSampler(
            {"webhook worker": worker.pid, "receiver": receiver_process.pid}, groups=["postgres"]
        )
        sampler.start()
        started = time.monotonic()
        done = 0
        while time.monotonic() - started < args.timeout:
            done = b.deliveries("succeeded")
            if done >= expected:
                break
            time.sleep(0.2)
        elapsed = time.monotonic() - started
        cpu = sampler.stop()
    rate = done / elapsed
    worker_cpu_s = cpu["process_cpu_pct"].get("webhook worker", 0) / 100 * cpu["seconds"]
    cpu_ms = 1000 * worker_cpu_s / max(done, 1)
    return {
        "scenario": "throughput",
        # On a shared machine the worker may not get a whole core; its CPU per delivery says
        # what one core would carry.
        "worker_cpu_ms_per_delivery": round(cpu_ms, 3),
        "deliveries_per_second_per_busy_core": round(1000 / cpu_ms, 1) if cpu_ms else None,
        "deliveries": done,
        "expected": expected,
        "seconds": round(elapsed, 2),
        "deliveries_per_second": round(rate, 1),
        "target": ">= 1,000/s per webhook worker process",
        "met": rate >= 1000 and done == expected,
        "cpu": cpu,
    }


def _paced_bookings(b: Bench, key: str, providers: list[str], rate: float, duration: float) -> int:
    client = common.HttpClient(b.stack.base_url, key)
    base = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=2)
    counter = itertools.count()
    started = time.monotonic()
    sent = 0
    while time.monotonic() - started < duration:
        n = next(counter)
        due = started + n / rate
        pause = due - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        start = base + timedelta(minutes=30 * (n // len(providers)))
        status, _, body = client.request(
            "POST",
            "/v1/bookings",
            {"provider_id": providers[n % len(providers)], "start": start.isoformat()},
        )
        assert status == 202, body
        sent += 1
    return sent


def run_latency(args: argparse.Namespace) -> dict[str, Any]:
    with bench("latency") as b, receiver(b.workdir) as (url, receiver_process):
        b.register_endpoints(url)
        providers = b.providers(50)
        key = common.create_key(b.stack.env, b.workdir, name="latency", role="client")
        booking_worker = b.worker(f"--queues={booking_queues()}", name="booking-worker")
        webhook_worker = b.worker("--queues=webhooks", name="webhook-worker")
        sampler = common.CpuSampler(
            {
                "booking worker": booking_worker.pid,
                "webhook worker": webhook_worker.pid,
                "receiver": receiver_process.pid,
            },
            groups=["postgres"],
        )
        sampler.start()
        common.log(f"booking at {args.rate}/s for {args.duration}s ({args.rate * 10}/s webhooks)")
        sent = _paced_bookings(b, key, providers, args.rate, args.duration)
        expected = sent * ENDPOINTS
        deadline = time.monotonic() + 60
        while b.deliveries("succeeded") < expected and time.monotonic() < deadline:
            time.sleep(0.2)
        cpu = sampler.stop()
        rows = b.sql(
            "SELECT extract(epoch FROM (a.started_at - e.created_at)) * 1000 + a.duration_ms,"
            " extract(epoch FROM (d.created_at - e.created_at)) * 1000,"
            " extract(epoch FROM (a.started_at - d.created_at)) * 1000, a.duration_ms"
            " FROM webhook_attempts a JOIN webhook_deliveries d ON d.id = a.delivery_id"
            " JOIN events e ON e.id = d.event_id WHERE a.status_code BETWEEN 200 AND 299"
        )
        decided = b.sql(
            "SELECT extract(epoch FROM (completed_at - created_at)) * 1000 FROM booking_requests"
            " WHERE status <> 'pending'"
        )
    latencies = [float(r[0]) for r in rows]
    stages = {
        name: {
            "p50": round(_pct([float(r[i]) for r in rows], 50), 1),
            "p99": round(_pct([float(r[i]) for r in rows], 99), 1),
        }
        for i, name in (
            (1, "decided_to_fanned_out"),
            (2, "fanned_out_to_sent"),
            (3, "request_to_answer"),
        )
    }
    decisions = [float(r[0]) for r in decided]
    p99 = _pct(latencies, 99)
    return {
        "scenario": "latency",
        "bookings": sent,
        "deliveries": len(latencies),
        "expected": expected,
        "deliveries_per_second_offered": args.rate * ENDPOINTS,
        "committed_to_delivered_ms": {
            "p50": round(_pct(latencies, 50), 1),
            "p90": round(_pct(latencies, 90), 1),
            "p99": round(p99, 1),
            "max": round(max(latencies, default=0), 1),
        },
        "stages_ms": stages,
        "accepted_to_decided_ms": {
            "p50": round(_pct(decisions, 50), 1),
            "p99": round(_pct(decisions, 99), 1),
        },
        "target": "p99 < 1,000 ms at 500 deliveries/s",
        "met": p99 < 1000 and len(latencies) == expected and args.rate * ENDPOINTS >= 500,
        "cpu": cpu,
    }


def _drain(args: argparse.Namespace, webhooks_on: bool, url: str | None) -> dict[str, Any]:
    label = "on" if webhooks_on else "off"
    with bench(f"decisions_{label}") as b:
        providers = b.providers(args.providers)
        if webhooks_on:
            assert url is not None
            b.register_endpoints(url)
        key = common.create_key(b.stack.env, b.workdir, name="drain", role="client")
        client = common.HttpClient(b.stack.base_url, key)
        base = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=2)
        for n in range(args.backlog):
            start = base + timedelta(minutes=30 * (n // len(providers)))
            status, _, body = client.request(
                "POST",
                "/v1/bookings",
                {"provider_id": providers[n % len(providers)], "start": start.isoformat()},
            )
            assert status == 202, body
        if webhooks_on:
            b.worker("--queues=webhooks", name="webhook-worker")
        common.log(f"webhooks {label}: {b.pending_requests()} pending; starting a booking worker")
        worker = b.worker(f"--queues={booking_queues()}", name="booking-worker")
        sampler = common.CpuSampler({"booking worker": worker.pid}, groups=["postgres"])
        sampler.start()
        started = time.monotonic()
        while b.pending_requests() and time.monotonic() - started < args.timeout:
            time.sleep(0.05)
        elapsed = time.monotonic() - started
        cpu = sampler.stop()
        decided = args.backlog - b.pending_requests()
        delivered = b.deliveries("succeeded")
    worker_cpu_s = cpu["process_cpu_pct"].get("booking worker", 0) / 100 * cpu["seconds"]
    return {
        "webhooks": label,
        "decided": decided,
        "seconds": round(elapsed, 2),
        "decided_per_second": round(decided / elapsed, 1),
        # The decision path's own cost, whatever share of the machine the worker got.
        "booking_worker_cpu_ms_per_decision": round(1000 * worker_cpu_s / max(decided, 1), 3),
        "deliveries_succeeded_meanwhile": delivered,
        "cpu": cpu,
    }


def run_decisions(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="bench-webhooks-decisions-"))
    rounds: list[dict[str, Any]] = []
    with receiver(workdir) as (url, _):
        for _ in range(args.rounds):
            rounds.append(_drain(args, False, None))
            rounds.append(_drain(args, True, url))
    off = statistics.median(r["decided_per_second"] for r in rounds if r["webhooks"] == "off")
    on = statistics.median(r["decided_per_second"] for r in rounds if r["webhooks"] == "on")
    ratio = on / off if off else 0.0
    cost_off = statistics.median(
        r["booking_worker_cpu_ms_per_decision"] for r in rounds if r["webhooks"] == "off"
    )
    cost_on = statistics.median(
        r["booking_worker_cpu_ms_per_decision"] for r in rounds if r["webhooks"] == "on"
    )
    return {
        "booking_worker_cpu_ms_per_decision_off": cost_off,
        "booking_worker_cpu_ms_per_decision_on": cost_on,
        "scenario": "decisions",
        "backlog": args.backlog,
        "decided_per_second_off": off,
        "decided_per_second_on": on,
        "on_over_off": round(ratio, 3),
        "target": "webhooks on within 10% of off",
        "met": ratio >= 0.9,
        "rounds": rounds,
    }


RUNNERS = {"throughput": run_throughput, "latency": run_latency, "decisions": run_decisions}


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "receiver":
        parser = argparse.ArgumentParser()
        parser.add_argument("receiver")
        parser.add_argument("--port", type=int, required=True)
        serve_receiver(parser.parse_args().port)
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="throughput,latency,decisions")
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--rate", type=float, default=50.0, help="bookings per second")
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--backlog", type=int, default=2000)
    parser.add_argument("--providers", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=180.0)
    args = parser.parse_args()

    results = []
    for name in args.scenario.split(","):
        common.log(f"scenario {name}")
        results.append(RUNNERS[name](args))
        print(json.dumps(results[-1], indent=1, default=str), flush=True)
    rows = []
    for r in results:
        if r["scenario"] == "throughput":
            figure = (
                f"{r['deliveries_per_second']:,.0f} deliveries/s"
                f" ({r['worker_cpu_ms_per_delivery']} ms worker CPU each)"
            )
        elif r["scenario"] == "latency":
            lat = r["committed_to_delivered_ms"]
            figure = f"p50 {lat['p50']:.0f} ms, p99 {lat['p99']:.0f} ms"
        else:
            figure = (
                f"{r['decided_per_second_on']:.0f} vs {r['decided_per_second_off']:.0f}"
                f" decided/s ({r['on_over_off']:.2f})"
            )
        rows.append(
            {"scenario": r["scenario"], "figure": figure, "target": r["target"], "met": r["met"]}
        )
    common.print_table(rows)
    path = common.write_results(
        "webhooks",
        {"parameters": vars(args), "machine": common.machine_info(), "results": results},
    )
    common.log(f"results in {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
