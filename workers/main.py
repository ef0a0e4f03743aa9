"""Assembles the worker and scheduler processes."""

from __future__ import annotations

import logging
import os
import socket
from typing import Any

from celery import Celery, beat
from celery.signals import worker_process_shutdown, worker_shutdown
from redis import Redis

from domain.partitions import partition_queue
from infra.heartbeat import HeartbeatFile
from infra.membership import Membership
from infra.metrics import serve_metrics
from infra.settings import Settings
from workers.celery_app import MAINTENANCE_QUEUE, WEBHOOKS_QUEUE, create_celery
from workers.maintenance import maintenance_schedule, register_maintenance_tasks
from workers.ownership import PartitionOwner, ownership_step, partition_of
from workers.runtime import close_runtime, consume
from workers.tasks import register_tasks
from workers.webhooks import register_webhook_tasks, start_webhook_service, stop_webhook_service

# Queues every worker consumes besides its share of the partitions.
SHARED_QUEUES = [MAINTENANCE_QUEUE, WEBHOOKS_QUEUE]


def build_app(settings: Settings) -> Celery:
    app = create_celery(settings)
    register_tasks(app, settings)
    register_webhook_tasks(app, settings)
    register_maintenance_tasks(app, settings)
    app.conf.beat_schedule = {
        **app.conf.beat_schedule,
        **maintenance_schedule(MAINTENANCE_QUEUE),
    }
    return app


@worker_shutdown.connect
@worker_process_shutdown.connect
def _close(**_: object) -> None:
    stop_webhook_service()
    close_runtime()


def _not_a_beat_send(record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith("Scheduler: Sending due task")


def _quiet_celery_logs(settings: Settings) -> None:
    """Celery's INFO lines that repeat: each task, each queue added, each beat send."""
    if settings.log_level != "DEBUG":
        for name in (
            "celery.app.trace",
            "celery.worker.strategy",
            "celery.worker.request",  # "Discarding revoked task" for each expired sweep
            "celery.worker.consumer.consumer",  # "Started consuming from bookings.N" x 64
        ):
            logging.getLogger(name).setLevel(logging.WARNING)
        # "Sending due task" every SWEEP_INTERVAL_SECONDS; "beat: Starting..." stays.
        logging.getLogger("celery.beat").addFilter(_not_a_beat_send)


def worker_name() -> str:
    return f"booking-{os.getpid()}@{socket.gethostname()}"


def run_worker(settings: Settings, queues: list[str] | None) -> None:
    """One process deciding one batch at a time, on the partitions it owns (or is pinned to).

    Without `queues` it takes its rendezvous share of the partitions and follows the
    membership; with `queues` it consumes exactly those and takes no share.
    """
    app = build_app(settings)
    _quiet_celery_logs(settings)
    name = worker_name()
    pinned = None
    if queues:
        pinned = frozenset(p for q in queues if (p := partition_of(q)) is not None)
    redis = Redis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=5)
    owner = PartitionOwner(
        name,
        settings.booking_partitions,
        Membership(redis, settings.worker_lease_seconds),
        settings.worker_lease_seconds,
        pinned=pinned,
        host=socket.gethostname(),
    )
    heartbeat = HeartbeatFile(settings.heartbeat_file)
    app.steps["consumer"].add(ownership_step(owner, heartbeat, consume))
    # Celery consumes the pinned queues, or the share of the workers live now, from the
    # start; the ownership step follows the membership from then on.
    initial = queues or [*SHARED_QUEUES, *map(partition_queue, sorted(owner.first_share()))]
    consume(initial)
    if WEBHOOKS_QUEUE in initial:
        start_webhook_service(settings)  # delivers from now on, woken or not
    if settings.metrics_port:
        serve_metrics(settings.metrics_port)
    try:
        app.worker_main(
            [
                "--quiet",  # no banner listing every queue
                "worker",
                "--pool=solo",
                "--concurrency=1",
                f"--queues={','.join(initial)}",
                f"--hostname={name}",
                f"--loglevel={settings.log_level}",
                "--without-heartbeat",
                "--without-mingle",
                "--without-gossip",
            ]
        )
    finally:
        # Celery has finished the current batch and handed back what it reserved by now.
        owner.leave()
        heartbeat.remove()
        redis.close()


class BookingScheduler(beat.Scheduler):
    """Celery beat's in-memory scheduler, touching the heartbeat file on every tick.

    Every entry is a short interval, so there is nothing worth keeping across restarts:
    no schedule file is written anywhere.
    """

    def tick(self, *args: Any, **kwargs: Any) -> float:
        HeartbeatFile(self.app.conf.get(HEARTBEAT_CONF)).touch()
        return float(super().tick(*args, **kwargs))


HEARTBEAT_CONF = "booking_heartbeat_file"


def run_scheduler(settings: Settings) -> None:
    app = build_app(settings)
    _quiet_celery_logs(settings)
    app.conf[HEARTBEAT_CONF] = settings.heartbeat_file
    try:
        app.Beat(
            scheduler=f"{__name__}:BookingScheduler",
            # Ticks (and heartbeats) at least this often, whatever the entries' intervals.
            max_interval=max(1, min(5, int(settings.sweep_interval_seconds))),
            loglevel=settings.log_level,
            quiet=True,
        ).run()
    finally:
        HeartbeatFile(settings.heartbeat_file).remove()
