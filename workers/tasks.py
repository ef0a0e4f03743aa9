"""Thin tasks: take ids, call a use case."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

from celery import Celery

from domain.use_cases.processing import (
    ProcessingLimits,
    RecentlyDecided,
    process_wakeups,
    wake_stuck,
)
from infra import metrics
from infra.settings import Settings
from workers.reporting import DecisionReporter
from workers.runtime import Runtime, runtime, utc_now


def register_tasks(app: Celery, settings: Settings) -> None:
    limits = ProcessingLimits(max_attempts=settings.max_attempts)
    recent = RecentlyDecided()  # per worker process: tasks run one after another
    reporter = DecisionReporter()

    @app.task(name="bookings.process", acks_late=True, ignore_result=True)
    def process(provider_id: str, request_id: str) -> None:
        rt = runtime(settings)
        rt.run(decide(rt, UUID(provider_id), UUID(request_id)))

    async def decide(rt: Runtime, provider_id: UUID, request_id: UUID) -> None:
        others = await rt.queue.take_waiting(rt.booking_queues, limits.batch_size)
        woken = [(provider_id, request_id), *others]
        await process_wakeups(woken, rt.database, rt.notifier, utc_now, limits, recent, reporter)

    @app.task(name="bookings.sweep", acks_late=True, ignore_result=True)
    def sweep() -> None:
        rt = runtime(settings)
        older_than = utc_now() - timedelta(seconds=settings.pending_after_seconds)
        woken = rt.run(wake_stuck(rt.database, rt.queue, older_than, quiet_seconds=10))
        metrics.SWEEP_REENQUEUED.inc(woken)
