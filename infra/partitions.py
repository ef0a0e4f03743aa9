"""Monthly range partitions of the append-only tables (PostgreSQL only).

`booking_requests` and `events` are partitioned by `created_at`, one partition a month, named
`<table>_pYYYYMM`. A database converted from an unpartitioned one also holds
`<table>_legacy`, everything before the month of the conversion, and every table has
`<table>_default` for rows no month covers (it stays empty while the scheduler runs).
Partitions are created
ahead by the scheduler; retention detaches and drops the ones wholly older than the cutoff.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError

PARTITIONED_TABLES = ("booking_requests", "events")
MONTHS_AHEAD = 3
# DDL on a partitioned table waits for the hot paths' locks; it gives up quickly instead of
# queueing every insert behind it, and the scheduler tries again on its next run.
DDL_LOCK_TIMEOUT = "2s"

_PARTITION_NAME = re.compile(r"^(booking_requests|events)_(p\d{6}|legacy|default)$")


def is_partition(name: str | None) -> bool:
    return bool(name) and _PARTITION_NAME.match(name or "") is not None


def month_start(day: date | datetime) -> datetime:
    return datetime(day.year, day.month, 1, tzinfo=UTC)


def next_month(moment: datetime) -> datetime:
    return datetime(moment.year + moment.month // 12, moment.month % 12 + 1, 1, tzinfo=UTC)


def partition_name(table: str, month: datetime) -> str:
    return f"{table}_p{month.year:04d}{month.month:02d}"


@dataclass(frozen=True, slots=True)
class Partition:
    name: str
    lower: datetime | None  # None: MINVALUE
    upper: datetime | None  # None: MAXVALUE


_BOUNDS = text(
    "SELECT c.relname AS name, pg_get_expr(c.relpartbound, c.oid) AS bound "
    "FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
    "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = :table AND p.relkind = 'p'"
)
_BOUND = re.compile(r"FROM \((.+)\) TO \((.+)\)")


def _instant(raw: str) -> datetime | None:
    raw = raw.strip()
    if raw in {"MINVALUE", "MAXVALUE"}:
        return None
    return datetime.fromisoformat(raw.strip("'")).astimezone(UTC)


def is_partitioned(connection: Connection, table: str) -> bool:
    if connection.dialect.name != "postgresql":
        return False
    kind = connection.execute(
        text("SELECT relkind FROM pg_class WHERE relname = :t AND relkind IN ('r', 'p')"),
        {"t": table},
    ).scalar()
    return kind == "p"


def partitions(connection: Connection, table: str) -> list[Partition]:
    """The partitions of `table`, oldest first."""
    found = []
    for row in connection.execute(_BOUNDS, {"table": table}):
        match = _BOUND.search(row.bound)
        if match is None:  # a DEFAULT partition; we create none
            continue
        found.append(Partition(row.name, _instant(match[1]), _instant(match[2])))
    early = datetime.min.replace(tzinfo=UTC)
    return sorted(found, key=lambda p: p.lower or early)


def create_partition(connection: Connection, table: str, month: datetime) -> bool:
    """Create the partition of `month` unless one covers it already; True if created."""
    upper = next_month(month)
    for existing in partitions(connection, table):
        if (existing.lower is None or existing.lower < upper) and (
            existing.upper is None or existing.upper > month
        ):
            return False
    connection.execute(text(f"SET LOCAL lock_timeout = '{DDL_LOCK_TIMEOUT}'"))
    connection.execute(
        text(
            f'CREATE TABLE IF NOT EXISTS "{partition_name(table, month)}" PARTITION OF "{table}" '
            f"FOR VALUES FROM ('{month.isoformat()}') TO ('{upper.isoformat()}')"
        )
    )
    return True


def ensure_partitions(
    engine: Engine,
    first: datetime,
    last: datetime,
    tables: tuple[str, ...] = PARTITIONED_TABLES,
) -> list[str]:
    """Partitions for every month from `first` to `last` (inclusive) of each partitioned table.

    Each partition is created in a transaction of its own; returns the names created.
    """
    if engine.dialect.name != "postgresql":
        return []
    created = []
    for table in tables:
        with engine.connect() as connection:
            if not is_partitioned(connection, table):
                continue
        month = month_start(first)
        while month <= last:
            try:
                with engine.begin() as connection:
                    if create_partition(connection, table, month):
                        created.append(partition_name(table, month))
            except DBAPIError:
                # A lock not had in time: the next run creates it (they are made months ahead).
                pass
            month = next_month(month)
    return created


def include_in_autogenerate(
    obj: object, name: str | None, type_: str, reflected: bool, compare_to: object
) -> bool:
    """What Alembic compares: not the partitions, nor the keys partitioning widens.

    On PostgreSQL a partitioned table's unique keys must hold the partition key, so
    `booking_requests` and `events` carry `ux_*` unique indexes there instead of the unique
    constraints the models (and SQLite) have; the migration owns both shapes.
    """
    if type_ == "table":
        return not is_partition(name)
    table = getattr(getattr(obj, "table", None), "name", None)
    if is_partition(table):
        return False
    if table in PARTITIONED_TABLES:
        if type_ == "unique_constraint":
            return False
        if type_ == "index" and (name or "").startswith("ux_"):
            return False
    return True
