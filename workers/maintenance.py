"""Scheduled upkeep of the record: partitions made ahead, old data pruned in small batches."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from celery import Celery

from domain.use_cases.retention import RetentionPolicy, prune
from infra.database import make_sync_engine
from infra.partitions import MONTHS_AHEAD, ensure_partitions
from infra.retention import SqlRetention
from infra.settings import Settings
from workers.runtime import utc_now

log = logging.getLogger(__name__)

PARTITIONS_EVERY = timedelta(hours=1)
PRUNE_EVERY = timedelta(minutes=1)
# A run shares the maintenance queue with the sweep of stuck requests: it stops after this
# long and the next run carries on.
PRUNE_BUDGET_SECONDS = 5.0


def policy(settings: Settings, budget_seconds: float | None) -> RetentionPolicy:
    return RetentionPolicy(
        retention=timedelta(days=settings.retention_days),
        key_window=timedelta(hours=settings.idempotency_key_hours),
        budget_seconds=budget_seconds,
    )


def maintenance_schedule(queue: str) -> dict[str, dict[str, Any]]:
    def every(period: timedelta, task: str) -> dict[str, Any]:
        seconds = period.total_seconds()
        return {"task": task, "schedule": period, "options": {"queue": queue, "expires": seconds}}

    return {
        "create-partitions-ahead": every(PARTITIONS_EVERY, "maintenance.partitions"),
        "prune-old-data": every(PRUNE_EVERY, "maintenance.prune"),
    }


def register_maintenance_tasks(app: Celery, settings: Settings) -> None:
    @app.task(name="maintenance.partitions", acks_late=True, ignore_result=True)
    def partitions() -> None:
        engine = make_sync_engine(settings.database_url)
        try:
            now = utc_now()
            made = ensure_partitions(engine, now, now + timedelta(days=31 * MONTHS_AHEAD))
        finally:
            engine.dispose()
        if made:
            log.info("created partitions %s", ", ".join(made))

    @app.task(name="maintenance.prune", acks_late=True, ignore_result=True)
    def prune_old() -> None:
        engine = make_sync_engine(settings.database_url)
        try:
            store = SqlRetention(engine)
            removed = prune(policy(settings, PRUNE_BUDGET_SECONDS), store, utc_now())
        finally:
            engine.dispose()
        if any(removed.values()) or store.dropped:
            log.info("pruned %s; dropped partitions %s", removed, store.dropped or "none")
