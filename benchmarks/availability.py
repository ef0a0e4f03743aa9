"""Availability benchmark: GET /v1/providers/{id}/availability over 7 days, random provider.

Seeds providers through the API (varied zones, Mon-Fri 09:00-17:00 with some split days,
30-minute slots), checks every provider's answer once, then drives a closed loop (default 32
connections for 30 s after a short unmeasured warm-up) or, with --rate, an open loop. Every
answer must be 200; anything else is counted as an error.

    python -m benchmarks.availability                       # fresh database + booking api
    python -m benchmarks.availability --url http://127.0.0.1:8000 --admin-key KEY
    python -m benchmarks.availability --profile 10          # py-spy the API workers for 10 s
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks import loadgen
from benchmarks.common import (
    RESULTS_DIR,
    CpuSampler,
    HttpClient,
    Stack,
    booking_stack,
    database_stats,
    log,
    machine_info,
    print_table,
    result_row,
    start_py_spy,
    stats_delta,
    summarize_speedscope,
    write_results,
)

NAME = "availability"
ZONES = [
    "America/New_York",
    "Europe/Berlin",
    "Asia/Tokyo",
    "America/Los_Angeles",
    "Europe/London",
    "Australia/Sydney",
    "Asia/Kolkata",
    "America/Sao_Paulo",
]
WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday"]


def _iv(start: str, end: str) -> dict[str, str]:
    return {"start": start, "end": end}


def provider_body(i: int) -> dict[str, Any]:
    """Provider `i`: Mon-Fri 09:00-17:00, with a split or extra day for three in four."""
    week: dict[str, list[dict[str, str]]] = {day: [_iv("09:00", "17:00")] for day in WEEKDAYS}
    variant = i % 4
    if variant == 1:  # lunch break on Monday and Wednesday
        week["monday"] = week["wednesday"] = [_iv("09:00", "12:00"), _iv("13:00", "17:00")]
    elif variant == 2:  # long split Tuesday/Thursday, Saturday morning
        week["tuesday"] = week["thursday"] = [_iv("08:00", "12:00"), _iv("14:00", "18:30")]
        week["saturday"] = [_iv("10:00", "14:00")]
    elif variant == 3:  # three blocks on Wednesday, short Friday
        week["wednesday"] = [_iv("09:00", "12:00"), _iv("12:30", "16:00"), _iv("17:00", "20:00")]
        week["friday"] = [_iv("09:00", "13:00")]
    return {
        "name": f"Bench provider {i:03d}",
        "timezone": ZONES[i % len(ZONES)],
        "slot_minutes": 30,
        "weekly_schedule": week,
    }


def seed_providers(client: HttpClient, count: int) -> list[str]:
    ids = []
    for i in range(count):
        status, _, body = client.request("POST", "/v1/providers", provider_body(i))
        if status != 201:
            raise RuntimeError(f"POST /v1/providers answered {status}: {body}")
        ids.append(body["id"])
    return ids


def window(offset_days: int, days: int) -> tuple[date, date]:
    first = datetime.now(UTC).date() + timedelta(days=offset_days)
    return first, first + timedelta(days=days - 1)


def availability_path(provider_id: str, first: date, last: date) -> str:
    return f"/v1/providers/{provider_id}/availability?from={first}&to={last}"


def preflight(client: HttpClient, ids: list[str], first: date, last: date) -> dict[str, Any]:
    """One request per provider: all 200, and slots are really computed (not an empty answer)."""
    slots = []
    started = time.perf_counter()
    for ident in ids:
        status, _, body = client.request("GET", availability_path(ident, first, last))
        if status != 200:
            raise RuntimeError(f"availability of {ident} answered {status}: {body}")
        slots.append(len(body["slots"]))
    elapsed = time.perf_counter() - started
    if not all(slots):
        raise RuntimeError("some providers have no slots in the window; the benchmark would lie")
    return {
        "providers": len(ids),
        "slots_per_answer_min": min(slots),
        "slots_per_answer_mean": round(sum(slots) / len(slots), 1),
        "slots_per_answer_max": max(slots),
        "sequential_ms_per_request": round(elapsed / len(ids) * 1000, 2),
    }


def sampler_requests(result: loadgen.Result) -> int:
    """Requests the server handled while the database counters were sampled (with warm-up)."""
    return result.requests + result.warmup_requests + sum(result.errors.values())


def run(args: argparse.Namespace, stack: Stack) -> dict[str, Any]:
    client = stack.client()
    log(f"seeding {args.providers} providers")
    t0 = time.perf_counter()
    ids = seed_providers(client, args.providers)
    seed_s = time.perf_counter() - t0
    first, last = window(args.offset_days, args.days)
    checks = preflight(client, ids, first, last)
    client.close()
    log(f"seeded in {seed_s:.1f}s; window {first}..{last}; {checks}")

    target = loadgen.Target.parse(stack.base_url)
    auth = {"Authorization": f"Bearer {stack.admin_key}"}
    requests = [
        loadgen.encode_request("GET", availability_path(i, first, last), target.host_header, auth)
        for i in ids
    ]
    rng = random.Random(args.seed)
    choose = rng.choice

    def factory() -> bytes:
        return choose(requests)

    profiler = None
    profile_path: Path | None = None
    if args.profile:
        if stack.server is None:
            log("--profile needs the server started here (not --url); skipped")
        else:
            RESULTS_DIR.mkdir(parents=True, exist_ok=True)
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
            profile_path = RESULTS_DIR / f"{NAME}-{stamp}.speedscope.json"

    url = stack.base_url + "/"
    mode = f"open loop at {args.rate}/s" if args.rate else f"closed loop, {args.concurrency} conns"
    log(f"{mode}: {args.warmup:g}s warm-up + {args.duration:g}s measured")
    common = {
        "warmup": args.warmup,
        "timeout": args.timeout,
        "expect_status": {200},
        "processes": args.processes,
    }
    if profile_path is not None:
        # py-spy starts now and waits out the warm-up by recording a little longer
        assert stack.server is not None
        seconds = int(min(args.profile, args.duration) + args.warmup)
        profiler = start_py_spy(stack.server.process.pid, seconds, profile_path)
    watched = {}
    if stack.server is not None:
        watched = {f"api_worker_{pid}": pid for pid in stack.server.worker_pids()}
    sampler = CpuSampler(watched, groups=["postgres"])
    db_before = database_stats(stack.database) if stack.database else {}
    sampler.start()
    if args.rate:
        result = loadgen.open_loop(url, factory, args.rate, args.duration, **common)
    else:
        result = loadgen.closed_loop(url, factory, args.concurrency, args.duration, **common)
    cpu = sampler.stop()
    db: dict[str, Any] = (
        stats_delta(db_before, database_stats(stack.database)) if stack.database else {}
    )
    if db and sampler_requests(result):
        n = sampler_requests(result)
        db["transactions_per_request"] = round((db["xact_commit"] + db["xact_rollback"]) / n, 2)
    cpu["process_cpu_pct"]["load_generator"] = result.summary()["generator_cpu_pct"]

    profile_summary = None
    if profiler is not None and profile_path is not None:
        _, err = profiler.communicate(timeout=60)
        if profile_path.exists():
            profile_summary = summarize_speedscope(profile_path)
            profile_summary["file"] = str(profile_path)
        else:
            log(f"py-spy wrote nothing: {err.decode(errors='replace')[-500:]}")

    return {
        "server_code": None if stack.server is None else stack.code,
        "seed_seconds": round(seed_s, 2),
        "window": {"from": str(first), "to": str(last)},
        "preflight": checks,
        "result": result.summary(),
        "cpu": cpu,
        "database_activity": db,
        "profile": profile_summary,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.availability",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--duration", type=float, default=30.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=3.0, help="unmeasured seconds first")
    parser.add_argument("--concurrency", type=int, default=32, help="closed-loop connections")
    parser.add_argument("--rate", type=float, help="open loop at this many requests/s instead")
    parser.add_argument("--providers", type=int, default=100)
    parser.add_argument("--days", type=int, default=7, help="days per request (from..to)")
    parser.add_argument("--offset-days", type=int, default=7, help="`from` is today + this")
    parser.add_argument("--api-workers", type=int, default=2)
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra setting for the started server, e.g. DATABASE_POOL_SIZE=20",
    )
    parser.add_argument(
        "--git-rev",
        metavar="REV",
        help="serve the code of this commit (e.g. a baseline), not the work tree",
    )
    parser.add_argument("--url", help="benchmark this running server instead of starting one")
    parser.add_argument("--admin-key", help="admin API key for --url")
    parser.add_argument("--processes", type=int, default=1, help="load generator processes")
    parser.add_argument("--timeout", type=float, default=10.0, help="per request, seconds")
    parser.add_argument("--seed", type=int, default=1, help="random provider choice")
    parser.add_argument(
        "--profile",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="py-spy record the API workers for this long (speedscope file)",
    )
    parser.add_argument("--keep-db", action="store_true", help="do not drop the database")
    parser.add_argument("--no-write", action="store_true", help="do not write the JSON results")
    args = parser.parse_args(argv)
    if args.url and not args.admin_key:
        parser.error("--url needs --admin-key")
    if any("=" not in item for item in args.env):
        parser.error("--env takes KEY=VALUE")

    machine = machine_info()
    if args.url:
        stack = Stack(args.url.rstrip("/"), args.admin_key)
        outcome = run(args, stack)
    else:
        extra = dict(item.split("=", 1) for item in args.env)
        with booking_stack(
            NAME,
            api_workers=args.api_workers,
            keep_database=args.keep_db,
            extra_env=extra,
            git_rev=args.git_rev,
        ) as stack:
            outcome = run(args, stack)

    summary = outcome["result"]
    label = (
        f"availability 7d c={args.concurrency}"
        if not args.rate
        else f"availability 7d r={args.rate:g}/s"
    )
    label = label.replace("7d", f"{args.days}d")
    print()
    print_table([result_row(label, summary)])
    print(f"status counts: {summary['status_counts']}  errors: {summary['errors'] or 0}")
    print(f"cpu during the run (% of one core): {outcome['cpu']}")
    if outcome["database_activity"]:
        print(f"database activity during the run: {outcome['database_activity']}")
    if outcome["profile"]:
        prof = outcome["profile"]
        print(
            f"profile ({prof['samples']} samples, self time by package): "
            f"{prof['self_by_package_pct']}"
        )
        print(f"profile file: {prof['file']}")
    document = {
        "benchmark": NAME,
        "started_by": " ".join(
            [
                sys.executable.split("/")[-1],
                "-m",
                "benchmarks.availability",
                *(argv if argv is not None else sys.argv[1:]),
            ]
        ),
        "parameters": {
            k: v for k, v in vars(args).items() if k not in {"admin_key", "no_write", "keep_db"}
        },
        "server": {
            "external": bool(args.url),
            "api_workers": None if args.url else args.api_workers,
            "env": args.env,
        },
        "machine": machine,
        **outcome,
    }
    if not args.no_write:
        path = write_results(NAME, document)
        print(f"results: {path}")
    return 0 if summary["error_count"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
