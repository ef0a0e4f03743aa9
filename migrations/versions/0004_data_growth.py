"""Data growth: list indexes, idempotency keys of their own, monthly partitions.

Runs against a live database without stopping the API (docs/data-growth.md has the
procedure): indexes are built CONCURRENTLY, the constraint that lets the old table become a
partition without a scan is validated without blocking writes, and the swap itself is one
short transaction that gives up after 2 s of waiting for a lock and tries again.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

from infra.partitions import (
    MONTHS_AHEAD,
    create_partition,
    month_start,
    next_month,
)

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Instant = sa.DateTime(timezone=True)

# (name, table, definition) built CONCURRENTLY on PostgreSQL.
BOOKING_INDEXES = (
    ("ix_bookings_start_at_id", "(start_at, id)"),
    ("ix_bookings_client_id_start_at_id", "(client_id, start_at, id)"),
    ("ix_bookings_provider_id_start_at_id", "(provider_id, start_at, id)"),
    ("ix_bookings_customer_id_start_at_id", "(customer_id, start_at, id)"),
    ("ix_bookings_confirmed_until", "(provider_id, blocked_until) WHERE status = 'confirmed'"),
)
OLD_BOOKING_INDEXES = (
    ("ix_bookings_client_id_start_at", "(client_id, start_at)"),
    ("ix_bookings_provider_id_start_at", "(provider_id, start_at)"),
)
# Per partitioned table: its unique keys, each widened by the partition key.
UNIQUE_KEYS = {"booking_requests": ("seq", "id"), "events": ("id",)}
LOCK_TIMEOUT = "2s"
SWAP_ATTEMPTS = 150

KEY_TRIGGER_FUNCTION = """
CREATE OR REPLACE FUNCTION booking_requests_hold_key() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- Whoever inserts a request with a key (this code's accept path has already put the
    -- key in place; older code has not) must hold that key: one live request per key.
    INSERT INTO idempotency_keys (client_id, key, request_id, request_created_at, created_at)
    VALUES (NEW.client_id, NEW.idempotency_key, NEW.id, NEW.created_at, NEW.created_at)
    ON CONFLICT (client_id, key) DO NOTHING;
    IF NOT FOUND AND NOT EXISTS (
        SELECT 1 FROM idempotency_keys
        WHERE client_id = NEW.client_id AND key = NEW.idempotency_key AND request_id = NEW.id
    ) THEN
        RAISE EXCEPTION 'Idempotency-Key % is held by another request', NEW.idempotency_key
            USING ERRCODE = 'unique_violation';
    END IF;
    RETURN NULL;
END $$
"""
KEY_TRIGGER = (
    "CREATE TRIGGER booking_requests_hold_key AFTER INSERT ON booking_requests "
    "FOR EACH ROW WHEN (NEW.idempotency_key IS NOT NULL) "
    "EXECUTE FUNCTION booking_requests_hold_key()"
)
SQLITE_KEY_TRIGGER = """
CREATE TRIGGER booking_requests_hold_key AFTER INSERT ON booking_requests
WHEN NEW.idempotency_key IS NOT NULL
BEGIN
    SELECT RAISE(ABORT, 'Idempotency-Key is held by another request') WHERE EXISTS (
        SELECT 1 FROM idempotency_keys
        WHERE client_id = NEW.client_id AND key = NEW.idempotency_key AND request_id <> NEW.id
    );
    INSERT OR IGNORE INTO idempotency_keys
        (client_id, key, request_id, request_created_at, created_at)
    VALUES (NEW.client_id, NEW.idempotency_key, NEW.id, NEW.created_at, NEW.created_at);
