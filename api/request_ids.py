"""X-Request-ID: taken from the client (or made up), echoed back, and on every log line."""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar

from litestar.datastructures import MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from structlog.contextvars import bind_contextvars, clear_contextvars

HEADER = "x-request-id"
# A client's id is kept only if it is short and plain, so it cannot forge log structure.
_ACCEPTABLE = re.compile(r"[A-Za-z0-9._:\-]{1,128}")

current_request_id: ContextVar[str | None] = ContextVar("current_request_id", default=None)


def _request_id(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            given = value.decode("latin-1")
            if _ACCEPTABLE.fullmatch(given):
                return given
            break
    return uuid.uuid4().hex


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        current_request_id.set(request_id)
        # structlog's context: every line logged while handling this request carries the id.
        clear_contextvars()
        bind_contextvars(request_id=request_id)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableScopeHeaders.from_message(message)[HEADER] = request_id
            await send(message)

        await self.app(scope, receive, send_with_id)
