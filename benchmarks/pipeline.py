"""Booking pipeline benchmark: accepting bookings, deciding them, and cached availability.

Every scenario gets a fresh stack: a new `bench_pipeline_*` database (migrated), this run's own
Redis database (flushed before and after; never database 0), `booking api --workers N`, and,
where the scenario needs them, `--booking-workers` `booking worker` processes that split the
partition queues between them (each partition has exactly one consumer; `maintenance` and
`webhooks` go to the first) plus one `booking scheduler`. Everything is stopped by PID and the
database dropped at the end, also on Ctrl-C or an error.

Scenarios (`--scenario a,b`, default all, in this order):

  accept-closed               POST /v1/bookings, closed loop (c=32, 30 s), NO workers: the pure
                              accept path; requests pile up pending in PostgreSQL and Redis.
  accept-closed-with-workers  the same with workers and scheduler running (then waits for them).
  accept-open                 open loop at --rate (1,000/s) for 30 s with workers; latency from
                              the scheduled send time.
  sustained                   open loop at --rate over --providers for --sustained-duration (60 s)
                              with workers and scheduler, then waits for the backlog: drain time
                              (target <= 10 s) and accepted->completed latency from the database
                              (completed_at - created_at, target p99 <= 500 ms).
  hot-provider                one provider with exactly 100 free slots, 2,000 requests for them
                              (20 per slot) as fast as c=32 allows: exactly 100 succeed, 1,900
                              are rejected slot_unavailable, all terminal within 5 s.
  availability-cached         GET availability (7 days) of 100 providers, c=32 for 30 s after a
                              warm-up that fills the cache: target >= 10,000 req/s, p99 <= 15 ms.

    python -m benchmarks.pipeline                                   # everything (about 15 minutes)
    python -m benchmarks.pipeline --scenario sustained,hot-provider --profile 20
    python -m benchmarks.pipeline --scenario accept-open --rate 2000 --env DATABASE_POOL_SIZE=30
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import math
import os
import random
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any

import psycopg
import redis

from benchmarks import loadgen
from benchmarks.availability import availability_path, preflight, seed_providers, window
from benchmarks.common import (
    REPO,
    RESULTS_DIR,
    CpuSampler,
    Database,
    HttpClient,
    Stack,
    booking_stack,
    busiest_processes,
    cpu_snapshot,
    create_key,
    database_stats,
    database_url_psycopg,
    log,
    machine_info,
    print_table,
    query_database,
    redis_dbsize,
    redis_flush_own_db,
    redis_url_for_db,
    result_row,
    start_py_spy,
    stats_delta,
    summarize_speedscope,
    table_stats,
    table_stats_delta,
    write_results,
)
from domain.partitions import partition_queue
from tests.servers import Process, child_pids, start_booking

NAME = "pipeline"
SCENARIOS = (
    "accept-closed",
    "accept-closed-with-workers",
    "accept-open",
    "sustained",
    "hot-provider",
    "availability-cached",
)
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
OPEN_ALL_WEEK = {day: [{"start": "00:00", "end": "24:00"}] for day in WEEKDAYS}
SLOT = timedelta(minutes=30)
SLOTS_PER_DAY = 48
HORIZON_DAYS = 360  # providers book up to 365 days ahead; stay inside with a margin

Outcome = dict[str, Any]


# ----------------------------------------------------------------------------- the stack


def worker_queues(partitions: int, workers: int) -> list[list[str]]:
    """Partition queues dealt round-robin to the workers; maintenance and webhooks to the first."""
    split = [
        [partition_queue(p) for p in range(partitions) if p % workers == i] for i in range(workers)
    ]
    split[0] += ["maintenance", "webhooks"]
    return split


@dataclass
class Pipeline:
    """One scenario's running stack."""

    stack: Stack
    client_key: str
    redis_url: str
    partitions: int
    workdir: Path
    workers: list[Process] = field(default_factory=list)
    scheduler: Process | None = None

    @property
    def database(self) -> Database:
        assert self.stack.database is not None
        return self.stack.database

    @property
    def api_pid(self) -> int:
        assert self.stack.server is not None
        return self.stack.server.process.pid

    def processes(self) -> dict[str, int]:
        """Name -> PID of every process of the stack (for CPU sampling)."""
        assert self.stack.server is not None
        out = {"api_main": self.api_pid}
        for i, pid in enumerate(self.stack.server.worker_pids()):
            out[f"api_worker_{i}"] = pid
        for i, worker in enumerate(self.workers):
            out[f"booking_worker_{i}"] = worker.pid
        if self.scheduler is not None:
            out["scheduler"] = self.scheduler.pid
        return out

    def api_worker_pids(self) -> list[int]:
        assert self.stack.server is not None
        return self.stack.server.worker_pids()

    def sql(self, query: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return query_database(self.database, query, params)


OWNER_KEY = "bench:pipeline:owner"
_OWNER = f"{os.getpid()}@{os.uname().nodename}"
_TICKS = os.sysconf("SC_CLK_TCK")
# What the API, workers and scheduler write: availability cache and versions, wake-up lists,
# kombu's bindings and unacked bookkeeping, the sweep's quiet markers.
_STACK_KEY_PREFIXES = ("booking:", "bookings.", "maintenance", "webhooks", "_kombu.", "unacked")


def claim_redis_db(url: str) -> bool:
    """Marks an empty Redis database as this run's (False if it holds anything)."""
    client = redis.Redis.from_url(url)
    try:
        if client.dbsize():
            return False
        return bool(client.set(OWNER_KEY, _OWNER, nx=True))
    finally:
        client.close()


def flush_claimed_redis_db(url: str, reclaim: bool = True) -> None:
    """FLUSHDB of this run's Redis database, only while it still carries this run's mark."""
    client = redis.Redis.from_url(url)
    try:
        raw = client.get(OWNER_KEY)
        owner = raw.decode() if isinstance(raw, bytes) else raw
        if owner is None:
            # The mark is gone: someone ran FLUSHALL (the project's tests do). Flush only if
            # every key left looks like this stack's own.
            keys = [k.decode() if isinstance(k, bytes) else str(k) for k in client.scan_iter()]
            foreign = [k for k in keys if not k.startswith(_STACK_KEY_PREFIXES)]
            if foreign:
                log(f"not flushing {url}: unmarked, with keys not ours ({foreign[:3]})")
                return
            log(f"{url} lost its mark (a FLUSHALL by someone else?); flushing our own keys")
        elif owner != _OWNER:
            log(f"not flushing {url}: it is marked as another run's ({owner!r})")
            return
        redis_flush_own_db(url)
        if reclaim:
            client.set(OWNER_KEY, _OWNER)
    finally:
        client.close()


def pick_redis_db() -> int | None:
    """An empty Redis database index, from 8 down (never 0, nor 11-15, which belong to other
    jobs sharing the server)."""
    for db in (8, 7, 6, 5, 4, 3, 2, 1):
        if claim_redis_db(redis_url_for_db(db)):
            return db
    return None


@contextlib.contextmanager
def pipeline_stack(args: argparse.Namespace, scenario: str, workers: bool) -> Iterator[Pipeline]:
    """A fresh database, the API, and (with `workers`) booking workers and the scheduler."""
    flush_claimed_redis_db(args.redis_url)
    extra = {
        "REDIS_URL": args.redis_url,
        "BOOKING_PARTITIONS": str(args.partitions),
        "LOG_LEVEL": "INFO",  # a worker logs " ready." at INFO once it consumes
        **dict(item.split("=", 1) for item in args.env),
    }
    try:
        with booking_stack(
            f"{NAME}_{scenario.replace('-', '_')}",
            api_workers=args.api_workers,
            extra_env=extra,
            keep_database=args.keep_db,
            git_rev=args.git_rev,
        ) as stack:
            assert stack.server is not None
            workdir = stack.server.process.log.parent
            client_key = create_key(stack.env, workdir, "bench-client", "client")
            pipe = Pipeline(stack, client_key, args.redis_url, args.partitions, workdir)
            try:
                if workers:
                    start_workers(pipe, args.booking_workers)
                yield pipe
            finally:
                stop_workers(pipe)
    finally:
        flush_claimed_redis_db(args.redis_url)


def start_workers(pipe: Pipeline, count: int) -> None:
    env = pipe.stack.env
    for i, queues in enumerate(worker_queues(pipe.partitions, count)):
        args = ["worker", "--queues", ",".join(queues)]
        pipe.workers.append(start_booking(args, env, pipe.workdir / f"w{i}.log", pipe.workdir))
    for worker in pipe.workers:
        worker.wait_for_log(" ready.")
    pipe.scheduler = start_booking(["scheduler"], env, pipe.workdir / "beat.log", pipe.workdir)
    pipe.scheduler.wait_for_log("beat: Starting")
    pids = [w.pid for w in pipe.workers]
    log(f"{count} booking workers (pids {pids}) and the scheduler ({pipe.scheduler.pid}) ready")


def stop_workers(pipe: Pipeline) -> None:
    if pipe.scheduler is not None:
        pid = pipe.scheduler.pid
        pipe.scheduler.stop()
        # celery beat's schedule file of that process (named by the app after its PID)
        for leftover in Path(pipe.workdir.parent).glob(f"booking-beat-{pid}*"):
            with contextlib.suppress(OSError):
                leftover.unlink()
    for worker in pipe.workers:
        worker.stop()
    if pipe.workers or pipe.scheduler:
        log(f"workers and scheduler stopped; logs in {pipe.workdir}")


# ----------------------------------------------------------------------------- seeding


def post_all(
    base_url: str, key: str, calls: Sequence[tuple[str, str, Any]], threads: int = 8
) -> list[Any]:
    """Send (method, path, body) calls over `threads` keep-alive connections; bodies back in order.

    Any answer other than 2xx raises.
    """
    answers: list[Any] = [None] * len(calls)
    failures: list[str] = []

    def run(indices: range) -> None:
        client = HttpClient(base_url, key)
        try:
            for i in indices:
                method, path, body = calls[i]
                status, _, payload = client.request(method, path, body)
                if not 200 <= status < 300:
                    failures.append(f"{method} {path} answered {status}: {payload}")
                    return
                answers[i] = payload
        except Exception as exc:
            failures.append(repr(exc))
        finally:
            client.close()

    chunk = max(1, math.ceil(len(calls) / threads))
    workers = [
        threading.Thread(target=run, args=(range(i, min(i + chunk, len(calls))),))
        for i in range(0, len(calls), chunk)
    ]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    if failures:
        raise RuntimeError(f"seeding failed: {failures[0]}")
    return answers


def seed_open_providers(pipe: Pipeline, count: int, label: str = "Bench") -> list[str]:
    """`count` providers open around the clock every day, UTC, 30-minute slots."""
    calls = [
        (
            "POST",
            "/v1/providers",
            {
                "name": f"{label} provider {i:04d}",
                "timezone": "UTC",
                "weekly_schedule": OPEN_ALL_WEEK,
                "slot_minutes": 30,
            },
        )
        for i in range(count)
    ]
    return [body["id"] for body in post_all(pipe.stack.base_url, pipe.stack.admin_key, calls)]


def first_slot() -> datetime:
    """Midnight UTC the day after tomorrow: in the future for the whole run, on every grid."""
    day = datetime.now(UTC).date() + timedelta(days=2)
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


class BookingStream:
    """A factory of valid, distinct POST /v1/bookings requests (pre-encoded bytes).

    Request i books provider i % P at slot i // P after `base`: consecutive requests go to
    different providers (and partitions), and no (provider, slot) ever repeats.
    """

    def __init__(self, host_header: str, key: str, providers: Sequence[str], base: datetime):
        self.providers = list(providers)
        self.base = base
        self.count = 0
        self._starts: list[str] = []
        self._head = (
            f"POST /v1/bookings HTTP/1.1\r\nHost: {host_header}\r\n"
            f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\nContent-Length: "
        ).encode()

    def start_of(self, slot: int) -> str:
        while len(self._starts) <= slot:
            n = len(self._starts)
            if n >= HORIZON_DAYS * SLOTS_PER_DAY:
                raise RuntimeError("ran out of distinct slots; use more --providers")
            self._starts.append((self.base + n * SLOT).isoformat())
        return self._starts[slot]

    def __call__(self) -> bytes:
        i = self.count
        self.count = i + 1
        provider = self.providers[i % len(self.providers)]
        body = (
            f'{{"provider_id":"{provider}","start":"{self.start_of(i // len(self.providers))}",'
            f'"customer_id":"c{i}"}}'
        ).encode()
        return self._head + str(len(body)).encode() + b"\r\n\r\n" + body


# ----------------------------------------------------------------------------- observers


def _pct(values: Sequence[float], pct: float) -> float:
    return loadgen.percentile(values, pct)


def _ms_summary(values_s: Sequence[float]) -> dict[str, float]:
    ordered = sorted(values_s)
    if not ordered:
        return {}
    return {
        "n": len(ordered),
        "p50": round(_pct(ordered, 50) * 1000, 1),
        "p90": round(_pct(ordered, 90) * 1000, 1),
        "p99": round(_pct(ordered, 99) * 1000, 1),
        "max": round(ordered[-1] * 1000, 1),
    }


class Probe:
    """End-to-end latency as a client sees it, sampled at `rate`/s beside the load.

    Each probe books a distinct slot of its own providers, then long-polls
    GET /v1/booking-requests/{id}?wait=15 until the status is terminal. It measures from the
    send of the POST to the terminal answer, which includes the worker's commit and the
    notification (the database's completed_at is stamped when the batch *starts*).
    """

    def __init__(
        self,
        base_url: str,
        key: str,
        providers: Sequence[str],
        base: datetime,
        rate: float,
        threads: int = 4,
    ) -> None:
        self.base_url = base_url
        self.key = key
        self.providers = list(providers)
        self.base = base
        self.rate = rate
        self.threads = threads
        self._counter = itertools.count()
        self._stop = threading.Event()
        self._workers: list[threading.Thread] = []
        self.e2e: list[float] = []
        self.accept: list[float] = []
        self.db_side: list[float] = []
        self.outcomes: dict[str, int] = {}
        self.errors: list[str] = []

    def start(self) -> None:
        for i in range(self.threads):
            thread = threading.Thread(target=self._run, args=(i,), daemon=True)
            self._workers.append(thread)
            thread.start()

    def stop_sending(self) -> None:
        self._stop.set()

    def stop(self, seconds: float = 40.0) -> None:
        self._stop.set()
        deadline = time.monotonic() + seconds
        for thread in self._workers:
            thread.join(max(0.0, deadline - time.monotonic()))

    def _run(self, index: int) -> None:
        client = HttpClient(self.base_url, self.key, timeout=30)
        period = self.threads / self.rate
        next_at = time.monotonic() + index * period / self.threads
        try:
            while not self._stop.is_set():
                delay = next_at - time.monotonic()
                if delay > 0 and self._stop.wait(delay):
                    break
                next_at += period
                try:
                    self._one(client)
                except Exception as exc:
                    self.errors.append(repr(exc))
                    client.close()
        finally:
            client.close()

    def _one(self, client: HttpClient) -> None:
        n = next(self._counter)
        provider = self.providers[n % len(self.providers)]
        start = (self.base + (n // len(self.providers)) * SLOT).isoformat()
        t0 = time.perf_counter()
        status, _, body = client.request(
            "POST", "/v1/bookings", {"provider_id": provider, "start": start}
        )
        t1 = time.perf_counter()
        if status != 202:
            self.errors.append(f"POST answered {status}")
            return
        self.accept.append(t1 - t0)
        deadline = t0 + 60
        while True:
            status, _, body = client.request("GET", f"/v1/booking-requests/{body['id']}?wait=15")
            if status != 200:
                self.errors.append(f"GET answered {status}")
                return
            if body["status"] != "pending" or time.perf_counter() > deadline:
                break
        done = time.perf_counter()
        self.outcomes[body["status"]] = self.outcomes.get(body["status"], 0) + 1
        if body["status"] == "pending":
            return
        self.e2e.append(done - t0)
        if body.get("completed_at"):
            created = datetime.fromisoformat(body["created_at"])
            completed = datetime.fromisoformat(body["completed_at"])
            self.db_side.append((completed - created).total_seconds())

    def summary(self) -> dict[str, Any]:
        return {
            "rate_per_s": self.rate,
            "outcomes": self.outcomes,
            "post_to_terminal_ms": _ms_summary(self.e2e),
            "post_202_ms": _ms_summary(self.accept),
            "completed_at_minus_created_at_ms": _ms_summary(self.db_side),
            "errors": self.errors[:5],
            "error_count": len(self.errors),
        }


class BacklogMonitor:
    """Once a second: pending requests in PostgreSQL and wake-ups queued in Redis."""

    def __init__(self, database: Database, redis_url: str, partitions: int) -> None:
        self.database = database
        self.redis_url = redis_url
        self.queues = [partition_queue(p) for p in range(partitions)]
        self.samples: list[tuple[float, int, int, int]] = []  # t, rows, pending, queued
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.t0 = 0.0

    def start(self) -> None:
        self.t0 = time.monotonic()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        client = redis.Redis.from_url(self.redis_url)
        try:
            with psycopg.connect(database_url_psycopg(self.database), autocommit=True) as conn:
                while not self._stop.is_set():
                    row = conn.execute(
                        "SELECT count(*), count(*) FILTER (WHERE status = 'pending')"
                        " FROM booking_requests"
                    ).fetchone()
                    pipe = client.pipeline(transaction=False)
                    for queue in self.queues:
                        pipe.llen(queue)
                    queued = sum(int(n) for n in pipe.execute())
                    rows, pending = (int(row[0]), int(row[1])) if row else (0, 0)
                    t = round(time.monotonic() - self.t0, 1)
                    self.samples.append((t, rows, pending, queued))
                    self._stop.wait(1.0)
        except Exception as exc:  # monitoring must not break the run
            log(f"backlog monitor stopped: {exc!r}")
        finally:
            client.close()

    def summary(self) -> dict[str, Any]:
        if not self.samples:
            return {}
        return {
            "max_pending": max(s[2] for s in self.samples),
            "max_queued_wakeups": max(s[3] for s in self.samples),
            "timeline": [
                {"t": t, "rows": rows, "pending": pending, "queued": queued}
                for t, rows, pending, queued in self.samples
            ],
        }

    def sparkline(self, every: float = 5.0) -> str:
        """`t=5s pending 120 queued 300 | ...`, one sample per `every` seconds."""
        shown: list[str] = []
        last = -math.inf
        for t, _, pending, queued in self.samples:
            if t - last >= every:
                shown.append(f"{t:g}s:{pending}/{queued}")
                last = t
        return " ".join(shown)


def _cpu_of(pids: Sequence[int]) -> float:
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / _TICKS
    return total


def wait_until_terminal(
    database: Database,
    timeout: float,
    provider_id: str | None = None,
    api_pids: Sequence[int] = (),
    poll: float = 0.02,
    settle: float = 2.0,
) -> tuple[bool, float, int]:
    """(all terminal, seconds until then, still pending), polling the database every `poll` s.

    Requests the generator gave up on may still be inside the API (waiting for a database
    connection) and be accepted later, so "all terminal" means: no request pending, no new
    one for `settle` seconds, and the API processes (`api_pids`) idle (< 5% of a core) over
    that time. The time reported is when the last pending request was decided.
    """
    where = "WHERE provider_id = %s" if provider_id else ""
    params: tuple[Any, ...] = (provider_id,) if provider_id else ()
    query = (
        f"SELECT count(*) FILTER (WHERE status = 'pending'), count(*) FROM booking_requests {where}"
    )
    started = time.monotonic()
    rows_seen = -1
    changed_at = started
    zero_at: float | None = None
    cpu_marks: list[tuple[float, float]] = []  # (time, API CPU seconds)
    with psycopg.connect(database_url_psycopg(database), autocommit=True) as conn:
        while True:
            found = conn.execute(query, params).fetchone()
            now = time.monotonic()
            pending, rows = (int(found[0]), int(found[1])) if found else (0, 0)
            if rows != rows_seen:
                rows_seen, changed_at = rows, now
            if pending:
                zero_at = None
            elif zero_at is None:
                zero_at = now
            api_idle = True
            if api_pids:
                cpu_marks.append((now, _cpu_of(api_pids)))
                cpu_marks = [m for m in cpu_marks if now - m[0] <= settle]
                span = now - cpu_marks[0][0]
                api_idle = span >= settle * 0.9 and (
                    cpu_marks[-1][1] - cpu_marks[0][1] < 0.05 * span
                )
            if zero_at is not None and now - changed_at >= settle and api_idle:
                return True, zero_at - started, 0
            if now - started > timeout:
                return False, now - started, pending
            time.sleep(poll)


def request_stats(pipe: Pipeline, provider_id: str | None = None) -> dict[str, Any]:
    """Counts by status and accepted->completed latency of booking requests, from the database."""
    where = "WHERE provider_id = %s" if provider_id else ""
    and_where = "AND provider_id = %s" if provider_id else ""
    params: tuple[Any, ...] = (provider_id,) if provider_id else ()
    by_status = {
        f"{status}{'/' + code if code else ''}": int(n)
        for status, code, n in pipe.sql(
            f"SELECT status, error_code, count(*) FROM booking_requests {where}"
            " GROUP BY 1, 2 ORDER BY 1, 2",
            params,
        )
    }
    row = pipe.sql(
        "SELECT count(*),"
        " percentile_disc(ARRAY[0.5, 0.9, 0.99, 0.999]) WITHIN GROUP (ORDER BY lat),"
        " max(lat), avg(lat),"
        " extract(epoch FROM max(completed_at) - max(created_at)) * 1000,"
        " extract(epoch FROM max(completed_at) - min(created_at)) * 1000"
        " FROM (SELECT completed_at, created_at,"
        "  extract(epoch FROM completed_at - created_at) * 1000 AS lat"
        f"  FROM booking_requests WHERE completed_at IS NOT NULL {and_where}) t",
        params,
    )[0]
    latency: dict[str, Any] = {}
    if row[0]:
        p50, p90, p99, p999 = (float(v) for v in row[1])
        latency = {
            "n": int(row[0]),
            "p50": round(p50, 1),
            "p90": round(p90, 1),
            "p99": round(p99, 1),
            "p99.9": round(p999, 1),
            "max": round(float(row[2]), 1),
            "mean": round(float(row[3]), 1),
        }
    # One decision transaction stamps all it decides with one completed_at (its start time).
    batches = pipe.sql(
        "SELECT count(*), avg(n), percentile_disc(ARRAY[0.5, 0.99]) WITHIN GROUP (ORDER BY n),"
        " max(n), avg(providers) FROM (SELECT count(*) AS n,"
        "  count(DISTINCT provider_id) AS providers FROM booking_requests"
        f"  WHERE completed_at IS NOT NULL {and_where} GROUP BY completed_at) b",
        params,
    )[0]
    batch: dict[str, Any] = {}
    if batches[0]:
        batch = {
            "transactions": int(batches[0]),
            "mean_requests": round(float(batches[1]), 2),
            "p50_requests": int(batches[2][0]),
            "p99_requests": int(batches[2][1]),
            "max_requests": int(batches[3]),
            "mean_providers": round(float(batches[4]), 2),
        }
    return {
        "by_status": by_status,
        "total": sum(by_status.values()),
        "pending": sum(n for k, n in by_status.items() if k.startswith("pending")),
        "accepted_to_completed_ms": latency,
        "last_accept_to_last_completion_ms": None if row[4] is None else round(float(row[4]), 1),
        "first_accept_to_last_completion_ms": None if row[5] is None else round(float(row[5]), 1),
        "batches": batch,
    }


def _rows(pipe: Pipeline) -> int:
    return int(pipe.sql("SELECT count(*) FROM booking_requests")[0][0])


def queued_wakeups(pipe: Pipeline) -> int:
    client = redis.Redis.from_url(pipe.redis_url)
    try:
        p = client.pipeline(transaction=False)
        for i in range(pipe.partitions):
            p.llen(partition_queue(i))
        return sum(int(n) for n in p.execute())
    finally:
        client.close()


# ----------------------------------------------------------------------------- measuring


@dataclass
class Watch:
    """CPU of the stack (and who else used the machine), database counters, optional py-spy."""

    pipe: Pipeline
    profile_seconds: float
    scenario: str
    profile_workers: bool = True
    sampler: CpuSampler | None = None
    snapshot: dict[int, tuple[str, float]] = field(default_factory=dict)
    db_before: dict[str, int] = field(default_factory=dict)
    tables_before: dict[str, dict[str, int]] = field(default_factory=dict)
    started: float = 0.0
    profilers: list[tuple[str, Any, Path]] = field(default_factory=list)

    def start(self, profile_delay: float = 0.0) -> None:
        """Sample from now; py-spy records `profile_seconds` after `profile_delay` (warm-up)."""
        self.db_before = database_stats(self.pipe.database)
        self.tables_before = table_stats(self.pipe.database)
        self.sampler = CpuSampler(self.pipe.processes(), groups=["postgres", "redis-server"])
        self.snapshot = cpu_snapshot()
        self.started = time.monotonic()
        self.sampler.start()
        if self.profile_seconds > 0:
            targets = [("api", self.pipe.api_pid)]
            if self.profile_workers:
                targets += [(f"worker{i}", w.pid) for i, w in enumerate(self.pipe.workers)]
            RESULTS_DIR.mkdir(parents=True, exist_ok=True)
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
            seconds = max(1, round(self.profile_seconds + profile_delay))
            for role, pid in targets:
                out = RESULTS_DIR / f"{NAME}-{self.scenario}-{role}-{stamp}.speedscope.json"
                self.profilers.append((role, start_py_spy(pid, seconds, out), out))

    def stop(self, requests: int) -> dict[str, Any]:
        assert self.sampler is not None
        cpu = self.sampler.stop()
        wall = time.monotonic() - self.started
        own = set(self.pipe.processes().values())
        own |= set(_descendants_of_self())
        others = [
            p
            for p in busiest_processes(self.snapshot, cpu_snapshot(), wall, exclude=own, top=8)
            if p["comm"] not in {"postgres", "redis-server"}
        ][:4]
        cpu["other_busy_processes"] = others
        # CPU the machine spent on anything but this stack (other tenants; short-lived
        # processes that the snapshot above misses are counted here too)
        if "machine_busy_pct" in cpu:
            ours = sum(cpu["process_cpu_pct"].values())
            total = cpu["machine_busy_pct"] * (os.cpu_count() or 1)
            cpu["unaccounted_pct"] = round(max(0.0, total - ours), 1)
        db: dict[str, Any] = stats_delta(self.db_before, database_stats(self.pipe.database))
        if requests:
            db["transactions_per_request"] = round(
                (db.get("xact_commit", 0) + db.get("xact_rollback", 0)) / requests, 2
            )
        tables = table_stats_delta(self.tables_before, table_stats(self.pipe.database))
        return {"cpu": cpu, "database_activity": db, "table_activity": tables}

    def profiles(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for role, proc, path in self.profilers:
            try:
                _, err = proc.communicate(timeout=self.profile_seconds + 120)
            except Exception as exc:
                out[role] = {"error": repr(exc)}
                continue
            if path.exists():
                summary = summarize_speedscope(path, top=15)
                summary["file"] = str(path)
                out[role] = summary
            else:
                out[role] = {"error": err.decode(errors="replace")[-400:]}
        self.profilers.clear()
        return out


def _descendants_of_self() -> list[int]:
    return [os.getpid(), *child_pids(os.getpid())]


def cpu_seconds(cpu: Mapping[str, Any]) -> dict[str, float]:
    """CPU seconds by part of the stack, from a CpuSampler result."""
    pct: Mapping[str, float] = cpu.get("process_cpu_pct", {})
    wall = float(cpu.get("seconds", 0.0))

    def part(prefix: str) -> float:
        return sum(v for k, v in pct.items() if k.startswith(prefix)) / 100.0 * wall

    return {
        "api": part("api_"),
        "booking_workers": part("booking_worker_"),
        "postgres": part("all 'postgres'"),
        "redis": part("all 'redis-server'"),
        "other_tenants": float(cpu.get("unaccounted_pct", 0.0)) / 100.0 * wall,
    }


def cpu_ms_per_request(
    windows: Sequence[Mapping[str, Any]], requests: int, parts: Sequence[str] | None = None
) -> dict[str, float]:
    """CPU milliseconds per request by part, summed over sampling windows (load, drain).

    Unlike throughput this hardly depends on what else runs on the machine, so it is the
    number to compare between runs on a shared box.
    """
    total: dict[str, float] = {}
    for cpu in windows:
        for name, seconds in cpu_seconds(cpu).items():
            total[name] = total.get(name, 0.0) + seconds
    if not requests:
        return {}
    return {
        k: round(v * 1000.0 / requests, 3)
        for k, v in total.items()
        if (parts is None or k in parts) and k != "other_tenants"
    }


def _loadgen_kwargs(args: argparse.Namespace, expect: int, warmup: float) -> dict[str, Any]:
    return {"warmup": warmup, "timeout": args.timeout, "expect_status": {expect}}


def _target(name: str, met: bool, observed: str) -> dict[str, Any]:
    return {"target": name, "met": met, "observed": observed}


# ----------------------------------------------------------------------------- scenarios


def run_accept_closed(args: argparse.Namespace, with_workers: bool) -> Outcome:
    scenario = "accept-closed-with-workers" if with_workers else "accept-closed"
    with pipeline_stack(args, scenario, workers=with_workers) as pipe:
        log(f"seeding {args.providers} providers")
        providers = seed_open_providers(pipe, args.providers)
        target = loadgen.Target.parse(pipe.stack.base_url)
        stream = BookingStream(target.host_header, pipe.client_key, providers, first_slot())
        watch = Watch(pipe, args.profile, scenario, profile_workers=with_workers)
        log(f"{scenario}: closed loop c={args.concurrency}, {args.warmup:g}s + {args.duration:g}s")
        watch.start(profile_delay=args.warmup)
        result = loadgen.closed_loop(
            pipe.stack.base_url + "/",
            stream,
            args.concurrency,
            args.duration,
            **_loadgen_kwargs(args, 202, args.warmup),
        )
        measured = watch.stop(result.requests + result.warmup_requests)
        summary = result.summary()
        outcome: Outcome = {"result": summary, **measured, "requests_sent": stream.count}
        answered = max(result.requests + result.warmup_requests, _rows(pipe))
        outcome["cpu_ms_per_request"] = {
            "accept": cpu_ms_per_request([measured["cpu"]], answered, ["api", "postgres", "redis"])
        }
        if with_workers:
            drain_watch = Watch(pipe, 0.0, scenario)
            drain_watch.start()
            ok, waited, left = wait_until_terminal(
                pipe.database, args.drain_timeout, api_pids=pipe.api_worker_pids()
            )
            drain_cpu = drain_watch.stop(0)["cpu"]
            outcome["drain"] = {
                "all_terminal": ok,
                "seconds_after_load": round(waited, 2),
                "still_pending": left,
                "cpu": drain_cpu,
            }
            outcome["requests"] = request_stats(pipe)
            decided = outcome["requests"]["total"] - outcome["requests"]["pending"]
            outcome["cpu_ms_per_request"]["decide"] = cpu_ms_per_request(
                [measured["cpu"], drain_cpu], decided, ["booking_workers"]
            )
            log(f"backlog drained={ok} after {waited:.1f}s ({left} pending)")
        else:
            time.sleep(0.5)  # the server finishes the requests abandoned at the end of the loop
            rows = pipe.sql(
                "SELECT count(*), count(*) FILTER (WHERE status = 'pending') FROM booking_requests"
            )[0]
            outcome["pile_up"] = {
                "rows_in_postgres": int(rows[0]),
                "pending_in_postgres": int(rows[1]),
                "wakeups_queued_in_redis": queued_wakeups(pipe),
            }
        outcome["profile"] = watch.profiles()
    answered = result.requests
    outcome["targets"] = [
        _target(
            "every request answered 202, no errors",
            result.error_count == 0 and set(summary["status_counts"]) == {"202"},
            f"status {summary['status_counts']}, errors {summary['errors'] or 0}",
        )
    ]
    if not with_workers:
        pile = outcome["pile_up"]
        outcome["targets"].append(
            _target(
                "every accepted request is pending in PostgreSQL with a wake-up in Redis",
                pile["pending_in_postgres"] == pile["rows_in_postgres"] >= answered
                and pile["wakeups_queued_in_redis"] == pile["rows_in_postgres"],
                f"{pile['rows_in_postgres']} rows, {pile['pending_in_postgres']} pending, "
                f"{pile['wakeups_queued_in_redis']} wake-ups queued",
            )
        )
    else:
        outcome["targets"].append(_drain_target(outcome, limit=None))
    outcome["label"] = f"{scenario} c={args.concurrency}"
    return outcome


def _drain_target(outcome: Outcome, limit: float | None) -> dict[str, Any]:
    drain = outcome["drain"]
    stats = outcome["requests"]
    ok = drain["all_terminal"] and (limit is None or drain["seconds_after_load"] <= limit)
    name = "all requests terminal" + (
        f" within {limit:g} s of the end of the load" if limit else ""
    )
    return _target(
        name,
        ok,
        f"all terminal={drain['all_terminal']} after {drain['seconds_after_load']:.2f} s; "
        f"{stats['by_status']}",
    )


def run_open(args: argparse.Namespace, scenario: str, duration: float) -> Outcome:
    """accept-open and sustained: an open loop at --rate with workers, then the backlog."""
    with pipeline_stack(args, scenario, workers=True) as pipe:
        log(f"seeding {args.providers} providers (+{args.probe_providers} for the probe)")
        providers = seed_open_providers(pipe, args.providers)
        probe_providers = (
            seed_open_providers(pipe, args.probe_providers, "Probe") if args.probe_rate else []
        )
        target = loadgen.Target.parse(pipe.stack.base_url)
        base = first_slot()
        stream = BookingStream(target.host_header, pipe.client_key, providers, base)
        probe = (
            Probe(pipe.stack.base_url, pipe.client_key, probe_providers, base, args.probe_rate)
            if args.probe_rate
            else None
        )
        monitor = BacklogMonitor(pipe.database, pipe.redis_url, pipe.partitions)
        watch = Watch(pipe, args.profile, scenario)
        log(f"{scenario}: open loop at {args.rate:g}/s, {args.warmup:g}s + {duration:g}s")
        monitor.start()
        watch.start(profile_delay=args.warmup)
        if probe is not None:
            probe.start()
        result = loadgen.open_loop(
            pipe.stack.base_url + "/",
            stream,
            args.rate,
            duration,
            **_loadgen_kwargs(args, 202, args.warmup),
        )
        if probe is not None:
            probe.stop_sending()  # those in flight finish below
        measured = watch.stop(result.requests + result.warmup_requests)
        drain_watch = Watch(pipe, 0.0, scenario)
        drain_watch.start()
        ok, waited, left = wait_until_terminal(
            pipe.database, args.drain_timeout, api_pids=pipe.api_worker_pids()
        )
        drain_measured = drain_watch.stop(0)
        monitor.stop()
        if probe is not None:
            probe.stop()
        log(f"backlog drained={ok} {waited:.2f}s after the load ({left} pending)")
        summary = result.summary()
        outcome: Outcome = {
            "result": summary,
            **measured,
            "drain": {
                "all_terminal": ok,
                "seconds_after_load": round(waited, 2),
                "still_pending": left,
                "cpu": drain_measured["cpu"],
            },
            "requests": request_stats(pipe),
            "cpu_ms_per_request": {},
            "backlog": monitor.summary(),
            "backlog_sparkline": monitor.sparkline(),
            "probe": probe.summary() if probe is not None else None,
            "requests_sent": stream.count,
            "profile": watch.profiles(),
        }
    # Requests that timed out at the generator were still accepted: count rows, not answers.
    rows = outcome["requests"]["total"]
    windows = [outcome["cpu"], outcome["drain"]["cpu"]]
    outcome["cpu_ms_per_request"] = {
        "accept": cpu_ms_per_request([outcome["cpu"]], rows, ["api"]),
        "decide": cpu_ms_per_request(windows, rows, ["booking_workers"]),
        "accept_and_decide": cpu_ms_per_request(windows, rows, ["postgres", "redis"]),
    }
    achieved = summary["requests"] / summary["scheduled"] if summary.get("scheduled") else 0.0
    targets = [
        _target(
            "every request answered 202, no errors, offered rate kept",
            result.error_count == 0
            and set(summary["status_counts"]) == {"202"}
            and achieved >= 0.99,
            f"{summary['requests']}/{summary['scheduled']} answered, "
            f"status {summary['status_counts']}, errors {summary['errors'] or 0}",
        )
    ]
    stats = outcome["requests"]
    if scenario == "sustained":
        lat = stats["accepted_to_completed_ms"]
        targets += [
            _drain_target(outcome, limit=args.drain_target),
            _target(
                f"accepted->completed p99 <= {args.latency_target:g} ms (database)",
                bool(lat) and lat["p99"] <= args.latency_target,
                f"p50 {lat.get('p50')} p99 {lat.get('p99')} max {lat.get('max')} ms",
            ),
            _target(
                "every request succeeded (all slots distinct)",
                stats["by_status"] == {"succeeded": stats["total"]},
                str(stats["by_status"]),
            ),
        ]
    else:
        targets.append(_drain_target(outcome, limit=None))
    outcome["targets"] = targets
    outcome["label"] = f"{scenario} r={args.rate:g}/s {duration:g}s"
    return outcome


def hot_schedule(first_day: date, slots: int) -> list[tuple[date, list[dict[str, str]]]]:
    """Overrides that open exactly `slots` 30-minute slots: whole days, then part of one."""
    out: list[tuple[date, list[dict[str, str]]]] = []
    day = first_day
    left = slots
    while left > 0:
        n = min(left, SLOTS_PER_DAY)
        end = "24:00" if n == SLOTS_PER_DAY else f"{n * 30 // 60:02d}:{n * 30 % 60:02d}"
        out.append((day, [{"start": "00:00", "end": end}]))
        left -= n
        day += timedelta(days=1)
    return out


def run_hot_provider(args: argparse.Namespace) -> Outcome:
    scenario = "hot-provider"
    total = args.hot_slots * args.hot_per_slot
    with pipeline_stack(args, scenario, workers=True) as pipe:
        admin = pipe.stack.client()
        status, _, body = admin.request(
            "POST",
            "/v1/providers",
            {"name": "Hot provider", "timezone": "UTC", "weekly_schedule": {}, "slot_minutes": 30},
        )
        if status != 201:
            raise RuntimeError(f"POST /v1/providers answered {status}: {body}")
        provider = body["id"]
        overrides = hot_schedule(datetime.now(UTC).date() + timedelta(days=3), args.hot_slots)
        for day, intervals in overrides:
            status, _, body = admin.request(
                "PUT", f"/v1/providers/{provider}/overrides/{day}", {"intervals": intervals}
            )
            if status != 200:
                raise RuntimeError(f"PUT override answered {status}: {body}")
        first, last = overrides[0][0], overrides[-1][0]
        status, _, body = admin.request(
            "GET",
            f"/v1/providers/{provider}/availability?from={first - timedelta(days=1)}"
            f"&to={last + timedelta(days=1)}",
        )
        admin.close()
        if status != 200 or len(body["slots"]) != args.hot_slots:
            raise RuntimeError(f"expected {args.hot_slots} free slots, got {status} {body}")
        starts = [slot["start"] for slot in body["slots"]]
        log(f"hot provider {provider}: {len(starts)} free slots from {first} to {last}")

        rng = random.Random(args.seed)
        target = loadgen.Target.parse(pipe.stack.base_url)
        auth = {"Authorization": f"Bearer {pipe.client_key}"}
        order = [  # every slot once per round, in a new random order each round
            start for _ in range(args.hot_per_slot) for start in rng.sample(starts, len(starts))
        ]
        body = {"provider_id": provider}
        requests = [
            loadgen.encode_request(
                "POST", "/v1/bookings", target.host_header, auth, {**body, "start": start}
            )
            for start in order
        ]
        feed = iter(requests)
        sent = 0

        def factory() -> bytes:
            nonlocal sent
            sent += 1
            return next(feed)

        # An open loop scheduling all requests at once over c connections: as fast as c allows.
        rate = 1_000_000.0
        duration = total / rate
        if math.ceil(duration * rate) != total:
            raise RuntimeError("cannot schedule exactly the requests wanted")
        watch = Watch(pipe, args.profile, scenario)
        log(f"hot-provider: {total} requests at c={args.hot_concurrency}")
        watch.start()
        t0 = time.monotonic()
        result = loadgen.open_loop(
            pipe.stack.base_url + "/",
            factory,
            rate,
            duration,
            connections=args.hot_concurrency,
            max_connections=args.hot_concurrency,
            timeout=60.0,
            expect_status={202},
        )
        sent_for = time.monotonic() - t0
        ok, waited, left = wait_until_terminal(pipe.database, args.drain_timeout, provider)
        all_terminal_after = sent_for + waited
        measured = watch.stop(total)
        log(f"sent in {sent_for:.2f}s; all terminal={ok} {all_terminal_after:.2f}s after start")
        stats = request_stats(pipe, provider)
        checks = pipe.sql(
            "SELECT"
            " (SELECT count(*) FROM bookings WHERE provider_id = %s AND status = 'confirmed'),"
            " (SELECT count(DISTINCT start_at) FROM bookings"
            "   WHERE provider_id = %s AND status = 'confirmed'),"
            " (SELECT count(*) FROM (SELECT start_at, min(seq) AS first FROM booking_requests"
            "   WHERE provider_id = %s GROUP BY start_at) f"
            "   JOIN booking_requests r ON r.seq = f.first WHERE r.status = 'succeeded')",
            (provider, provider, provider),
        )[0]
        outcome: Outcome = {
            "result": result.summary(),
            **measured,
            "provider_id": provider,
            "free_slots": len(starts),
            "requests_sent": sent,
            "send_seconds": round(sent_for, 3),
            "all_terminal": ok,
            "still_pending": left,
            "first_send_to_all_terminal_s": round(all_terminal_after, 3),
            "requests": stats,
            "cpu_ms_per_request": cpu_ms_per_request([measured["cpu"]], total),
            "confirmed_bookings": int(checks[0]),
            "distinct_confirmed_starts": int(checks[1]),
            "slots_won_by_first_request": int(checks[2]),
            "profile": watch.profiles(),
        }
    by_status = stats["by_status"]
    rejected = total - args.hot_slots
    outcome["targets"] = [
        _target(
            f"exactly {args.hot_slots} succeeded and {rejected} rejected slot_unavailable",
            by_status == {"succeeded": args.hot_slots, "rejected/slot_unavailable": rejected}
            and outcome["confirmed_bookings"]
            == outcome["distinct_confirmed_starts"]
            == args.hot_slots,
            f"{by_status}; {outcome['confirmed_bookings']} confirmed bookings on "
            f"{outcome['distinct_confirmed_starts']} distinct starts",
        ),
        _target(
            "each slot won by its first-accepted request",
            outcome["slots_won_by_first_request"] == args.hot_slots,
            f"{outcome['slots_won_by_first_request']} of {args.hot_slots}",
        ),
        _target(
            f"all {total} terminal within {args.hot_target:g} s of the first send",
            ok and all_terminal_after <= args.hot_target,
            f"{all_terminal_after:.2f} s (sending took {sent_for:.2f} s; database: first accept "
            f"to last completion {stats['first_accept_to_last_completion_ms']} ms)",
        ),
        _target(
            "every request answered 202",
            result.error_count == 0 and result.status_counts == {"202": total},
            f"status {result.status_counts}, errors {result.errors or 0}",
        ),
    ]
    outcome["label"] = f"hot-provider {total} req c={args.hot_concurrency}"
    return outcome


def run_availability_cached(args: argparse.Namespace) -> Outcome:
    scenario = "availability-cached"
    with pipeline_stack(args, scenario, workers=True) as pipe:
        client = pipe.stack.client()
        log(f"seeding {args.availability_providers} providers (benchmarks.availability's mix)")
        ids = seed_providers(client, args.availability_providers)
        first, last = window(7, 7)
        checks = preflight(client, ids, first, last)  # also fills the cache
        client.close()
        cache = redis.Redis.from_url(pipe.redis_url)
        try:
            cached = sum(1 for _ in cache.scan_iter("booking:availability:answer:*", count=1000))
        finally:
            cache.close()
        log(f"{checks}; {cached} answers cached")
        target = loadgen.Target.parse(pipe.stack.base_url)
        auth = {"Authorization": f"Bearer {pipe.client_key}"}
        requests = [
            loadgen.encode_request(
                "GET", availability_path(i, first, last), target.host_header, auth
            )
            for i in ids
        ]
        rng = random.Random(args.seed)
        choose = rng.choice

        def factory() -> bytes:
            return choose(requests)

        watch = Watch(pipe, args.profile, scenario, profile_workers=False)
        warmup = max(args.warmup, 3.0)
        log(f"{scenario}: closed loop c={args.concurrency}, {warmup:g}s + {args.duration:g}s")
        watch.start(profile_delay=warmup)
        result = loadgen.closed_loop(
            pipe.stack.base_url + "/",
            factory,
            args.concurrency,
            args.duration,
            **_loadgen_kwargs(args, 200, warmup),
        )
        measured = watch.stop(result.requests + result.warmup_requests)
        outcome: Outcome = {
            "result": result.summary(),
            **measured,
            "window": {"from": str(first), "to": str(last)},
            "preflight": checks,
            "answers_cached_before_load": cached,
            "cpu_ms_per_request": cpu_ms_per_request(
                [measured["cpu"]], result.requests + result.warmup_requests, ["api", "redis"]
            ),
            "profile": watch.profiles(),
        }
    summary = outcome["result"]
    lat = summary["latency_ms"]
    outcome["targets"] = [
        _target(
            f">= {args.availability_rps_target:,.0f} req/s",
            summary["rps"] >= args.availability_rps_target,
            f"{summary['rps']:,.0f} req/s",
        ),
        _target(
            f"p99 <= {args.availability_p99_target:g} ms",
            lat["p99"] <= args.availability_p99_target,
            f"p99 {lat['p99']:.2f} ms",
        ),
        _target(
            "every answer 200",
            result.error_count == 0 and set(summary["status_counts"]) == {"200"},
            f"status {summary['status_counts']}, errors {summary['errors'] or 0}",
        ),
    ]
    outcome["label"] = f"availability-cached 7d c={args.concurrency}"
    return outcome


RUNNERS: dict[str, Callable[[argparse.Namespace], Outcome]] = {
    "accept-closed": lambda a: run_accept_closed(a, with_workers=False),
    "accept-closed-with-workers": lambda a: run_accept_closed(a, with_workers=True),
    "accept-open": lambda a: run_open(a, "accept-open", a.duration),
    "sustained": lambda a: run_open(a, "sustained", a.sustained_duration),
    "hot-provider": run_hot_provider,
    "availability-cached": run_availability_cached,
}


# ----------------------------------------------------------------------------- report


def table_rows(outcomes: Mapping[str, Outcome]) -> list[dict[str, Any]]:
    rows = []
    for name, outcome in outcomes.items():
        if "result" not in outcome:
            rows.append({"benchmark": name, "targets": f"ERROR {outcome.get('error', '?')}"})
            continue
        row = result_row(outcome["label"], outcome["result"])
        targets = outcome.get("targets", [])
        missed = [t for t in targets if not t["met"]]
        row["targets"] = f"{len(targets) - len(missed)}/{len(targets)} met"
        rows.append(row)
    columns = list(next((r for r in rows if "requests" in r), rows[0]).keys())
    return [{c: r.get(c, "") for c in columns} for r in rows]


def _top(d: Mapping[str, float], n: int) -> str:
    return ", ".join(f"{k} {v}%" for k, v in list(d.items())[:n])


def print_details(outcomes: Mapping[str, Outcome]) -> None:
    for name, outcome in outcomes.items():
        print(f"\n== {name}")
        if "error" in outcome:
            print(f"  ERROR: {outcome['error']}")
            continue
        for t in outcome.get("targets", []):
            print(f"  [{'MET ' if t['met'] else 'MISS'}] {t['target']}: {t['observed']}")
        stats = outcome.get("requests")
        if stats and name != "hot-provider":
            print(f"  requests by status: {stats['by_status']}")
        if stats and stats.get("accepted_to_completed_ms"):
            print(
                f"  accepted->completed (db, ms): {stats['accepted_to_completed_ms']}; "
                f"last accept->last completion {stats['last_accept_to_last_completion_ms']} ms"
            )
            print(f"  decision transactions: {stats['batches']}")
        if outcome.get("pile_up"):
            print(f"  pile-up without workers: {outcome['pile_up']}")
        if outcome.get("backlog_sparkline"):
            print(
                f"  backlog (t: pending in pg / wake-ups in redis): {outcome['backlog_sparkline']}"
            )
        if outcome.get("probe"):
            probe = outcome["probe"]
            print(
                f"  probe ({probe['rate_per_s']:g}/s) POST->terminal ms "
                f"{probe['post_to_terminal_ms']}; outcomes {probe['outcomes']}; "
                f"errors {probe['error_count']} {probe['errors'][:2] or ''}"
            )
        cpu = outcome.get("cpu", {})
        if cpu:
            print(
                f"  cpu % of one core over {cpu.get('seconds')}s: {cpu.get('process_cpu_pct')}, "
                f"machine busy {cpu.get('machine_busy_pct')}%"
            )
            if "unaccounted_pct" in cpu:
                print(f"  cpu used by other tenants of the machine: {cpu['unaccounted_pct']}%")
            if cpu.get("other_busy_processes"):
                print(f"  other processes on the machine: {cpu['other_busy_processes']}")
        drain_cpu = outcome.get("drain", {}).get("cpu")
        if drain_cpu:
            print(
                f"  cpu during the drain ({drain_cpu.get('seconds')}s): "
                f"{drain_cpu.get('process_cpu_pct')}"
            )
        if outcome.get("cpu_ms_per_request"):
            print(f"  cpu ms per request: {outcome['cpu_ms_per_request']}")
        db = outcome.get("database_activity")
        if db:
            print(f"  database: {db}")
        for role, prof in (outcome.get("profile") or {}).items():
            if "error" in prof:
                print(f"  profile {role}: {prof['error']}")
                continue
            print(
                f"  profile {role} ({prof['samples']} samples) by package: "
                f"{_top(prof['self_by_package_pct'], 8)}"
            )
            print(f"    self top: {_top(prof['self_top_pct'], 6)}")
            print(f"    file: {prof['file']}")


# ----------------------------------------------------------------------------- main


def machine_busy_pct(seconds: float) -> float:
    """Busy share of all cores over the next `seconds`."""

    def ticks() -> tuple[int, int]:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = values[3] + values[4]
        return sum(values[:8]) - idle, sum(values[:8])

    busy0, total0 = ticks()
    time.sleep(seconds)
    busy1, total1 = ticks()
    return 100.0 * (busy1 - busy0) / max(1, total1 - total0)


def wait_for_quiet(max_wait: float, threshold: float = 15.0) -> float:
    """Waits (up to `max_wait` s) until the machine is below `threshold`% busy for 3 s."""
    deadline = time.monotonic() + max_wait
    busy = machine_busy_pct(3.0)
    said = -math.inf
    while busy > threshold and time.monotonic() < deadline:
        if time.monotonic() - said > 60:
            log(f"machine {busy:.0f}% busy (other tenants); waiting for it to quiet down")
            said = time.monotonic()
        busy = machine_busy_pct(3.0)
    return round(busy, 1)


def _terminate(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.pipeline",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--scenario", default="all", help=f"comma-separated: {', '.join(SCENARIOS)}")
    p.add_argument("--duration", type=float, default=30.0, help="measured seconds (not sustained)")
    p.add_argument("--sustained-duration", type=float, default=60.0)
    p.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds first")
    p.add_argument("--rate", type=float, default=1000.0, help="open-loop bookings/s offered")
    p.add_argument("--concurrency", type=int, default=32, help="closed-loop connections")
    p.add_argument(
        "--providers", type=int, default=1000, help="providers booked (accept, sustained)"
    )
    p.add_argument("--probe-rate", type=float, default=5.0, help="end-to-end probes/s; 0 = off")
    p.add_argument("--probe-providers", type=int, default=20)
    p.add_argument("--hot-slots", type=int, default=100)
    p.add_argument("--hot-per-slot", type=int, default=20)
    p.add_argument("--hot-concurrency", type=int, default=32)
    p.add_argument("--availability-providers", type=int, default=100)
    p.add_argument("--drain-timeout", type=float, default=180.0, help="seconds to wait for it")
    p.add_argument("--drain-target", type=float, default=10.0)
    p.add_argument("--latency-target", type=float, default=500.0, help="sustained p99, ms")
    p.add_argument("--hot-target", type=float, default=5.0)
    p.add_argument("--availability-rps-target", type=float, default=10_000.0)
    p.add_argument("--availability-p99-target", type=float, default=15.0)
    p.add_argument("--api-workers", type=int, default=2)
    p.add_argument("--booking-workers", type=int, default=2)
    p.add_argument("--partitions", type=int, default=64, help="BOOKING_PARTITIONS")
    p.add_argument(
        "--redis-db",
        type=int,
        help="this run's own Redis database (default: the first empty one from 8 down)",
    )
    p.add_argument(
        "--reuse-redis-db", action="store_true", help="flush --redis-db even if it holds keys"
    )
    p.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a setting for every started process, e.g. DATABASE_POOL_SIZE=30",
    )
    p.add_argument(
        "--profile",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="py-spy the API workers and the booking workers during each scenario",
    )
    p.add_argument(
        "--git-rev",
        metavar="REV",
        help="run the code of this commit (exported; the working tree may be mid-change)",
    )
    p.add_argument(
        "--quiet-wait",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="before each scenario, wait up to this long for the machine to be mostly idle",
    )
    p.add_argument("--timeout", type=float, default=10.0, help="per request, seconds")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--keep-db", action="store_true", help="do not drop the databases")
    p.add_argument("--no-write", action="store_true", help="do not write the JSON results")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    chosen = list(SCENARIOS) if args.scenario == "all" else args.scenario.split(",")
    unknown = [s for s in chosen if s not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario {unknown}; choose from {', '.join(SCENARIOS)}")
    if any("=" not in item for item in args.env):
        parser.error("--env takes KEY=VALUE")
    if args.git_rev:  # pinned now, so every scenario runs the same commit
        found = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--verify", f"{args.git_rev}^{{commit}}"],
            capture_output=True,
            text=True,
            check=False,
        )
        if found.returncode != 0:
            parser.error(f"--git-rev {args.git_rev}: {found.stderr.strip()}")
        args.git_rev = found.stdout.strip()
    if args.redis_db is None:
        args.redis_db = pick_redis_db()
        if args.redis_db is None:
            parser.error("no empty Redis database found; name one with --redis-db")
    elif args.redis_db == 0:
        parser.error("Redis database 0 is shared; pick another --redis-db")
    elif not claim_redis_db(redis_url_for_db(args.redis_db)):
        keys = redis_dbsize(redis_url_for_db(args.redis_db))
        if not args.reuse_redis_db:
            parser.error(
                f"Redis database {args.redis_db} holds {keys} keys (someone else's?); pick "
                "another --redis-db, or pass --reuse-redis-db if it is this benchmark's own"
            )
        redis_flush_own_db(redis_url_for_db(args.redis_db))
        claim_redis_db(redis_url_for_db(args.redis_db))
    args.redis_url = redis_url_for_db(args.redis_db)
    log(f"using Redis database {args.redis_db} ({args.redis_url})")
    signal.signal(signal.SIGTERM, _terminate)

    machine = machine_info()
    outcomes: dict[str, Outcome] = {}
    interrupted = False
    try:
        for name in chosen:
            log(f"=== scenario {name}")
            idle = wait_for_quiet(args.quiet_wait) if args.quiet_wait else None
            started = time.time()
            try:
                outcome = RUNNERS[name](args)
            except Exception as exc:
                log(f"scenario {name} failed:\n{traceback.format_exc()}")
                outcome = {"error": repr(exc)}
            outcome["started_at"] = datetime.fromtimestamp(started, UTC).isoformat()
            outcome["code"] = args.git_rev or f"working tree ({machine_info().get('git_commit')})"
            outcome["machine_busy_before_pct"] = idle
            outcomes[name] = outcome
    except KeyboardInterrupt:
        interrupted = True
        log("interrupted; everything started was stopped and the database dropped")

    with contextlib.suppress(Exception):
        flush_claimed_redis_db(args.redis_url, reclaim=False)  # also drops the mark
    if outcomes:
        print()
        print_table(table_rows(outcomes))
        print_details(outcomes)
    document = {
        "benchmark": NAME,
        "started_by": " ".join(
            [sys.executable.split("/")[-1], "-m", "benchmarks.pipeline", *(argv or sys.argv[1:])]
        ),
        "parameters": {k: v for k, v in vars(args).items() if k not in {"no_write", "keep_db"}},
        "machine": machine,
        "interrupted": interrupted,
        "scenarios": outcomes,
    }
    if outcomes and not args.no_write:
        print(f"\nresults: {write_results(NAME, document)}")
    if interrupted:
        return 130
    failed = any("error" in o or not all(t["met"] for t in o["targets"]) for o in outcomes.values())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
