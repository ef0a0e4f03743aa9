"""Removing old rows without locking out the hot paths.

(Table and partition names in the SQL here are ours, never input.)

A partition wholly older than the cutoff that holds nothing to keep is detached and
dropped: a catalogue change, however many rows it held. Everything else goes in batches of a
few hundred rows, each its own short transaction, located through the `created_at` index, so
no statement holds locks (or a snapshot) for long.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError

from infra.partitions import Partition, is_partitioned, partitions


@dataclass(frozen=True, slots=True)
class Rule:
    keep: str  # SQL: rows matching this are never removed, however old
    age: str = "created_at"  # the column a row's age is read from (indexed)


RULES = {
    "booking_requests": Rule(keep="status = 'pending'"),
    "events": Rule(keep="published_at IS NULL"),
    # The attempts of a delivery still being tried stay with it.
    "webhook_attempts": Rule(
        keep="delivery_id IN (SELECT id FROM webhook_deliveries WHERE status = 'pending')",
        age="started_at",
    ),
    "webhook_deliveries": Rule(keep="status = 'pending'"),
    "idempotency_keys": Rule(keep="false"),
}
# Dropping a partition needs a brief exclusive lock on the parent: wait this little for it,
# so inserts never queue behind the drop for long; try again a few times.
DROP_LOCK_TIMEOUT = "200ms"
DROP_ATTEMPTS = 25
ROW_LOCK_TIMEOUT = "1s"


class SqlRetention:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._postgres = engine.dialect.name == "postgresql"
        self.dropped: list[str] = []

    def remove_older(
        self,
        table: str,
        before: datetime,
        *,
        dry_run: bool,
        batch_size: int,
        budget_seconds: float | None,
    ) -> int:
        rule = RULES[table]
        deadline = None if budget_seconds is None else time.monotonic() + budget_seconds
        removed = 0
        leaves = [table]
        droppable: list[Partition] = []
        with self._engine.connect() as connection:
            if self._postgres and is_partitioned(connection, table):
                leaves = []
                for part in partitions(connection, table):
                    if part.lower is not None and part.lower >= before:
                        continue  # wholly newer than the cutoff
                    whole = part.upper is not None and part.upper <= before
                    if whole and not self._holds(connection, part.name, rule):
                        removed += self._count(connection, part.name, None, rule)
                        droppable.append(part)
                        continue
                    leaves.append(part.name)
                leaves.append(f"{table}_default")
            connection.rollback()  # its locks would keep the drops waiting
        if not dry_run:
            for part in droppable:
                self._drop(table, part)
        for leaf in leaves:
            if dry_run:
                with self._engine.connect() as connection:
                    removed += self._count(connection, leaf, before, rule)
                continue
            removed += self._delete_batches(leaf, before, rule, batch_size, deadline)
        return removed

    def _holds(self, connection: Connection, leaf: str, rule: Rule) -> bool:
        return bool(
            connection.execute(
                text(f"SELECT EXISTS (SELECT 1 FROM {leaf} WHERE {rule.keep})")  # noqa: S608
            ).scalar()
        )

    def _count(self, connection: Connection, leaf: str, before: datetime | None, rule: Rule) -> int:
        where = f"NOT ({rule.keep})"
        params = {}
        if before is not None:
            where += f" AND {rule.age} < :before"
            params["before"] = before
        exists = connection.execute(
            text("SELECT 1 FROM pg_class WHERE relname = :t")
            if self._postgres
            else text("SELECT 1 FROM sqlite_master WHERE name = :t"),
            {"t": leaf},
        ).scalar()
        if not exists:
            return 0
        return int(
            connection.execute(
                text(f"SELECT count(*) FROM {leaf} WHERE {where}"),  # noqa: S608
                params,
            ).scalar()
            or 0
        )

    def _drop(self, table: str, part: Partition) -> None:
        for attempt in range(DROP_ATTEMPTS):
            try:
                with self._engine.begin() as connection:
                    connection.execute(text(f"SET LOCAL lock_timeout = '{DROP_LOCK_TIMEOUT}'"))
                    connection.execute(text(f"ALTER TABLE {table} DETACH PARTITION {part.name}"))
                    connection.execute(text(f"DROP TABLE {part.name}"))
                self.dropped.append(part.name)
                return
            except DBAPIError as exc:
                if getattr(exc.orig, "sqlstate", None) != "55P03" or attempt == DROP_ATTEMPTS - 1:
                    raise
                time.sleep(0.1 * (attempt + 1))

    def _delete_batches(
        self, leaf: str, before: datetime, rule: Rule, batch_size: int, deadline: float | None
    ) -> int:
        row = "ctid" if self._postgres else "rowid"
        pick = (
            f"SELECT {row} FROM {leaf} WHERE {rule.age} < :before AND NOT ({rule.keep}) "  # noqa: S608
            f"LIMIT {int(batch_size)}"
        )
        if self._postgres:
            statement = text(f"DELETE FROM {leaf} WHERE ctid = ANY(ARRAY({pick}))")  # noqa: S608
        else:
            statement = text(f"DELETE FROM {leaf} WHERE rowid IN ({pick})")  # noqa: S608
        removed = 0
        while deadline is None or time.monotonic() < deadline:
            with self._engine.begin() as connection:
                if self._postgres:
                    if not self._exists(connection, leaf):
                        return removed
                    connection.execute(text(f"SET LOCAL lock_timeout = '{ROW_LOCK_TIMEOUT}'"))
                count = connection.execute(statement, {"before": before}).rowcount
            removed += count
            if count < batch_size:
                break
        return removed

    def _exists(self, connection: Connection, leaf: str) -> bool:
        return bool(
            connection.execute(
                text("SELECT 1 FROM pg_class WHERE relname = :t"), {"t": leaf}
            ).scalar()
        )
