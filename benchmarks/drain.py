"""How fast one `booking worker` decides a backlog spread over many providers.

Accepts `--requests` bookings over `--providers` providers with no worker running, then starts
one worker and times how long it takes until nothing is pending, with the CPU it and
PostgreSQL used per request.

    python -m benchmarks.drain --providers 1000 --requests 2000
"""

from __future__ import annotations

import argparse
import itertools
import json
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

from benchmarks import common, loadgen
from benchmarks.common import redis_url_for_db
from benchmarks.pipeline import flush_claimed_redis_db, pick_redis_db
from tests.servers import start_booking

WEEK = {
    day: [{"start": "00:00", "end": "24:00"}]
    for day in ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--providers", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args()

    db = pick_redis_db()  # an empty database of the shared server, never 0 or 11-15
    if db is None:
        raise SystemExit("no empty Redis database among 1-8 on 127.0.0.1:6379")
    redis_url = redis_url_for_db(db)
    workdir = Path(tempfile.mkdtemp(prefix="bench-drain-"))
    extra = {"REDIS_URL": redis_url, "LOG_LEVEL": "INFO"}
    try:
        return _drain(args, redis_url, workdir, extra)
    finally:
        flush_claimed_redis_db(redis_url, reclaim=False)


def _drain(args: argparse.Namespace, redis_url: str, workdir: Path, extra: dict[str, str]) -> int:
    with common.booking_stack("drain", api_workers=2, extra_env=extra) as stack:
        admin = stack.client(stack.admin_key)
        providers = [
            admin.request("POST", "/v1/providers", {"timezone": "UTC", "weekly_schedule": WEEK})[2][
                "id"
            ]
            for _ in range(args.providers)
        ]
        client_key = common.create_key(stack.env, workdir, name="drain", role="client")
        host = stack.base_url.removeprefix("http://")
        base = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=2)
        counter = itertools.count()

        def booking() -> bytes:
            n = next(counter)
            start = base + timedelta(minutes=30 * (n // args.providers))
            body = {"provider_id": providers[n % args.providers], "start": start.isoformat()}
            headers = {"Authorization": f"Bearer {client_key}", "Content-Type": "application/json"}
            return loadgen.encode_request(
                "POST", "/v1/bookings", host, headers, json.dumps(body).encode()
            )

        sent = 0
        while sent < args.requests:
            result = loadgen.closed_loop(
                stack.base_url + "/", booking, concurrency=32, duration=1.0, expect_status={202}
            )
            sent += int(result.summary()["requests"])
        assert stack.database is not None
        url = stack.database.url.replace("+psycopg", "")

        def pending() -> int:
            with psycopg.connect(url) as connection:
                row = connection.execute(
                    "SELECT count(*) FROM booking_requests WHERE status = 'pending'"
                ).fetchone()
            return int(row[0]) if row else 0

        backlog = pending()
        worker = start_booking(["worker"], stack.env, workdir / "worker.log", workdir)
        try:
            worker.wait_for_log(" ready.")
            sampler = common.CpuSampler({"worker": worker.pid}, groups=["postgres"])
            sampler.start()
            started = time.monotonic()
            while pending() and time.monotonic() - started < args.timeout:
                time.sleep(0.05)
            elapsed = time.monotonic() - started
            cpu = sampler.stop()
            left = pending()
        finally:
            worker.stop(timeout=30)
    per_request = {
        name: round(10 * pct * cpu["seconds"] / max(backlog, 1), 3)
        for name, pct in cpu["process_cpu_pct"].items()
    }
    row = {
        "backlog": backlog,
        "providers": args.providers,
        "seconds": round(elapsed, 2),
        "decided_per_second": round((backlog - left) / elapsed, 1),
        "left_pending": left,
        "cpu_ms_per_request": per_request,
        "machine_busy_pct": cpu.get("machine_busy_pct"),
    }
    print(json.dumps(row, indent=1))
    common.write_results("drain", {"parameters": vars(args), "result": row})
    return 0 if left == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
