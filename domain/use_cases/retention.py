"""Retention: what old data leaves, and when.

Decided booking requests, their events, finished webhook deliveries and their attempts leave
once they are older than RETENTION_DAYS; an Idempotency-Key stops replaying after
IDEMPOTENCY_KEY_HOURS and its row leaves then. Pending requests, unpublished events, pending
deliveries (with their attempts) and bookings are never removed here: the first three are
work still to do, bookings are the record.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from domain.ports import RetentionStore


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    retention: timedelta
    key_window: timedelta
    batch_size: int = 1000
    # A scheduled run stops after this long and carries on next time; by hand, None: all.
    budget_seconds: float | None = None


def cutoffs(policy: RetentionPolicy, now: datetime) -> dict[str, datetime]:
    """Per table, the instant before which its rows (those it may lose) are removed.

    In this order: attempts point at deliveries, deliveries at events, events at requests
    (no foreign keys, but a reader following the links never finds the target gone while the
    source stays).
    """
    old = now - policy.retention
    return {
        "webhook_attempts": old,
        "webhook_deliveries": old,
        "events": old,
        "booking_requests": old,
        "idempotency_keys": now - policy.key_window,
    }


def prune(
    policy: RetentionPolicy, store: RetentionStore, now: datetime, dry_run: bool = False
) -> dict[str, int]:
    """Remove (or with `dry_run`, count) what retention lets go; rows per table."""
    removed: dict[str, int] = {}
    for table, before in cutoffs(policy, now).items():
        removed[table] = store.remove_older(
            table,
            before,
            dry_run=dry_run,
            batch_size=policy.batch_size,
            budget_seconds=policy.budget_seconds,
        )
    return removed
