"""Does the API's memory stay flat as it sees more providers and dates? RSS at 20k vs 200k requests.

`booking api` (one worker process) over 10,000 providers: `POST /v1/bookings` for a random
provider on a random date of the coming year (nine in ten at 03:00, outside the hours, so
they are refused with a 422 after the provider's hours for that date were looked up and kept;
one in ten accepted), and `GET .../availability` for a random provider and date. The RSS of
the API's processes is read after 20,000 requests and after 200,000; the target is a ratio
within 1.10.

    python -m benchmarks.api_memory --requests 200000
"""

from __future__ import annotations

import argparse
import random
import tempfile
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import psycopg

from benchmarks import common, datagrowth, loadgen
from tests.servers import start_api


def rss_kib(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200_000)
    parser.add_argument("--first", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()

    db = common.create_database("api_memory")
    psy = common.database_url_psycopg(db)
    workdir = Path(tempfile.mkdtemp(prefix="bench-api-memory-"))
    env = common.service_env(db.url, {"LOG_LEVEL": "ERROR", "DATABASE_POOL_SIZE": "8"})
    report: dict[str, Any] = {"requests": args.requests, "first": args.first}
    try:
        common.run_booking(["migrate"], env, workdir)
        with psycopg.connect(psy, autocommit=True) as conn:
            datagrowth.seed_small(conn)
            providers = [str(r[0]) for r in conn.execute("SELECT id FROM providers")]
        key = common.create_key(env, workdir, "memory", "client")
        server = start_api(env, workdir / "api.log", 1, cwd=workdir)
        host = f"127.0.0.1:{server.port}"
        rng = random.Random(3)
        today = date.today()
        headers = {"Authorization": f"Bearer {key}"}

        def factory() -> bytes:
            provider = rng.choice(providers)
            day = today + timedelta(days=rng.randint(1, 360))
            if rng.random() < 0.25:
                path = f"/v1/providers/{provider}/availability?date={day.isoformat()}"
                return loadgen.encode_request("GET", path, host, headers=headers)
            hour = "03:00" if rng.random() < 0.9 else f"{rng.randint(9, 16):02d}:00"
            body = {"provider_id": provider, "start": f"{day.isoformat()}T{hour}:00+00:00"}
            return loadgen.encode_request("POST", "/v1/bookings", host, headers=headers, body=body)

        done = 0
        checkpoints: list[dict[str, Any]] = []
        statuses: dict[int, int] = {}
        try:
            for target in (args.first, args.requests):
                while done < target:
                    result = loadgen.closed_loop(
                        server.base_url + "/", factory, args.concurrency, 10
                    )
                    done += result.requests
                    for status, n in result.summary()["status_counts"].items():
                        statuses[int(status)] = statuses.get(int(status), 0) + n
                pids = [server.process.pid, *server.worker_pids()]
                checkpoints.append({"requests": done, "rss_kib": rss_kib(pids)})
                common.log(
                    f"after {done:,} requests: RSS {checkpoints[-1]['rss_kib'] / 1024:.1f} MiB"
                )
        finally:
            server.stop()
        ratio = checkpoints[-1]["rss_kib"] / checkpoints[0]["rss_kib"]
        report.update({"checkpoints": checkpoints, "ratio": round(ratio, 3), "statuses": statuses})
        common.log(f"RSS ratio {ratio:.3f} (target <= 1.10); answers {statuses}")
        path = common.write_results("api_memory", report)
        common.log(f"results in {path}")
        return 0 if ratio <= 1.10 else 1
    finally:
        common.drop_database(db)


if __name__ == "__main__":
    raise SystemExit(main())
