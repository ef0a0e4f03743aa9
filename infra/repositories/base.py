"""What every repository sends its SQL through, and the tables they read and write."""

from __future__ import annotations

from typing import Any, Protocol

from sqlalchemy import CursorResult, Dialect, Executable, Table, Update, func, select

from infra.tables import (
    ApiClientRow,
    BookingRequestRow,
    BookingRow,
    EventRow,
    ProviderRow,
    ScheduleOverrideRow,
)


class Statements(Protocol):
    """Where repositories send their SQL: a connection, or one taken at first use."""

    @property
    def dialect(self) -> Dialect: ...
    async def execute(self, statement: Executable, parameters: Any = None) -> CursorResult[Any]: ...
    async def scalar(self, statement: Executable, parameters: Any = None) -> Any: ...


PROVIDERS: Table = ProviderRow.__table__  # type: ignore[assignment]
OVERRIDES: Table = ScheduleOverrideRow.__table__  # type: ignore[assignment]
BOOKINGS: Table = BookingRow.__table__  # type: ignore[assignment]
REQUESTS: Table = BookingRequestRow.__table__  # type: ignore[assignment]
CLIENTS: Table = ApiClientRow.__table__  # type: ignore[assignment]
EVENTS: Table = EventRow.__table__  # type: ignore[assignment]


def relaxed(statement: Update, db: Statements) -> Update:
    """`statement`, committing without waiting for the disk where PostgreSQL allows it.

    For attempt counts: losing one in a database crash costs one extra retry at most.
    set_config(..., true) lasts for the statement's own transaction, and PostgreSQL reads
    synchronous_commit when that transaction commits; as an uncorrelated subquery it runs
    once, before anything else.
    """
    if db.dialect.name != "postgresql":
        return statement
    setting = select(func.set_config("synchronous_commit", "off", True))
    return statement.where(setting.scalar_subquery() == "off")
