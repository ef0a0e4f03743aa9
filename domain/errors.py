"""Domain errors: plain exceptions that the API maps to problem details in one place."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FieldError:
    field: str
    message: str


class DomainError(Exception):
    """Base of every error a client can cause."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotFound(DomainError):
    pass


class ValidationFailed(DomainError):
    """The input is well formed but breaks a rule (HTTP 422)."""

    def __init__(self, errors: list[FieldError], detail: str | None = None) -> None:
        super().__init__(detail or "; ".join(f"{e.field}: {e.message}" for e in errors))
        self.errors = errors


class BadRequest(DomainError):
    """The request itself cannot be read (HTTP 400): a bad header or cursor."""


class Conflict(DomainError):
    pass


class DuplicateKey(Conflict):
    """An insert met a row with the same unique key (an Idempotency-Key raced another)."""


class Forbidden(DomainError):
    pass


class BookingRejected(DomainError):
    """A booking request breaks a booking rule; `code` is a rejection code (docs/reference.md)."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code


class Unavailable(Exception):
    """The record cannot be reached right now (a dropped connection, a failover): retry.

    Not the client's fault and not a bug; what was being done may or may not have happened,
    so only idempotent steps are retried.
    """
