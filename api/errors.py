"""The one place that turns errors into RFC 9457 problem details. Client mistakes are never 500s."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

import msgspec
import redis.exceptions
import sqlalchemy.exc
from litestar import Request, Response
from litestar.exceptions import HTTPException, SerializationException, ValidationException
from litestar.openapi.datastructures import ResponseSpec
from litestar.types import ExceptionHandlersMap

from domain.errors import (
    BadRequest,
    BookingRejected,
    Conflict,
    DomainError,
    FieldError,
    Forbidden,
    NotFound,
    ValidationFailed,
)

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"


class NotAuthenticated(DomainError):
    """No API key, or one we do not know."""


class TooBusy(DomainError):
    """Past a cap on concurrent work (per key or per process): 429, retry after a while."""

    def __init__(self, detail: str, retry_after: int = 1) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class ProblemDetails(msgspec.Struct, omit_defaults=True):
    type: str
    title: str
    status: int
    detail: str
    errors: list[dict[str, str]] | None = None
    code: str | None = None


def problem(
    status: int,
    detail: str,
    slug: str | None = None,
    errors: list[FieldError] | None = None,
    headers: dict[str, str] | None = None,
    code: str | None = None,
) -> Response[ProblemDetails]:
    body = ProblemDetails(
        type=f"urn:booking:problem:{slug}" if slug else "about:blank",
        title=HTTPStatus(status).phrase,
        status=status,
        detail=detail,
        errors=[{"field": e.field, "message": e.message} for e in errors] if errors else None,
        code=code,
    )
    return Response(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def problems(*statuses: int) -> dict[int, ResponseSpec]:
    """OpenAPI entries for the problem-details answers an operation can give."""
    return {
        status: ResponseSpec(
            ProblemDetails,
            description=HTTPStatus(status).phrase,
            media_type=PROBLEM_JSON,
            generate_examples=False,
        )
        for status in statuses
    }


# What the /v1 operations can answer besides success: every one needs a key (401) and may get
# a malformed header, query or body (400) or a well-formed but wrong value (422).
READ_PROBLEMS = problems(400, 401, 404, 422, 503)
WRITE_PROBLEMS = problems(400, 401, 403, 404, 409, 413, 422, 503)


_DOMAIN_STATUS: list[tuple[type[DomainError], int, str]] = [
    (NotAuthenticated, 401, "unauthenticated"),
    (Forbidden, 403, "forbidden"),
    (NotFound, 404, "not-found"),
    (Conflict, 409, "conflict"),
    (BadRequest, 400, "bad-request"),
]


def domain_error(_: Request[Any, Any, Any], exc: DomainError) -> Response[ProblemDetails]:
    if isinstance(exc, ValidationFailed):
        return problem(422, exc.detail, "validation-failed", errors=exc.errors)
    if isinstance(exc, BookingRejected):
        return problem(
            422,
            exc.detail,
            f"booking-{exc.code}",
            errors=[FieldError("start", exc.detail)],
            code=exc.code,
        )
    if isinstance(exc, TooBusy):
        return problem(429, exc.detail, "too-busy", headers={"Retry-After": str(exc.retry_after)})
    for kind, status, slug in _DOMAIN_STATUS:
        if isinstance(exc, kind):
            headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
            return problem(status, exc.detail, slug, headers=headers)
    return problem(400, exc.detail, "bad-request")  # pragma: no cover - every kind is listed


def _field_errors(exc: ValidationException) -> list[FieldError]:
    errors: list[FieldError] = []
    for item in exc.extra if isinstance(exc.extra, list) else []:
        if isinstance(item, dict):
            field = str(item.get("key") or item.get("source") or "body")
            errors.append(FieldError(field, str(item.get("message", "is not valid"))))
    return errors


def validation_error(
    request: Request[Any, Any, Any], exc: ValidationException
) -> Response[ProblemDetails]:
    errors = _field_errors(exc)
    if not errors:
        errors = [FieldError("body", str(exc.detail))]
    detail = "; ".join(f"{e.field}: {e.message}" for e in errors)
    return problem(422, detail, "validation-failed", errors=errors)


def http_error(_: Request[Any, Any, Any], exc: HTTPException) -> Response[ProblemDetails]:
    status = exc.status_code
    if status >= 500:
        log.error("server error: %s", exc.detail)
        return problem(status, "The server could not process this request.")
    detail = str(exc.detail) or HTTPStatus(status).phrase
    if isinstance(exc.__cause__, SerializationException):
        return problem(400, f"The request body is not valid JSON: {detail}", "malformed-body")
    if status == 413:
        detail = "The request body is larger than this API accepts."
    headers = {
        k: v for k, v in (exc.headers or {}).items() if k.lower() in {"allow", "retry-after"}
    }
    return problem(status, detail, headers=headers or None)


def unavailable(request: Request[Any, Any, Any], exc: Exception) -> Response[ProblemDetails]:
    """The database (or Redis, where it is needed) cannot be reached: a passing condition."""
    log.warning("dependency unavailable on %s %s: %r", request.method, request.url.path, exc)
    return problem(
        503,
        "A service this request needs is not reachable right now; retry shortly.",
        "unavailable",
        headers={"Retry-After": "1"},
    )


def unexpected_error(request: Request[Any, Any, Any], exc: Exception) -> Response[ProblemDetails]:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem(500, "The server could not process this request.")


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    DomainError: domain_error,
    ValidationException: validation_error,
    HTTPException: http_error,
    # Connections refused, dropped or exhausted; not a programming error in a statement.
    sqlalchemy.exc.OperationalError: unavailable,
    sqlalchemy.exc.InterfaceError: unavailable,
    sqlalchemy.exc.TimeoutError: unavailable,
    redis.exceptions.ConnectionError: unavailable,
    redis.exceptions.TimeoutError: unavailable,
    ConnectionError: unavailable,  # a refused connect surfaces unwrapped from asyncpg
    Exception: unexpected_error,
}
