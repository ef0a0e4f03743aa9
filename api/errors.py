"""The one place that turns errors into RFC 9457 problem details. Client mistakes are never 500s."""

from __future__ import annotations

import logging
import re
from http import HTTPStatus
from typing import Annotated, Any

import msgspec
import redis.exceptions
import sqlalchemy.exc
from litestar import Request, Response
from litestar.exceptions import HTTPException, SerializationException, ValidationException
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Example
from litestar.types import ExceptionHandlersMap

from api.common import CALLBACK_URL_PATTERN, START_PATTERN, WALL_END_PATTERN, WALL_START_PATTERN
from domain.errors import (
    BadRequest,
    BookingRejected,
    Conflict,
    DomainError,
    FieldError,
    Forbidden,
    NotFound,
    Unavailable,
    ValidationFailed,
)

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
PROBLEM_TYPE_PREFIX = "urn:booking:problem:"


class NotAuthenticated(DomainError):
    """No API key, or one we do not know."""


class TooBusy(DomainError):
    """Past a cap on concurrent work (per key or per process): 429, retry after a while."""

    def __init__(self, detail: str, retry_after: int = 1) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class ProblemDetails(msgspec.Struct, omit_defaults=True):
    """An RFC 9457 problem: `type` is `urn:booking:problem:<code>`, `code` the same code alone."""

    type: Annotated[
        str,
        msgspec.Meta(
            description="`urn:booking:problem:<code>`; docs/usage.md lists every code.",
            pattern="^urn:booking:problem:[a-z_]+$",
        ),
    ]
    title: Annotated[str, msgspec.Meta(description="The HTTP status's reason phrase.")]
    status: Annotated[int, msgspec.Meta(description="The HTTP status code.", ge=400, le=599)]
    detail: Annotated[str, msgspec.Meta(description="What went wrong, for a person to read.")]
    code: Annotated[
        str,
        msgspec.Meta(
            description="The problem's code, for programs: `not_found`, `validation_failed`, "
            "`slot_unavailable`, ...",
            pattern="^[a-z_]+$",
        ),
    ]
    errors: Annotated[
        list[dict[str, str]] | None,
        msgspec.Meta(
            description='Each field that is wrong: `{"field": <its name in the request, '
            'e.g. `weekly_schedule.monday[1]`>, "message": ...}`.'
        ),
    ] = None


def problem_type(code: str) -> str:
    return f"{PROBLEM_TYPE_PREFIX}{code}"


