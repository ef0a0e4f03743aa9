"""Fairness benchmark: another key's plain reads while heavy uncached availability runs.

Four clients (four keys, so the per-key cap does not shield anyone) each loop: PATCH their
provider (moving its version, so the next answer is uncached), then GET 62 days of its
availability: 1-minute slots, open 24 hours, 89,280 slots. Meanwhile an open loop of another
key's `GET /v1/providers/{id}` (20/s) and of `/health/live` (10/s) is measured, latency from
the scheduled send. First the same open loops run with no heavy load: the floor.

    python -m benchmarks.fairness                            # the working tree
    python -m benchmarks.fairness --git-rev 1516607          # a commit (the baseline)
    python -m benchmarks.fairness --env AVAILABILITY_MAX_SLOTS=10000   # default cap: 422s

By default the server runs with AVAILABILITY_MAX_SLOTS=100000 so the heavy answers are
computed and sent in full (6.4 MB each), as in the issue's reproduction.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from benchmarks import loadgen
from benchmarks.common import (
    booking_stack,
    create_key,
    log,
    machine_info,
    print_table,
    result_row,
    write_results,
)

NAME = "fairness"
EVERY_DAY = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]


def heavy_provider(i: int) -> dict[str, Any]:
    return {
        "name": f"Heavy {i}",
        "timezone": "UTC",
        "slot_minutes": 1,
        "weekly_schedule": {d: [{"start": "00:00", "end": "24:00"}] for d in EVERY_DAY},
    }


class HeavyClient(threading.Thread):
    """PATCH (new version), then GET 62 days uncached; again until told to stop."""

    def __init__(self, base_url: str, admin: str, key: str, provider: str, days: int) -> None:
        super().__init__(daemon=True)
        port = int(base_url.rsplit(":", 1)[1])
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self.admin, self.key, self.provider = admin, key, provider
        first = datetime.now(UTC).date() + timedelta(days=1)
        self.query = f"from={first}&to={first + timedelta(days=days - 1)}"
        self.stop_at = 0.0
        self.statuses: Counter[int] = Counter()
        self.latencies: list[float] = []
        self.bytes = 0
        self.n = 0

    def _call(self, method: str, path: str, key: str, body: bytes | None = None) -> tuple[int, int]:
        headers = {"Authorization": f"Bearer {key}"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        self.conn.request(method, path, body=body, headers=headers)
        response = self.conn.getresponse()
        data = response.read()
        return response.status, len(data)

    def run(self) -> None:
        while time.monotonic() < self.stop_at:
            self.n += 1
            body = json.dumps({"name": f"Heavy {self.n}"}).encode()
            self._call("PATCH", f"/v1/providers/{self.provider}", self.admin, body)
            started = time.monotonic()
            status, size = self._call(
                "GET", f"/v1/providers/{self.provider}/availability?{self.query}", self.key
            )
            self.latencies.append(time.monotonic() - started)
            self.statuses[status] += 1
            self.bytes = max(self.bytes, size)
            if status == 429:
                time.sleep(1)  # as Retry-After says


async def measure(base_url: str, key: str, provider: str, seconds: float) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {key}"}
    get = loadgen.encode_request("GET", f"/v1/providers/{provider}", "127.0.0.1", headers)
    live = loadgen.encode_request("GET", "/health/live", "127.0.0.1")
    reads, health = await asyncio.gather(
        loadgen.open_loop_async(base_url + "/", lambda: get, 20, seconds, timeout=30),
        loadgen.open_loop_async(base_url + "/", lambda: live, 10, seconds, timeout=30),
    )
    return {"provider_get": reads.summary(), "health_live": health.summary()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--heavy", type=int, default=4, help="concurrent heavy clients")
    parser.add_argument("--days", type=int, default=62)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--git-rev", help="serve this commit's code instead of the working tree")
    parser.add_argument("--env", action="append", default=[], help="KEY=VALUE for the server")
    parser.add_argument("--api-workers", type=int, default=1)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)

    extra = {"AVAILABILITY_MAX_SLOTS": "100000", "DATABASE_POOL_SIZE": "5"}
    extra.update(dict(item.split("=", 1) for item in args.env))
    with booking_stack(NAME, args.api_workers, extra_env=extra, git_rev=args.git_rev) as stack:
        admin = stack.client()
        status, _, light = admin.request(
            "POST",
            "/v1/providers",
            {"name": "Light", "timezone": "UTC", "weekly_schedule": {"monday": []}},
        )
        assert status == 201, light
        heavy_ids = []
        for i in range(args.heavy):
            status, _, body = admin.request("POST", "/v1/providers", heavy_provider(i))
            assert status == 201, body
            heavy_ids.append(body["id"])
        assert stack.server is not None
        cwd = stack.server.process.log.parent
        other_key = create_key(stack.env, cwd, "other", "client")
        heavy_keys = [create_key(stack.env, cwd, f"heavy-{i}", "client") for i in range(args.heavy)]

        log("floor: no heavy load")
        floor = asyncio.run(measure(stack.base_url, other_key, light["id"], args.duration / 2))
        clients = [
            HeavyClient(stack.base_url, stack.admin_key, k, p, args.days)
            for k, p in zip(heavy_keys, heavy_ids, strict=True)
        ]
        for client in clients:
            client.stop_at = time.monotonic() + args.duration + 3
            client.start()
        time.sleep(2)  # the heavy loops are running
        log(f"under {args.heavy} heavy uncached availability loops")
        loaded = asyncio.run(measure(stack.base_url, other_key, light["id"], args.duration))
        for client in clients:
            client.join(180)

    heavy_statuses: Counter[int] = Counter()
    heavy_latencies: list[float] = []
    for client in clients:
        heavy_statuses.update(client.statuses)
        heavy_latencies.extend(client.latencies)
    heavy_latencies.sort()
    rows = [
        result_row("floor: GET provider (other key)", floor["provider_get"]),
        result_row("floor: /health/live", floor["health_live"]),
        result_row(f"{args.heavy} heavy: GET provider (other key)", loaded["provider_get"]),
        result_row(f"{args.heavy} heavy: /health/live", loaded["health_live"]),
    ]
    print_table(rows)
    heavy_summary = {
        "requests": len(heavy_latencies),
        "statuses": {str(k): v for k, v in sorted(heavy_statuses.items())},
        "p50_s": heavy_latencies[len(heavy_latencies) // 2] if heavy_latencies else None,
        "max_s": heavy_latencies[-1] if heavy_latencies else None,
        "largest_answer_bytes": max(c.bytes for c in clients),
    }
    print(f"heavy requests: {heavy_summary}")
    if not args.no_write:
        path = write_results(
            NAME,
            {
                "benchmark": NAME,
                "code": stack.code,
                "settings": vars(args) | {"server_env": extra},
                "machine": machine_info(),
                "floor": floor,
                "loaded": loaded,
                "heavy": heavy_summary,
                "table": rows,
            },
        )
        log(f"results written to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
