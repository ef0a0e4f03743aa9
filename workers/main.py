"""Assembles the worker and scheduler processes."""

from __future__ import annotations

import logging
import os
import socket
import tempfile
from pathlib import Path

from celery import Celery
from celery.signals import worker_process_shutdown, worker_shutdown

from infra.settings import Settings
from workers.celery_app import MAINTENANCE_QUEUE, WEBHOOKS_QUEUE, create_celery, partition_queues
from workers.runtime import close_runtime, consume
from workers.tasks import register_tasks
from workers.webhooks import register_webhook_tasks, start_webhook_service, stop_webhook_service


def build_app(settings: Settings) -> Celery:
    app = create_celery(settings)
    register_tasks(app, settings)
    register_webhook_tasks(app, settings)
    return app


@worker_shutdown.connect
@worker_process_shutdown.connect
def _close(**_: object) -> None:
    stop_webhook_service()
    close_runtime()


def default_queues(settings: Settings) -> list[str]:
    return [*partition_queues(settings), MAINTENANCE_QUEUE, WEBHOOKS_QUEUE]


def _quiet_task_logs(settings: Settings) -> None:
    # Celery logs every task received and finished at INFO: thousands of lines a second.
    if settings.log_level != "DEBUG":
        for name in ("celery.app.trace", "celery.worker.strategy"):
            logging.getLogger(name).setLevel(logging.WARNING)


def run_worker(settings: Settings, queues: list[str] | None) -> None:
    """One process deciding one request at a time, so a partition is never decided twice over."""
    app = build_app(settings)
    _quiet_task_logs(settings)
    chosen = queues or default_queues(settings)
    consume(chosen)
    if WEBHOOKS_QUEUE in chosen:
        start_webhook_service(settings)  # delivers from now on, woken or not
    name = f"booking-{os.getpid()}@{socket.gethostname()}"
    app.worker_main(
        [
            "worker",
            "--pool=solo",
            "--concurrency=1",
            f"--queues={','.join(chosen)}",
            f"--hostname={name}",
            f"--loglevel={settings.log_level}",
            "--without-heartbeat",
            "--without-mingle",
            "--without-gossip",
        ]
    )


def run_scheduler(settings: Settings) -> None:
    app = build_app(settings)
    schedule = Path(tempfile.gettempdir()) / f"booking-beat-{os.getpid()}"
    app.start(["beat", f"--schedule={schedule}", f"--loglevel={settings.log_level}"])
