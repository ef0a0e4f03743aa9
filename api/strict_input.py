"""Strict reading of every request before any handler sees it.

What is refused here, each with a problem-details answer and before anything changes:
- the same header twice where one value is meant (Authorization, Idempotency-Key,
  Timezone, Content-Type): 400, instead of silently taking the first;
- an empty Idempotency-Key: 400 (it would otherwise be a real key that every client shares);
- header values with control characters: 400;
- a body that is not JSON by its Content-Type (or has none): 415;
- JSON nested deeper than MAX_JSON_DEPTH: 400, before the decoder's own recursion limit
  turns it into a server error;
- a NUL character (or an unpaired surrogate) in any string of the body, in an object key or in
  a query parameter: 422 naming the field. PostgreSQL cannot store them, in `text` or `jsonb`.
"""

from __future__ import annotations

import re
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import msgspec
from litestar.connection import ASGIConnection
from litestar.enums import ScopeType
from litestar.exceptions import HTTPException
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware import ASGIMiddleware
from litestar.types.asgi_types import HTTPRequestEvent

from api.errors import PROBLEM_JSON, ProblemDetails, problem_type
from domain.errors import BadRequest, FieldError, ValidationFailed

if TYPE_CHECKING:
    from litestar.types import ASGIApp, Receive, ReceiveMessage, Scope, Send

MAX_JSON_DEPTH = 32
_ONE_VALUE_HEADERS = (b"authorization", b"idempotency-key", b"timezone", b"content-type")
_WITH_BODY = {"POST", "PUT", "PATCH", "DELETE"}
_REFUSED_CHARACTERS = re.compile("[\x00\ud800-\udfff]")
_CONTROL_BYTES = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")


