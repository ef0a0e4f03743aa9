"""Every Prometheus metric the service reports, defined once so names never drift.

Processes that share a port (the API's several workers) set PROMETHEUS_MULTIPROC_DIR before
this module is imported; prometheus-client then writes samples to files there and one
collector reads them all. Labels are kept to small, fixed sets.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    start_http_server,
)
from prometheus_client import multiprocess as _multiprocess
from redis.asyncio import Redis
from redis.exceptions import RedisError

from domain.model import BookingRequest
from domain.partitions import partition_queue
from infra.redis_trouble import OccasionalWarning

log = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# Seconds from acceptance to a terminal status, and from a decision to a receiver's 2xx.
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)

BOOKING_REQUESTS = Counter(
    "booking_requests",
    "Booking requests by kind and outcome (accepted, succeeded, rejected, failed).",
    ["kind", "outcome"],
)
BOOKING_REQUEST_LATENCY = Histogram(
    "booking_request_latency_seconds",
    "From a request's acceptance to its terminal status.",
    buckets=_LATENCY_BUCKETS,
)
BOOKING_QUEUE_DEPTH = Gauge(
    "booking_queue_depth",
    "Wake-ups waiting on each booking partition's queue.",
    ["partition"],
    # Read from Redis (LLEN) by whichever API process is scraped; the latest reading wins,
    # so a partition that drained is not held up by an older, larger reading of another process.
    multiprocess_mode="mostrecent",
)
BOOKING_ATTEMPTS = Counter(
    "booking_processing_attempts",
    "Batches a worker started deciding (each counts an attempt at its requests).",
)
BOOKING_ATTEMPT_FAILURES = Counter(
    "booking_processing_failures",
    "Batches that raised before committing; their requests are tried again.",
)
SWEEP_REENQUEUED = Counter(
    "booking_sweep_reenqueued",
    "Wake-ups the scheduler enqueued again for requests still pending.",
)
OWNERSHIP_CHANGES = Counter(
    "booking_partition_ownership_changes",
    "Partitions this worker started or stopped consuming after a membership change.",
    ["change"],  # added, removed
)
OWNED_PARTITIONS = Gauge(
    "booking_owned_partitions",
    "Booking partitions this worker consumes now.",
    multiprocess_mode="livesum",
)
WEBHOOK_DELIVERIES = Counter(
    "webhook_deliveries",
    "Webhook delivery attempts by outcome (succeeded, retrying, failed, refused).",
    ["outcome"],
)
WEBHOOK_DELIVERY_LATENCY = Histogram(
    "webhook_delivery_latency_seconds",
    "From the decision's commit to the receiver's 2xx answer.",
    buckets=_LATENCY_BUCKETS,
)
AVAILABILITY_CACHE = Counter(
    "availability_cache",
    "Availability answers served from the cache (hit) or computed (miss).",
    ["result"],
)
AVAILABILITY_CACHE_WRITTEN_BYTES = Counter(
    "availability_cache_written_bytes",
    "Bytes of availability entries written to the cache Redis (see `booking cache-stats`).",
)
HTTP_REQUESTS = Counter(
    "http_requests",
    "HTTP requests by method, route template and status code.",
    ["method", "route", "status"],
)
HTTP_REQUEST_DURATION = Histogram(
    "http_request_duration_seconds",
    "HTTP request handling time by method and route template.",
    ["method", "route"],
)
RATE_LIMITED = Counter(
    "http_rate_limited",
    "Requests refused with 429 because their API key was over its limit.",
)


# -- recording ----------------------------------------------------------------------------------


def count_accepted(request: BookingRequest) -> None:
    BOOKING_REQUESTS.labels(request.kind.value, "accepted").inc()


def record_http_request(method: str, route: str, status: int, seconds: float) -> None:
    HTTP_REQUESTS.labels(method, route, str(status)).inc()
    HTTP_REQUEST_DURATION.labels(method, route).observe(seconds)


_depth_unknown = OccasionalWarning(log, "queue depth not reported, Redis unavailable")


async def read_queue_depths(redis: Redis, partitions: int) -> None:
    """BOOKING_QUEUE_DEPTH of every partition from Redis, in one round trip."""
    try:
        async with redis.pipeline(transaction=False) as pipe:
            for partition in range(partitions):
                pipe.llen(partition_queue(partition))
            depths = await pipe.execute()
    except (RedisError, OSError) as exc:
        _depth_unknown(exc)
        return
    for partition, depth in enumerate(depths):
        BOOKING_QUEUE_DEPTH.labels(str(partition)).set(int(depth))


# -- exposition ---------------------------------------------------------------------------------

CONTENT_TYPE = CONTENT_TYPE_LATEST
_PID_FILE = re.compile(r"_(\d+)\.db$")


def multiprocess_dir() -> Path | None:
    """Where this process and its siblings write their samples, if they share one view."""
    value = os.environ.get(MULTIPROC_ENV)
    return Path(value) if value else None


def forget_dead_processes(directory: Path) -> None:
    """Drop the live-gauge files of processes that are gone (a respawned API worker's).

    Counters and histograms of dead processes stay: their counts happened.
    """
    pids = {int(m.group(1)) for f in directory.glob("*.db") if (m := _PID_FILE.search(f.name))}
    for pid in pids:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            _multiprocess.mark_process_dead(pid, str(directory))  # type: ignore[no-untyped-call]
        except PermissionError:  # alive, someone else's
            continue


def exposition() -> bytes:
    """Every metric of this process, or of all processes sharing the multiprocess directory."""
    directory = multiprocess_dir()
    if directory is None:
        return generate_latest(REGISTRY)
    forget_dead_processes(directory)
    registry = CollectorRegistry()
    _multiprocess.MultiProcessCollector(registry, path=str(directory))  # type: ignore[no-untyped-call]
    return generate_latest(registry)


def serve_metrics(port: int, host: str = "0.0.0.0") -> None:  # noqa: S104 - scraped from outside
    """Expose this process's metrics on `port` in a background thread (`METRICS_PORT`)."""
    directory = multiprocess_dir()
    registry = REGISTRY
    if directory is not None:
        registry = CollectorRegistry()
        _multiprocess.MultiProcessCollector(registry, path=str(directory))  # type: ignore[no-untyped-call]
    try:
        start_http_server(port, host, registry=registry)
    except OSError as exc:
        # Deciding bookings matters more than being scraped: carry on, loudly.
        log.error("metrics not served: port %d unavailable (%s); set METRICS_PORT", port, exc)
        return
    log.info("metrics on http://%s:%d/metrics", host, port)
