"""Booking throughput with 1, 2 and 3 worker processes, and how fast partitions settle.

One stack (a fresh `bench_scaling_*` database, a `redis-server` of this run's own on a free
port, `booking api --workers 2`, the scheduler) and 1,000 providers. Workers start without
`--queues` and take their share of the 64 partitions. For N = 1, 2, 3 workers:

  join      a worker is added: seconds from its joining the membership until every partition
            is consumed by exactly one live worker;
  drain     a backlog of --backlog pending requests over the 1,000 providers is written to
            PostgreSQL and its wake-ups pushed in one go (no API in the way): decided/s until
            none is pending, with the workers' CPU per request;
  sustained bookings through the API, closed loop c=32 for --duration s: accepted/s,
            decided/s in the window, accepted->completed p50/p99.

Then SIGTERM one worker and SIGKILL another: seconds until every partition has one live owner.

    python -m benchmarks.scaling                      # about 4 minutes
    python -m benchmarks.scaling --backlog 20000 --duration 30
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import redis

from benchmarks import common, loadgen
from domain.ownership import assignment
from domain.partitions import queue_for
from infra.membership import Membership
from infra.queue import wakeup_message
from tests.servers import Process, free_port, start_booking

PARTITIONS = 64
WEEK = {
    day: [{"start": "00:00", "end": "24:00"}]
    for day in ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
}


@contextlib.contextmanager
def private_redis(workdir: Path) -> Iterator[str]:
    """A redis-server of this run's own: nothing anyone else keeps is flushed or slowed."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not on PATH; this benchmark starts its own")
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        cwd=workdir,
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        for _ in range(200):
            with contextlib.suppress(redis.RedisError):
                if redis.Redis.from_url(url).ping():
                    break
            time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        process.wait(10)