def problem(
    status: int,
    detail: str,
    code: str | None = None,
    errors: list[FieldError] | None = None,
    headers: dict[str, str] | None = None,
) -> Response[ProblemDetails]:
    """A problem-details answer; `code` defaults to the status's own (`not_found`, ...)."""
    code = (code or status_code_name(status)).replace("-", "_")  # one style, as rejection codes
    body = ProblemDetails(
        type=problem_type(code),
        title=HTTPStatus(status).phrase,
        status=status,
        detail=detail,
        code=code,
        errors=[{"field": e.field, "message": e.message} for e in errors] if errors else None,
    )
    return Response(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


# One example answer per problem code, by status: what a client can meet.
_EXAMPLES: dict[int, list[tuple[str, str, list[FieldError] | None]]] = {
    400: [
        ("empty_body", "request body is empty", None),
        ("malformed_body", "The request body is not valid JSON: Input data was truncated", None),
        (
            "bad_request",
            "Timezone header 'Mars/Olympus' is not a known IANA time zone name "
            "(for example America/New_York).",
            None,
        ),
    ],
    401: [("unauthenticated", "Send an API key as `Authorization: Bearer <key>`.", None)],
    403: [("forbidden", "This needs an admin key.", None)],
    404: [("not_found", "provider 3f9b2c1e-8d4a-4c7e-9b1a-2e5f6a7b8c9d not found", None)],
    409: [
        (
            "conflict",
            "this Idempotency-Key was already used with a different request body",
            None,
        )
    ],
    413: [("body_too_large", "The request body is larger than this API accepts.", None)],
    415: [("unsupported_media_type", "Send the body as application/json.", None)],
    422: [
        (
            "validation_failed",
            "timezone: is required",
            [FieldError("timezone", "is required")],
        ),
        (
            "validation_failed",
            "weekly_schedule.monday[1]: interval 11:00-13:00 overlaps interval 09:00-12:00",
            [
                FieldError(
                    "weekly_schedule.monday[1]",
                    "interval 11:00-13:00 overlaps interval 09:00-12:00",
                )
            ],
        ),
    ],
    429: [("rate_limited", "Too many requests for this API key; retry after a minute.", None)],
    503: [
        (
            "unavailable",
            "A service this request needs is not reachable right now; retry shortly.",
            None,
        )
    ],
}

# What each status means here, for the OpenAPI document.
_MEANING = {
    400: "The request cannot be read: no or malformed JSON, a bad header or cursor.",
    401: "No API key, or one this service does not know.",
    403: "The key's role may not do this.",
    404: "Nothing of yours there (a path id that is not a UUID names nothing either).",
    409: "An id or an Idempotency-Key already used differently.",
    413: "The body is larger than this API accepts (64 KiB).",
    415: "The body is not sent as JSON.",
    422: "Well formed, but breaks a rule; `errors` names each field.",
    429: "Too many requests for this API key; see Retry-After.",
    503: "A service this request needs is not reachable; see Retry-After.",
}


def problem_example(
    status: int, code: str, detail: str, errors: list[FieldError] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": problem_type(code),
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "code": code,
    }
    if errors:
        body["errors"] = [{"field": e.field, "message": e.message} for e in errors]
    return body


def problems(
    *statuses: int, extra: dict[int, list[tuple[str, str]]] | None = None
) -> dict[int, ResponseSpec]:
    """OpenAPI entries for the problem-details answers an operation can give, with examples."""
    specs = {}
    for status in statuses:
        cases = list(_EXAMPLES[status])
        cases += [(code, detail, None) for code, detail in (extra or {}).get(status, [])]
        specs[status] = ResponseSpec(
            ProblemDetails,
            description=_MEANING[status],
            media_type=PROBLEM_JSON,
            generate_examples=False,
            examples=[
                Example(
                    id=f"{status}_{code}_{index}",
                    summary=code,
                    value=problem_example(status, code, detail, errors),
                )
                for index, (code, detail, errors) in enumerate(cases)
            ],
        )
    return specs


# What the /v1 operations can answer besides success: every one needs a key (401), may meet
# a rate limit (429) or a passing outage (503), and may get a malformed header or query (400)
# or a well-formed but wrong value (422).
READ_STATUSES = (400, 401, 404, 422, 429, 503)
WRITE_STATUSES = (400, 401, 403, 404, 409, 413, 415, 422, 429, 503)
READ_PROBLEMS = problems(*READ_STATUSES)
WRITE_PROBLEMS = problems(*WRITE_STATUSES)


_DOMAIN_STATUS: list[tuple[type[DomainError], int, str]] = [
    (NotAuthenticated, 401, "unauthenticated"),
    (Forbidden, 403, "forbidden"),
    (NotFound, 404, "not_found"),
    (Conflict, 409, "conflict"),
    (BadRequest, 400, "bad_request"),
]

# Codes of HTTP errors raised by the framework (routing, body size, media type, rate limits).
_HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
    500: "internal_error",
    503: "unavailable",
}


def status_code_name(status: int) -> str:
    return _HTTP_CODES.get(status) or HTTPStatus(status).phrase.lower().replace(" ", "_")


def domain_error(_: Request[Any, Any, Any], exc: DomainError) -> Response[ProblemDetails]:
    if isinstance(exc, ValidationFailed):
        return problem(422, exc.detail, "validation_failed", errors=exc.errors)
    if isinstance(exc, BookingRejected):
        return problem(422, exc.detail, exc.code, errors=[FieldError("start", exc.detail)])
    if isinstance(exc, TooBusy):
        return problem(429, exc.detail, "too_busy", headers={"Retry-After": str(exc.retry_after)})
    for kind, status, code in _DOMAIN_STATUS:
        if isinstance(exc, kind):
            headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
            return problem(status, exc.detail, code, headers=headers)
    return problem(400, exc.detail, "bad_request")  # pragma: no cover - every kind is listed


_MISSING_FIELD = re.compile(r"Object missing required field `([^`]+)`")
_UNKNOWN_FIELD = re.compile(r"Object contains unknown field `([^`]+)`")


def _body_field(key: str, message: str) -> tuple[str, str]:
    """The body field a decoding error is about, by its real name, and what is wrong with it.

    Litestar reports errors at the top of the body under `data` (the handler's parameter)
    and msgspec names a missing or unknown field only in its message.
    """
    path = "" if key == "data" else key
    for pattern, what in ((_MISSING_FIELD, "is required"), (_UNKNOWN_FIELD, "is not a field here")):
        if found := pattern.search(message):
            name = found.group(1)
            return (f"{path}.{name}" if path else name), what
    return path or "body", message


