"""Overhead of the operations features on the accept path: metrics, JSON logs, request ids and
rate limits on, against the code without them.

Variants, each a fresh stack (database, `booking api --workers N`, no booking workers: the pure
accept path, as `pipeline.py`'s accept-closed), run interleaved, rotating the order each round so
a machine that gets busier or quieter over the run does not favour one:

  baseline    the code of --baseline (default: the merge base with main), which has none of
              them (and remembers API keys 60 s)
  ops         this tree: /metrics and per-route HTTP metrics, JSON logs, X-Request-ID, the
              checkout check for cut connections, keys remembered 0.5 s; RATE_LIMIT_PER_MINUTE=0
  ops+limits  the same with RATE_LIMIT_PER_MINUTE=1000000000 (every request counted in Redis)
  ops+keys60  ops with API_KEY_CACHE_SECONDS=60: what remembering keys 0.5 s costs

    python -m benchmarks.operations --redis-url redis://127.0.0.1:6404/2 --rounds 3
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
from typing import Any

from benchmarks import loadgen
from benchmarks.common import (
    REPO,
    _proc_cpu_seconds,
    log,
    machine_info,
    print_table,
    write_results,
)
from benchmarks.pipeline import (
    BookingStream,
    first_slot,
    pipeline_stack,
    seed_open_providers,
)

VARIANTS: dict[str, dict[str, Any]] = {
    "baseline": {"git_rev": "BASELINE", "env": []},
    "ops": {"git_rev": None, "env": []},
    "ops+limits": {"git_rev": None, "env": ["RATE_LIMIT_PER_MINUTE=1000000000"]},
    "ops+keys60": {"git_rev": None, "env": ["API_KEY_CACHE_SECONDS=60"]},
}


def merge_base() -> str:
    return subprocess.run(
        ["git", "-C", str(REPO), "merge-base", "HEAD", "main"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def run_variant(args: argparse.Namespace, name: str, baseline: str) -> dict[str, Any]:
    variant = VARIANTS[name]
    stack_args = argparse.Namespace(
        redis_url=args.redis_url,
        partitions=64,
        env=[*variant["env"], "LOG_FORMAT=json"],
        api_workers=args.api_workers,
        keep_db=False,
        git_rev=baseline if variant["git_rev"] == "BASELINE" else None,
        booking_workers=0,
    )
    with pipeline_stack(stack_args, f"ops_{name.replace('+', '_')}", workers=False) as pipe:
        providers = seed_open_providers(pipe, args.providers)
        target = loadgen.Target.parse(pipe.stack.base_url)
        stream = BookingStream(target.host_header, pipe.client_key, providers, first_slot())
        api_pids = pipe.api_worker_pids()
        cpu_before = sum(_proc_cpu_seconds(pid) or 0.0 for pid in api_pids)
        result = loadgen.closed_loop(
            pipe.stack.base_url + "/",
            stream,
            args.concurrency,
            args.duration,
            warmup=args.warmup,
            timeout=30.0,
            expect_status={202},
        )
        cpu = sum(_proc_cpu_seconds(pid) or 0.0 for pid in api_pids) - cpu_before
        answered = result.requests + result.warmup_requests
        summary = result.summary()
        # CPU the API processes spent per answer: much less sensitive than req/s to what the
        # machine's other tenants do.
        summary["api_cpu_ms_per_request"] = round(cpu * 1000 / max(1, answered), 3)
        log(f"{name}: {result.line()} | API CPU {summary['api_cpu_ms_per_request']} ms/request")
        return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--redis-url", required=True, help="a Redis database of this run's own")
    parser.add_argument("--baseline", default=None, help="git revision (default: merge base)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--providers", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--duration", type=float, default=12.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--api-workers", type=int, default=2)
    args = parser.parse_args()
    baseline = args.baseline or merge_base()
    names = [n for n in args.variants.split(",") if n]
    runs: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
    for round_no in range(args.rounds):
        order = names[round_no % len(names) :] + names[: round_no % len(names)]
        log(f"round {round_no + 1}/{args.rounds}: {', '.join(order)}")
        for name in order:
            runs[name].append(run_variant(args, name, baseline))
    base_rps = statistics.median(r["rps"] for r in runs["baseline"]) if "baseline" in runs else 0
    base_cpu = (
        statistics.median(r["api_cpu_ms_per_request"] for r in runs["baseline"])
        if "baseline" in runs
        else 0
    )
    rows = []
    for name in names:
        rps = [r["rps"] for r in runs[name]]
        median = statistics.median(rps)
        cpu = statistics.median(r["api_cpu_ms_per_request"] for r in runs[name])
        errors = sum(r["error_count"] for r in runs[name])
        rows.append(
            {
                "variant": name,
                "median req/s": round(median),
                "runs req/s": " ".join(f"{x:,.0f}" for x in rps),
                "vs baseline": f"{(median / base_rps - 1) * 100:+.1f}%" if base_rps else "-",
                "API CPU ms/req": cpu,
                "CPU vs baseline": f"{(cpu / base_cpu - 1) * 100:+.1f}%" if base_cpu else "-",
                "p50 ms": statistics.median(r["latency_ms"]["p50"] for r in runs[name]),
                "p99 ms": statistics.median(r["latency_ms"]["p99"] for r in runs[name]),
                "errors": errors,
            }
        )
    print_table(rows)
    path = write_results(
        "operations",
        {
            "baseline": baseline,
            "machine": machine_info(),
            "shared_machine": True,
            "args": vars(args),
            "rows": rows,
            "runs": runs,
        },
    )
    log(f"results in {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
