"""Alembic environment: targets infra's metadata; the URL comes from the caller or Settings."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, engine_from_config, pool

from infra.database import sync_url
from infra.partitions import include_in_autogenerate
from infra.settings import Settings
from infra.tables import Base

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    given = config.get_main_option("sqlalchemy.url")
    return sync_url(given or Settings.from_env().database_url)


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        # Each file commits by itself: some migrations build indexes CONCURRENTLY part way.
        transaction_per_migration=True,
        include_object=include_in_autogenerate,
    )


def run_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = engine_from_config(
        {"sqlalchemy.url": _url()}, prefix="sqlalchemy.", poolclass=pool.NullPool
    )
    with engine.connect() as connection:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
