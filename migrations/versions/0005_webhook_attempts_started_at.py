"""Retention finds old webhook attempts through an index on started_at.

Built CONCURRENTLY on PostgreSQL, so the API and the webhook workers keep writing attempts
while it builds. An interrupted build leaves an invalid index: drop it
(`DROP INDEX CONCURRENTLY ix_webhook_attempts_started_at`) and migrate again.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "ix_webhook_attempts_started_at"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        op.create_index(INDEX, "webhook_attempts", ["started_at"])
        return
    with op.get_context().autocommit_block():
        op.get_bind().exec_driver_sql(
            f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {INDEX} ON webhook_attempts (started_at)"
        )


def downgrade() -> None:
    op.drop_index(INDEX, table_name="webhook_attempts")
