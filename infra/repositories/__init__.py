"""All SQL lives here, one module per aggregate. Repositories take a connection and return
domain objects, never rows.

Statements are SQLAlchemy Core on the mapped tables; the ones on hot paths are built once, with
bound parameters, so a request pays for executing them and not for building them.
"""

from infra.repositories.base import Statements
from infra.repositories.booking_requests import SqlBookingRequestRepository
from infra.repositories.bookings import SqlBookingRepository
from infra.repositories.clients import SqlApiClientRepository
from infra.repositories.events import SqlEventRepository
from infra.repositories.pages import decode_cursor, encode_cursor
from infra.repositories.providers import (
    SqlOverrideRepository,
    SqlProviderRepository,
    WeekCache,
    intervals_from_json,
    intervals_to_json,
    week_cache,
    week_from_json,
    week_to_json,
)
from infra.repositories.webhooks import SqlWebhookRepository

__all__ = [
    "SqlApiClientRepository",
    "SqlBookingRepository",
    "SqlBookingRequestRepository",
    "SqlEventRepository",
    "SqlOverrideRepository",
    "SqlProviderRepository",
    "SqlWebhookRepository",
    "Statements",
    "WeekCache",
    "decode_cursor",
    "encode_cursor",
    "intervals_from_json",
    "intervals_to_json",
    "week_cache",
    "week_from_json",
    "week_to_json",
]