class Bench:
    def __init__(self, stack: common.Stack, redis_url: str, workdir: Path) -> None:
        self.stack, self.redis_url, self.workdir = stack, redis_url, workdir
        assert stack.database is not None
        self.pg = stack.database.url.replace("+psycopg", "")
        self.redis = redis.Redis.from_url(redis_url)
        self.workers: list[Process] = []

    def sql(self, query: str, params: Any = None) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.pg, autocommit=True) as connection:
            cursor = connection.execute(query, params)
            return cursor.fetchall() if cursor.description else []

    def pending(self) -> int:
        return int(self.sql("SELECT count(*) FROM booking_requests WHERE status='pending'")[0][0])

    # -- ownership ------------------------------------------------------------------------
    def live(self) -> list[Process]:
        return [w for w in self.workers if w.popen.poll() is None]

    def unsettled(self) -> bool:
        """True until each live worker consumes exactly its rendezvous share."""
        live = {w.pid for w in self.live()}
        records = [m for m in Membership(self.redis, 1).live() if m.pid in live]
        if live - {m.pid for m in records}:
            return True
        target = assignment(PARTITIONS, [m.name for m in records])
        return any(list(m.partitions) != target[m.name] for m in records)

    def wait_settled(self, since: float, timeout: float = 60) -> float:
        while self.unsettled():
            if time.monotonic() - since > timeout:
                raise TimeoutError("partitions did not settle")
            time.sleep(0.02)
        return time.monotonic() - since

    def add_worker(self) -> float:
        """Start a worker; seconds from its joining the membership until settled."""
        n = len(self.workers) + 1
        worker = start_booking(
            ["worker"], self.stack.env, self.workdir / f"worker-{n}.log", self.workdir
        )
        self.workers.append(worker)
        deadline = time.monotonic() + 120
        while worker.pid not in {m.pid for m in Membership(self.redis, 1).live()}:
            if time.monotonic() > deadline or worker.popen.poll() is not None:
                raise RuntimeError(f"worker {n} did not join:\n{worker.tail()}")
            time.sleep(0.02)
        return self.wait_settled(time.monotonic())

    # -- load -----------------------------------------------------------------------------
    def inject_backlog(self, providers: list[str], count: int, day: int) -> float:
        """`count` pending requests written straight to PostgreSQL, then all their wake-ups
        pushed in one pipeline; returns the moment the wake-ups were pushed."""
        client_id = self.sql("SELECT id FROM api_clients WHERE role = 'client' LIMIT 1")[0][0]
        base = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        base += timedelta(days=day)
        rows = self.sql(
            "INSERT INTO booking_requests (id, client_id, kind, provider_id, start_at, payload,"
            " status, attempts, created_at)"
            " SELECT gen_random_uuid(), %(client)s, 'book',"
            " (%(providers)s::uuid[])[1 + i %% %(n)s],"
            " %(base)s + (i / %(n)s) * interval '30 minutes', %(payload)s::jsonb, 'pending',"
            " 0, now() FROM generate_series(0, %(count)s - 1) AS i RETURNING provider_id, id",
            {
                "client": client_id,
                "providers": providers,
                "n": len(providers),
                "base": base,
                "count": count,
                "payload": json.dumps({"customer_id": "c"}),
            },
        )
        pipe = self.redis.pipeline(transaction=False)
        for provider, request in rows:
            queue = queue_for(provider, PARTITIONS)
            pipe.lpush(queue, wakeup_message(provider, request, queue))
        pipe.execute()
        return time.monotonic()

    def drain(self, providers: list[str], count: int, day: int) -> dict[str, Any]:
        # PostgreSQL's CPU is not sampled: the server is shared with other work right now.
        sampler = common.CpuSampler({f"worker_{i}": w.pid for i, w in enumerate(self.live())})
        sampler.start()
        pushed = self.inject_backlog(providers, count, day)
        while self.pending():
            time.sleep(0.02)
        seconds = time.monotonic() - pushed
        cpu = sampler.stop()
        workers_cpu = sum(
            pct for name, pct in cpu["process_cpu_pct"].items() if name.startswith("worker")
        )
        return {
            "drain_decided_per_s": round(count / seconds, 1),
            "drain_seconds": round(seconds, 2),
            "workers_cpu_ms_per_request": round(10 * workers_cpu * cpu["seconds"] / count, 3),
            "machine_busy_pct": cpu.get("machine_busy_pct"),
        }

    def sustained(self, providers: list[str], duration: float, day: int) -> dict[str, Any]:
        client_key = self.stack.env["BENCH_CLIENT_KEY"]
        host = self.stack.base_url.removeprefix("http://")
        base = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        base += timedelta(days=day)
        counter = itertools.count()
        headers = {"Authorization": f"Bearer {client_key}", "Content-Type": "application/json"}

        def booking() -> bytes:
            n = next(counter)
            start = base + timedelta(minutes=30 * (n // len(providers)))
            body = {"provider_id": providers[n % len(providers)], "start": start.isoformat()}
            return loadgen.encode_request(
                "POST", "/v1/bookings", host, headers, json.dumps(body).encode()
            )

        since = datetime.now(UTC)
        result = loadgen.closed_loop(
            self.stack.base_url + "/", booking, concurrency=32, duration=duration
        )
        until = datetime.now(UTC)
        summary = result.summary()
        while self.pending():
            time.sleep(0.05)
        decided, p50, p99 = self.sql(
            "SELECT count(*) FILTER (WHERE completed_at <= %(until)s),"
            " percentile_cont(0.5) WITHIN GROUP (ORDER BY completed_at - created_at),"
            " percentile_cont(0.99) WITHIN GROUP (ORDER BY completed_at - created_at)"
            " FROM booking_requests WHERE created_at >= %(since)s",
            {"since": since, "until": until},
        )[0]
        return {
            "accepted_per_s": round(summary["status_counts"].get("202", 0) / duration, 1),
            "answered_503": summary["status_counts"].get("503", 0),
            "decided_per_s_in_window": round(decided / duration, 1),
            "accepted_to_completed_p50_ms": round(p50.total_seconds() * 1000, 1),
            "accepted_to_completed_p99_ms": round(p99.total_seconds() * 1000, 1),
        }

    def remove_worker(self, how: signal.Signals) -> float:
        worker = self.live()[-1]
        since = time.monotonic()
        worker.popen.send_signal(how)
        worker.popen.wait(60)
        return self.wait_settled(since)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--providers", type=int, default=1000)
    parser.add_argument("--backlog", type=int, default=10000)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--max-workers", type=int, default=3)
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="bench-scaling-"))
    load_before = Path("/proc/loadavg").read_text().split()[:3]
    rows: list[dict[str, Any]] = []
    changes: list[dict[str, Any]] = []
    with private_redis(workdir) as redis_url:
        extra = {
            "REDIS_URL": redis_url,
            "BOOKING_PARTITIONS": str(PARTITIONS),
            "LOG_LEVEL": "WARNING",
            "DATABASE_POOL_SIZE": "5",
        }
        with common.booking_stack("scaling", api_workers=2, extra_env=extra) as stack:
            bench = Bench(stack, redis_url, workdir)
            admin = stack.client(stack.admin_key)
            common.log(f"creating {args.providers} providers")
            body = {"timezone": "UTC", "weekly_schedule": WEEK}
            providers = [
                admin.request("POST", "/v1/providers", body)[2]["id"] for _ in range(args.providers)
            ]
            stack.env["BENCH_CLIENT_KEY"] = common.create_key(
                stack.env, workdir, name="scaling", role="client"
            )
            scheduler = start_booking(["scheduler"], stack.env, workdir / "scheduler.log", workdir)
            try:
                for n in range(1, args.max_workers + 1):
                    settle = bench.add_worker()
                    changes.append({"change": f"worker {n} joined", "settled_s": round(settle, 2)})
                    common.log(f"{n} worker(s): settled {settle:.2f}s after the join; draining")
                    row: dict[str, Any] = {"workers": n}
                    row |= bench.drain(providers, args.backlog, day=10 * n)
                    common.log(f"{n} worker(s): sustained load for {args.duration:.0f}s")
                    row |= bench.sustained(providers, args.duration, day=10 * n + 5)
                    rows.append(row)
                    common.print_table([row])
                for how in (signal.SIGTERM, signal.SIGKILL):
                    settle = bench.remove_worker(how)
                    changes.append(
                        {"change": f"{how.name} to a worker", "settled_s": round(settle, 2)}
                    )
                    common.log(f"{how.name}: settled after {settle:.2f}s")
            finally:
                for worker in bench.workers:
                    worker.stop()
                scheduler.stop()
    load_after = Path("/proc/loadavg").read_text().split()[:3]
    print()
    common.print_table(rows)
    print()
    common.print_table(changes)
    print(f"\nload average before {load_before}, after {load_after} (machine shared)")
    path = common.write_results(
        "scaling",
        {
            "parameters": vars(args) | {"partitions": PARTITIONS},
            "machine": common.machine_info(),
            "load_average": {"before": load_before, "after": load_after},
            "rows": rows,
            "ownership_changes": changes,
        },
    )
    print(f"results: {path}")
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