_PATTERN_MISMATCH = re.compile(r"Expected `str` matching regex '(.+)'")
# What a value that does not match a documented pattern should have looked like.
PATTERN_MEANINGS = {
    WALL_START_PATTERN: "is not a time of day in HH:MM form (00:00 to 23:59; 24:00 may only "
    "end an interval)",
    WALL_END_PATTERN: "is not a time of day in HH:MM form (00:00 to 24:00)",
    CALLBACK_URL_PATTERN: "must be an absolute http:// or https:// URL without credentials",
    START_PATTERN: "is not an RFC 3339 date-time (for example 2026-12-07T09:00:00-05:00; the "
    "offset may be left out)",
}


def _pattern_meaning(message: str) -> str:
    found = _PATTERN_MISMATCH.search(message)
    return PATTERN_MEANINGS.get(found.group(1), message) if found else message


def _field_errors(exc: ValidationException) -> list[FieldError]:
    errors: list[FieldError] = []
    for item in exc.extra if isinstance(exc.extra, list) else []:
        if isinstance(item, dict):
            key = str(item.get("key") or item.get("source") or "body")
            message = str(item.get("message", "is not valid"))
            if item.get("source") == "body" or key == "data":
                key, message = _body_field(key, message)
            errors.append(FieldError(key, _pattern_meaning(message)))
    return errors


def _body_missing(exc: ValidationException) -> bool:
    """Litestar leaves the body parameter unset when there is no body at all."""
    extra = exc.extra if isinstance(exc.extra, list) else []
    return any(
        isinstance(item, dict) and item.get("key") == "data" and item.get("message") == "'data'"
        for item in extra
    )


def validation_error(
    request: Request[Any, Any, Any], exc: ValidationException
) -> Response[ProblemDetails]:
    if _body_missing(exc):
        return problem(400, "request body is empty", "empty_body")
    errors = _field_errors(exc) or [FieldError("body", str(exc.detail))]
    detail = "; ".join(f"{e.field}: {e.message}" for e in errors)
    return problem(422, detail, "validation_failed", errors=errors)


def http_error(_: Request[Any, Any, Any], exc: HTTPException) -> Response[ProblemDetails]:
    status = exc.status_code
    if status >= 500:
        log.error("server error: %s", exc.detail)
        return problem(status, "The server could not process this request.", "internal_error")
    detail = str(exc.detail) or HTTPStatus(status).phrase
    if isinstance(exc.__cause__, SerializationException):
        return problem(400, f"The request body is not valid JSON: {detail}", "malformed_body")
    if status == 413:
        detail = "The request body is larger than this API accepts."
    headers = {
        k: v for k, v in (exc.headers or {}).items() if k.lower() in {"allow", "retry-after"}
    }
    return problem(status, detail, status_code_name(status), headers=headers or None)


def unavailable(request: Request[Any, Any, Any], exc: Exception) -> Response[ProblemDetails]:
    """The database (or Redis, where it is needed) cannot be reached: a passing condition."""
    log.warning("dependency unavailable on %s %s: %r", request.method, request.url.path, exc)
    return problem(
        503,
        "A service this request needs is not reachable right now; retry shortly.",
        "unavailable",
        headers={"Retry-After": "1"},
    )


def database_error(
    request: Request[Any, Any, Any], exc: sqlalchemy.exc.DBAPIError
) -> Response[ProblemDetails]:
    """A driver error: a lost connection is passing (503); anything else is a bug (500)."""
    if exc.connection_invalidated:
        return unavailable(request, exc)
    return unexpected_error(request, exc)


def unexpected_error(request: Request[Any, Any, Any], exc: Exception) -> Response[ProblemDetails]:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem(500, "The server could not process this request.", "internal_error")


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    DomainError: domain_error,
    ValidationException: validation_error,
    HTTPException: http_error,
    # Connections refused, dropped or exhausted; not a programming error in a statement.
    Unavailable: unavailable,
    sqlalchemy.exc.DBAPIError: database_error,
    sqlalchemy.exc.OperationalError: unavailable,
    sqlalchemy.exc.InterfaceError: unavailable,
    sqlalchemy.exc.TimeoutError: unavailable,
    redis.exceptions.ConnectionError: unavailable,
    redis.exceptions.TimeoutError: unavailable,
    ConnectionError: unavailable,  # a refused connect surfaces unwrapped from asyncpg
    Exception: unexpected_error,
}