END
"""


def _create_idempotency_keys() -> None:
    op.create_table(
        "idempotency_keys",
        sa.Column("client_id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("request_id", sa.Uuid(), nullable=False),
        sa.Column("request_created_at", Instant, nullable=False),
        sa.Column("created_at", Instant, nullable=False),
        sa.PrimaryKeyConstraint("client_id", "key", name=op.f("pk_idempotency_keys")),
    )
    op.create_index("ix_idempotency_keys_created_at", "idempotency_keys", ["created_at"])


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        _upgrade_sqlite()
        return
    # Partition bounds and the legacy range are written and read back in UTC.
    op.execute("SET TIME ZONE 'UTC'")
    _create_idempotency_keys()
    op.execute(KEY_TRIGGER_FUNCTION)
    op.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
    op.execute(KEY_TRIGGER)
    # Keys of the last week (more than any sane IDEMPOTENCY_KEY_HOURS) keep replaying.
    op.execute(
        "INSERT INTO idempotency_keys "
        "SELECT client_id, idempotency_key, id, created_at, created_at FROM booking_requests "
        "WHERE idempotency_key IS NOT NULL AND created_at > now() - interval '7 days' "
        "ORDER BY seq DESC ON CONFLICT DO NOTHING"
    )
    with op.get_context().autocommit_block():
        bind = op.get_bind()
        for name, definition in BOOKING_INDEXES:
            _concurrently(bind, f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON bookings {definition}")
        for name, _ in OLD_BOOKING_INDEXES:
            _concurrently(bind, f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
        # Retention finds old deliveries through it.
        _concurrently(
            bind,
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_webhook_deliveries_created_at "
            "ON webhook_deliveries (created_at)",
        )
        cutover = _cutover(datetime.now(UTC))
        for table in UNIQUE_KEYS:
            _partition(bind, table, cutover)


def _concurrently(bind: Connection, statement: str) -> None:
    bind.exec_driver_sql(statement)


def _cutover(now: datetime) -> datetime:
    """The first month the new partitions hold: next month, or the one after near a month's end."""
    cutover = next_month(month_start(now))
    return next_month(cutover) if cutover - now < timedelta(days=2) else cutover