class Refused(Exception):
    def __init__(
        self, status: int, code: str, detail: str, errors: list[dict[str, str]] | None = None
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.errors = errors

    def as_error(self) -> Exception:
        """The same refusal as an exception the app's error handlers map to problem details."""
        if self.status == 422:
            return ValidationFailed(
                [FieldError(e["field"], e["message"]) for e in self.errors or []], self.detail
            )
        if self.status == 400:
            return BadRequest(self.detail)
        return HTTPException(status_code=self.status, detail=self.detail)


def refuses_characters(text: str) -> bool:
    """Whether PostgreSQL would refuse to store `text` (NUL, or not encodable as UTF-8)."""
    return _REFUSED_CHARACTERS.search(text) is not None


def _character_error(field: str) -> Refused:
    message = "contains a NUL character or an unpaired surrogate, which cannot be stored"
    return Refused(
        422,
        "validation-failed",
        f"{field}: {message}",
        [{"field": field, "message": message}],
    )


def _is_json(content_type: bytes) -> bool:
    media = content_type.split(b";", 1)[0].strip().lower()
    return media == b"application/json" or (
        media.startswith(b"application/") and media.endswith(b"+json")
    )


def check_headers(headers: list[tuple[bytes, bytes]]) -> None:
    """Headers given twice where one value is meant, or holding control characters."""
    seen: dict[bytes, int] = {}
    for raw_name, value in headers:
        name = raw_name.lower()
        seen[name] = seen.get(name, 0) + 1
        if _CONTROL_BYTES.search(value):
            shown = name.decode("latin-1").title()
            raise Refused(400, "bad-header", f"The {shown} header holds control characters.")
        if name == b"authorization" and b"," in value:
            # Two Authorization headers folded into one by a proxy (RFC 9110 5.3): a key never
            # holds a comma.
            seen[name] += 1
    for name in _ONE_VALUE_HEADERS:
        if seen.get(name, 0) > 1:
            shown = name.decode().title()
            raise Refused(
                400,
                "ambiguous-header",
                f"Send the {shown} header once, with one value.",
            )


def check_query(query_string: bytes) -> None:
    for name, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        if refuses_characters(name) or refuses_characters(value):
            raise _character_error(name if not refuses_characters(name) else "query")


def check_json(body: bytes) -> None:
    """Depth and characters of a JSON body; a body that does not parse is left to the app."""
    try:
        document = msgspec.json.decode(body)
    except RecursionError:
        raise _too_deep() from None
    except msgspec.DecodeError:
        return
    stack: list[tuple[Any, str, int]] = [(document, "", 1)]
    while stack:
        value, path, depth = stack.pop()
        if isinstance(value, str):
            if refuses_characters(value):
                raise _character_error(path or "body")
        elif isinstance(value, dict | list):
            if depth > MAX_JSON_DEPTH:
                raise _too_deep()
            if isinstance(value, dict):
                for key, item in value.items():
                    where = f"{path}.{key}" if path else str(key)
                    if refuses_characters(key):
                        raise _character_error(path or "body")
                    stack.append((item, where, depth + 1))
            else:
                stack.extend((item, f"{path}[{i}]", depth + 1) for i, item in enumerate(value))


def _too_deep() -> Refused:
    return Refused(
        400,
        "malformed-body",
        f"The request body is JSON nested deeper than {MAX_JSON_DEPTH} levels.",
    )


class StrictInput(ASGIMiddleware):
    scopes = (ScopeType.HTTP,)

    def __init__(self, max_body_bytes: int) -> None:
        self.max_body_bytes = max_body_bytes

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        headers: list[tuple[bytes, bytes]] = list(scope.get("headers", []))
        try:
            check_headers(headers)
        except Refused as refused:
            await _answer(send, refused)
            return
        method = scope.get("method", "GET")
        if method in _WITH_BODY and _may_have_body(headers):
            content_type = next((v for n, v in headers if n.lower() == b"content-type"), b"")
            # Checked when the handler first reads the body: after the key and role checks,
            # so a caller without a key learns nothing about what its body would have met.
            receive = _checked_body(receive, content_type, self.max_body_bytes)
        await next_app(scope, receive, send)


def strict_request(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Guard after the key check: an empty Idempotency-Key; query values PostgreSQL refuses."""
    try:
        for name, value in connection.scope.get("headers", []):
            if name.lower() == b"idempotency-key" and not value.strip():
                raise Refused(
                    400,
                    "empty-idempotency-key",
                    "The Idempotency-Key header is empty: send a key of 1 to 255 characters, "
                    "or no header.",
                )
        check_query(connection.scope.get("query_string", b""))
    except Refused as refused:
        raise refused.as_error() from None


def _may_have_body(headers: list[tuple[bytes, bytes]]) -> bool:
    for name, value in headers:
        lowered = name.lower()
        if lowered == b"transfer-encoding":
            return True
        if lowered == b"content-length":
            return value.strip() not in {b"0", b""}
    return False


async def _read_body(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise Refused(
                413, "body-too-large", "The request body is larger than this API accepts."
            )
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _checked_body(receive: Receive, content_type: bytes, limit: int) -> Receive:
    read = False

    async def checked() -> ReceiveMessage:
        nonlocal read
        if read:
            return await receive()
        read = True
        try:
            body = await _read_body(receive, limit)
            if body:
                if not _is_json(content_type):
                    raise Refused(
                        415,
                        "unsupported-media-type",
                        "Send the request body as JSON, with Content-Type: application/json.",
                    )
                check_json(body)
        except Refused as refused:
            raise refused.as_error() from None
        return HTTPRequestEvent(type="http.request", body=body, more_body=False)

    return checked


async def _answer(send: Send, refused: Refused) -> None:
    code = refused.code.replace("-", "_")  # the one style of api.errors.problem
    body = msgspec.json.encode(
        ProblemDetails(
            type=problem_type(code),
            title=HTTPStatus(refused.status).phrase,
            status=refused.status,
            detail=refused.detail,
            code=code,
            errors=refused.errors,
        )
    )
    await send(
        {
            "type": "http.response.start",
            "status": refused.status,
            "headers": [
                (b"content-type", PROBLEM_JSON.encode()),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})
