"""The Celery app: partition queues, late acks, prefetch 1, and the beat schedule."""

from __future__ import annotations

from datetime import timedelta

from celery import Celery
from kombu import Exchange, Queue

from domain.partitions import partition_queue
from infra.settings import Settings

MAINTENANCE_QUEUE = "maintenance"
WEBHOOKS_QUEUE = "webhooks"


def partition_queues(settings: Settings) -> list[str]:
    return [partition_queue(p) for p in range(settings.booking_partitions)]


def create_celery(settings: Settings) -> Celery:
    app = Celery("booking", broker=settings.redis_url, set_as_current=False)
    queues = [*partition_queues(settings), MAINTENANCE_QUEUE, WEBHOOKS_QUEUE]
    app.conf.update(
        # Each queue is its own direct exchange and key, so a message reaches one queue only.
        task_queues=[Queue(name, Exchange(name), routing_key=name) for name in queues],
        task_default_queue=MAINTENANCE_QUEUE,
        # A task is acked only once it returned: a worker that dies mid-task leaves the
        # message to be redelivered (the request itself is safe in PostgreSQL anyway).
        task_acks_late=True,
        task_reject_on_worker_lost=False,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        result_backend=None,
        task_serializer="json",
        accept_content=["json"],
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        task_send_sent_event=False,
        worker_enable_remote_control=False,
        beat_schedule={
            "wake-stuck-requests": {
                "task": "bookings.sweep",
                "schedule": timedelta(seconds=settings.sweep_interval_seconds),
                "options": {
                    "queue": MAINTENANCE_QUEUE,
                    "expires": settings.sweep_interval_seconds * 2,
                },
            },
            # Events a crash left unpublished, and retries that fell due: webhook workers
            # also look by themselves, this wakes one that is idle between its looks.
            "publish-events-and-due-webhooks": {
                "task": "webhooks.wake",
                "schedule": timedelta(seconds=settings.sweep_interval_seconds),
                "options": {
                    "queue": WEBHOOKS_QUEUE,
                    "expires": settings.sweep_interval_seconds * 2,
                },
            },
        },
    )
    return app
