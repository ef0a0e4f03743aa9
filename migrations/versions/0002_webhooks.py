"""Webhooks: secret rotation, failing streaks, per-booking event sequence, one delivery per
(event, target), and the attempt log.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Instant = sa.DateTime(timezone=True)
SeqKey = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.add_column("events", sa.Column("sequence", sa.BigInteger(), nullable=True))

    op.add_column("webhook_endpoints", sa.Column("previous_secret", sa.String(100), nullable=True))
    op.add_column("webhook_endpoints", sa.Column("previous_secret_until", Instant, nullable=True))
    op.add_column("webhook_endpoints", sa.Column("failing_since", Instant, nullable=True))
    op.add_column("webhook_endpoints", sa.Column("disabled_reason", sa.Text(), nullable=True))
    op.create_index(
        "ix_webhook_endpoints_created_at_id", "webhook_endpoints", ["created_at", "id"]
    )

    # "callback" or the endpoint's id: the endpoint id alone is cleared when it is deleted.
    op.add_column(
        "webhook_deliveries",
        sa.Column("target", sa.String(40), server_default=sa.text("''"), nullable=False),
    )
    op.add_column(
        "webhook_deliveries",
        sa.Column("event_type", sa.String(64), server_default=sa.text("''"), nullable=False),
    )
    op.add_column("webhook_deliveries", sa.Column("event_created_at", Instant, nullable=True))
    op.create_index(
        "uq_webhook_deliveries_event_id_target",
        "webhook_deliveries",
        ["event_id", "target"],
        unique=True,
    )
    op.create_index(
        "ix_webhook_deliveries_due",
        "webhook_deliveries",
        ["next_attempt_at"],
        postgresql_where=sa.text("status = 'pending'"),
        sqlite_where=sa.text("status = 'pending'"),
    )

    # No foreign keys: deliveries may move to time-partitioned tables.
    op.create_table(
        "webhook_attempts",
        sa.Column("id", SeqKey, autoincrement=True, nullable=False),
        sa.Column("delivery_id", sa.Uuid(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("started_at", Instant, nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("response_body", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_attempts")),
    )
    op.create_index(
        "ix_webhook_attempts_delivery_id_attempt", "webhook_attempts", ["delivery_id", "attempt"]
    )


def downgrade() -> None:
    op.drop_table("webhook_attempts")
    op.drop_index("ix_webhook_deliveries_due", table_name="webhook_deliveries")
    op.drop_index("uq_webhook_deliveries_event_id_target", table_name="webhook_deliveries")
    op.drop_index("ix_webhook_endpoints_created_at_id", table_name="webhook_endpoints")
    with op.batch_alter_table("webhook_deliveries") as batch:
        for column in ("event_created_at", "event_type", "target"):
            batch.drop_column(column)
    with op.batch_alter_table("webhook_endpoints") as batch:
        for column in ("disabled_reason", "failing_since", "previous_secret_until", "previous_secret"):
            batch.drop_column(column)
    with op.batch_alter_table("events") as batch:
        batch.drop_column("sequence")
