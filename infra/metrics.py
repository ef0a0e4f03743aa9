"""Every Prometheus metric the service reports, defined once so names never drift.

Processes that share a port (the API's several workers) set PROMETHEUS_MULTIPROC_DIR before
this module is imported; prometheus-client then writes samples to files there and one
collector reads them all. Labels are kept to small, fixed sets.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

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
    multiprocess_mode="livemax",
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
