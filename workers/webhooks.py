"""Webhook delivery in a worker process: a pump on a thread and event loop of its own.

The Celery task `webhooks.wake` is only a wake-up: it tells the pump there may be new events
and returns at once, so a worker that also decides bookings is never held by a slow
receiver. The pump publishes the outbox and keeps many deliveries in flight on asyncio; it
also looks by itself every `WEBHOOK_POLL_SECONDS` for due retries and for events a crash left
unpublished (so do the scheduler's periodic wake-ups).
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
from datetime import UTC, datetime, timedelta

from celery import Celery

from domain.ports import AttemptRecord
from domain.use_cases.webhooks import DeliveryLimits, DeliveryPump
from domain.webhooks import AttemptOutcome, RetryPolicy
from infra.database import make_engine
from infra.metrics import WEBHOOK_DELIVERIES, WEBHOOK_DELIVERY_LATENCY
from infra.queue import WEBHOOKS_WAKE_TASK
from infra.redis_client import redis_client
from infra.settings import Settings
from infra.unit_of_work import SqlDatabase

log = logging.getLogger("webhooks")

_DATABASE_CONNECTIONS = 3


def utc_now() -> datetime:
    return datetime.now(UTC)


def retry_policy(settings: Settings) -> RetryPolicy:
    return RetryPolicy(
        delays=settings.webhook_retry_delays,
        disable_after=timedelta(days=settings.webhook_disable_after_days),
    )


def delivery_limits(settings: Settings) -> DeliveryLimits:
    return DeliveryLimits(
        max_in_flight=settings.webhook_max_in_flight,
        max_in_flight_per_target=settings.webhook_max_in_flight_per_endpoint,
        lease=timedelta(seconds=settings.webhook_timeout_seconds + 60),
        poll_seconds=settings.webhook_poll_seconds,
    )


def observe(record: AttemptRecord) -> None:
    """Metrics and one log line per attempt."""
    outcome = record.verdict.outcome
    WEBHOOK_DELIVERIES.labels(outcome.value).inc()
    result = record.result
    if outcome is AttemptOutcome.SUCCEEDED:
        answered = result.started_at + timedelta(milliseconds=result.duration_ms)
        latency = (answered - record.delivery.event_created_at).total_seconds()
        WEBHOOK_DELIVERY_LATENCY.observe(max(latency, 0.0))
    log.log(
        logging.INFO if outcome is AttemptOutcome.SUCCEEDED else logging.WARNING,
        "webhook delivery=%s event=%s target=%s attempt=%d outcome=%s status=%s ms=%d%s",
        record.delivery.id,
        record.delivery.event_id,
        record.delivery.target,
        record.delivery.attempts + 1,
        outcome.value,
        result.status_code,
        result.duration_ms,
        f" error={result.error!r}" if result.error else "",
    )


class WebhookService:
    """One process's delivery pump, started once, on its own daemon thread."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pump: DeliveryPump | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="webhook-delivery", daemon=True)

    def start(self) -> None:
        """Start delivering; the worker does not wait for it (wake-ups before then are not
        needed: the pump looks for work as soon as it runs)."""
        self._thread.start()

    def wake(self) -> None:
        if self._loop is not None and self._pump is not None:
            self._loop.call_soon_threadsafe(self._pump.wake)

    def stop(self, timeout: float = 15.0) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout)

    def _run(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        # Imported here, on the delivery thread: the HTTP client and DNS library would add
        # seconds to the start of every worker and of the scheduler on a busy machine.
        from infra.dns import HostResolver  # noqa: PLC0415
        from infra.event_stream import RedisEventStream  # noqa: PLC0415
        from infra.webhook_sender import AiohttpWebhookSender  # noqa: PLC0415

        settings = self._settings
        database = SqlDatabase(make_engine(settings.database_url, _DATABASE_CONNECTIONS))
        redis = redis_client(settings.redis_url)
        resolver = HostResolver(settings.webhook_dns_servers, settings.webhook_dns_cache_seconds)
        sender = AiohttpWebhookSender(
            resolver,
            settings.webhook_timeout_seconds,
            settings.webhook_allow_private_targets,
            settings.webhook_max_in_flight,
            recheck_seconds=settings.webhook_dns_cache_seconds,
        )
        self._pump = DeliveryPump(
            database,
            sender,
            RedisEventStream(redis, settings.webhook_stream_maxlen),
            utc_now,
            retry_policy(settings),
            delivery_limits(settings),
            jitter=random.random,  # spreading retries, not secrecy
            observe=observe,
        )
        self._stop = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        try:
            await self._pump.run(self._stop)
        finally:
            await sender.close()
            await redis.aclose()
            await database.dispose()


_service: WebhookService | None = None
_lock = threading.Lock()


def start_webhook_service(settings: Settings) -> WebhookService:
    """This process's delivery pump, started on first use."""
    global _service  # noqa: PLW0603 - one per process by design
    with _lock:
        if _service is None:
            _service = WebhookService(settings)
            _service.start()
        return _service


def stop_webhook_service() -> None:
    global _service  # noqa: PLW0603
    with _lock:
        if _service is not None:
            _service.stop()
            _service = None


def register_webhook_tasks(app: Celery, settings: Settings) -> None:
    @app.task(name=WEBHOOKS_WAKE_TASK, acks_late=False, ignore_result=True)
    def wake() -> None:
        start_webhook_service(settings).wake()