def _retrying(bind: Connection, work: Callable[[], None]) -> None:
    """`work` in a transaction of its own that waits at most LOCK_TIMEOUT for each lock."""
    for attempt in range(SWAP_ATTEMPTS):
        bind.exec_driver_sql("BEGIN")
        try:
            bind.exec_driver_sql(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
            work()
        except DBAPIError as exc:
            bind.exec_driver_sql("ROLLBACK")
            if getattr(exc.orig, "sqlstate", None) != "55P03" or attempt == SWAP_ATTEMPTS - 1:
                raise
            time.sleep(0.2)
            continue
        bind.exec_driver_sql("COMMIT")
        return


def _scalar(bind: Connection, sql: str, **params: object) -> object:
    return bind.execute(text(sql), params).scalar()


def _partition(bind: Connection, table: str, cutover: datetime) -> None:
    if _scalar(bind, "SELECT relkind FROM pg_class WHERE relname = :t", t=table) == "p":
        return  # already partitioned
    legacy = f"{table}_legacy"
    # Foreign keys into the table cannot follow it into partitions (none are needed).
    for (ref, name) in bind.execute(
        text(
            "SELECT conrelid::regclass::text, conname FROM pg_constraint "
            "WHERE contype = 'f' AND confrelid = CAST(:t AS regclass)"
        ),
        {"t": table},
    ).all():
        _retrying(bind, lambda ref=ref, name=name: bind.exec_driver_sql(
            f'ALTER TABLE {ref} DROP CONSTRAINT IF EXISTS "{name}"'
        ))
    has_rows = bool(_scalar(bind, f"SELECT EXISTS (SELECT 1 FROM {table})"))
    if has_rows:
        # Everything slow happens before the swap and blocks no writer.
        for column in UNIQUE_KEYS[table]:
            bind.exec_driver_sql(
                f"CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS ux_{table}_{column}_legacy "
                f"ON {table} ({column}, created_at)"
            )
        bind.exec_driver_sql(
            f"CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_{table}_created_at_legacy "
            f"ON {table} (created_at)"
        )
        if table == "booking_requests":
            # The previous release looks keys up in booking_requests itself until it is
            # replaced; its unique constraint goes at the swap, this index stays with the rows.
            bind.exec_driver_sql(
                "CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_booking_requests_key_legacy "
                "ON booking_requests (client_id, idempotency_key)"
            )
        check = f"ck_{table}_legacy_range"
        exists = _scalar(
            bind,
            "SELECT 1 FROM pg_constraint WHERE conname = :c AND conrelid = CAST(:t AS regclass)",
            c=check,
            t=table,
        )
        if not exists:
            _retrying(bind, lambda: bind.exec_driver_sql(
                f"ALTER TABLE {table} ADD CONSTRAINT {check} "
                f"CHECK (created_at < '{cutover.isoformat()}') NOT VALID"
            ))
        bind.exec_driver_sql(f"ALTER TABLE {table} VALIDATE CONSTRAINT {check}")
    _retrying(bind, lambda: _swap(bind, table, legacy, cutover))


def _swap(bind: Connection, table: str, legacy: str, cutover: datetime) -> None:
    run = bind.exec_driver_sql
    run(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
    empty = not _scalar(bind, f"SELECT EXISTS (SELECT 1 FROM {table})")
    check = f"ck_{table}_legacy_range"
    if not empty:
        bound = _scalar(
            bind,
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conname = :c AND convalidated",
            c=check,
        )
        if bound is None or cutover.isoformat()[:10] not in str(bound):
            # The table was checked against another cutover (an earlier try, another month).
            raise RuntimeError(f"{table}: constraint {check} does not match {cutover}; rerun")
    indexes = bind.execute(
        text(
            "SELECT i.relname AS name, pg_get_indexdef(i.oid) AS definition, x.indisunique AS uniq "
            "FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
            "WHERE x.indrelid = CAST(:t AS regclass)"
        ),
        {"t": table},
    ).all()
    foreign = bind.execute(
        text(
            "SELECT conname, pg_get_constraintdef(oid) AS definition FROM pg_constraint "
            "WHERE contype = 'f' AND conrelid = CAST(:t AS regclass)"
        ),
        {"t": table},
    ).all()
    run(f"DROP TRIGGER IF EXISTS booking_requests_hold_key ON {table}")
    if table == "booking_requests":
        run(f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS uq_booking_requests_idempotency")
    run(f"ALTER TABLE {table} RENAME TO {legacy}")
    run(
        f"CREATE TABLE {table} (LIKE {legacy} INCLUDING DEFAULTS INCLUDING CONSTRAINTS "
        f"INCLUDING STORAGE) PARTITION BY RANGE (created_at)"
    )
    run(f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {check}")
    for sequence in bind.execute(
        text(
            "SELECT s.relname FROM pg_depend d JOIN pg_class s ON s.oid = d.objid "
            "WHERE d.refobjid = CAST(:t AS regclass) AND s.relkind = 'S'"
        ),
        {"t": legacy},
    ).scalars():
        run(f"ALTER SEQUENCE {sequence} OWNED BY {table}.seq")
    for row in foreign:
        run(f'ALTER TABLE {table} ADD CONSTRAINT "{row.conname}" {row.definition}')
    for column in UNIQUE_KEYS[table]:
        run(f"CREATE UNIQUE INDEX ux_{table}_{column} ON {table} ({column}, created_at)")
    run(f"CREATE INDEX ix_{table}_created_at ON {table} (created_at)")
    for row in indexes:
        if row.uniq or row.name.endswith("_legacy"):
            continue  # unique keys are widened above; *_legacy ones were built for the swap
        run(f'ALTER INDEX "{row.name}" RENAME TO "{row.name}_legacy"')
        on_legacy = f" ON public.{table} USING "
        run(row.definition.replace(on_legacy, f" ON {table} USING "))
    if empty:
        run(f"DROP TABLE {legacy}")
        month = month_start(datetime.now(UTC))
    else:
        run(
            f"ALTER TABLE {table} ATTACH PARTITION {legacy} "
            f"FOR VALUES FROM (MINVALUE) TO ('{cutover.isoformat()}')"
        )
        month = cutover
    last = month_start(datetime.now(UTC) + timedelta(days=31 * MONTHS_AHEAD))
    while month <= last:
        create_partition(bind, table, month)
        month = next_month(month)
    # Rows no monthly partition covers (a clock far off, the scheduler stopped for months)
    # land here rather than fail; retention empties it like the others.
    run(f"CREATE TABLE {table}_default PARTITION OF {table} DEFAULT")
    if table == "booking_requests":
        run(KEY_TRIGGER)


def _upgrade_sqlite() -> None:
    _create_idempotency_keys()
    with op.batch_alter_table("webhook_deliveries") as batch:
        batch.drop_constraint("fk_webhook_deliveries_event_id_events", type_="foreignkey")
    with op.batch_alter_table("booking_requests") as batch:
        batch.drop_constraint("uq_booking_requests_idempotency", type_="unique")
    op.create_index("ix_booking_requests_created_at", "booking_requests", ["created_at"])
    op.create_index("ix_events_created_at", "events", ["created_at"])
    op.create_index("ix_webhook_deliveries_created_at", "webhook_deliveries", ["created_at"])
    op.execute(SQLITE_KEY_TRIGGER)
    for name, _ in OLD_BOOKING_INDEXES:
        op.drop_index(name, table_name="bookings")
    op.create_index("ix_bookings_start_at_id", "bookings", ["start_at", "id"])
    op.create_index("ix_bookings_client_id_start_at_id", "bookings", ["client_id", "start_at", "id"])
    op.create_index(
        "ix_bookings_provider_id_start_at_id", "bookings", ["provider_id", "start_at", "id"]
    )
    op.create_index(
        "ix_bookings_customer_id_start_at_id", "bookings", ["customer_id", "start_at", "id"]
    )
    op.create_index(
        "ix_bookings_confirmed_until",
        "bookings",
        ["provider_id", "blocked_until"],
        sqlite_where=sa.text("status = 'confirmed'"),
    )


def downgrade() -> None:
    """Back to one plain table each (copies the rows: run it with the service stopped)."""
    is_postgres = op.get_bind().dialect.name == "postgresql"
    if is_postgres:
        for table in UNIQUE_KEYS:
            _unpartition(table)
        op.execute("DROP TRIGGER IF EXISTS booking_requests_hold_key ON booking_requests")
        op.execute("DROP FUNCTION IF EXISTS booking_requests_hold_key()")
        op.create_foreign_key(
            "fk_webhook_deliveries_event_id_events",
            "webhook_deliveries",
            "events",
            ["event_id"],
            ["id"],
        )
    else:
        op.execute("DROP TRIGGER IF EXISTS booking_requests_hold_key")
        op.drop_index("ix_booking_requests_created_at", table_name="booking_requests")
        op.drop_index("ix_events_created_at", table_name="events")
        with op.batch_alter_table("webhook_deliveries") as batch:
            batch.create_foreign_key(
                "fk_webhook_deliveries_event_id_events", "events", ["event_id"], ["id"]
            )
    op.drop_table("idempotency_keys")
    op.drop_index("ix_webhook_deliveries_created_at", table_name="webhook_deliveries")
    with op.batch_alter_table("booking_requests") as batch:
        batch.create_unique_constraint(
            "uq_booking_requests_idempotency", ["client_id", "idempotency_key"]
        )
    for name, _ in BOOKING_INDEXES:
        op.drop_index(name, table_name="bookings")
    op.create_index("ix_bookings_provider_id_start_at", "bookings", ["provider_id", "start_at"])
    op.create_index("ix_bookings_client_id_start_at", "bookings", ["client_id", "start_at"])


def _unpartition(table: str) -> None:
    bind = op.get_bind()
    plain = f"{table}_plain"
    op.execute(f"CREATE TABLE {plain} (LIKE {table} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
    op.execute(f"INSERT INTO {plain} SELECT * FROM {table}")
    for sequence in bind.execute(
        text(
            "SELECT s.relname FROM pg_depend d JOIN pg_class s ON s.oid = d.objid "
            "WHERE d.refobjid = CAST(:t AS regclass) AND s.relkind = 'S'"
        ),
        {"t": table},
    ).scalars():
        op.execute(f"ALTER SEQUENCE {sequence} OWNED BY {plain}.seq")
    op.execute(f"DROP TABLE {table} CASCADE")
    op.execute(f"ALTER TABLE {plain} RENAME TO {table}")
    op.execute(f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS ck_{table}_legacy_range")
    if table == "booking_requests":
        op.create_primary_key("pk_booking_requests", table, ["seq"])
        op.create_unique_constraint("uq_booking_requests_id", table, ["id"])
        op.create_foreign_key(
            "fk_booking_requests_client_id_api_clients", table, "api_clients", ["client_id"], ["id"]
        )
        op.create_index(
            "ix_booking_requests_provider_id_status_seq", table, ["provider_id", "status", "seq"]
        )
        op.create_index("ix_booking_requests_booking_id", table, ["booking_id"])
        op.create_index(
            "ix_booking_requests_pending",
            table,
            ["seq"],
            postgresql_where=sa.text("status = 'pending'"),
        )
    else:
        op.create_primary_key("pk_events", table, ["id"])
        op.create_index(
            "ix_events_unpublished",
            table,
            ["created_at"],
            postgresql_where=sa.text("published_at IS NULL"),
        )
