"""`GET /metrics` and the per-route HTTP metrics every request feeds."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from litestar import Controller, Response, get
from litestar.enums import ScopeType
from litestar.exceptions import HTTPException
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from api.dependencies import Injected

# Prometheus' text exposition format.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Every metric of the API's processes, as text, read fresh.
Scrape = Callable[[], Awaitable[bytes]]
# (method, route template, status, seconds) of one HTTP request.
RecordRequest = Callable[[str, str, int, float], None]


class MetricsController(Controller):
    path = "/metrics"
    tags = ["operations"]

    @get(include_in_schema=False)
    async def scrape(self, scrape: Injected[Scrape]) -> Response[bytes]:
        """Prometheus text format: every API process's metrics, and each partition's queue depth."""
        return Response(await scrape(), media_type=CONTENT_TYPE)


class HttpMetricsMiddleware:
    """Counts each request and times it, labelled with the route template (never the raw path).

    Litestar runs route middleware after routing, so `path_template` is known; a path that
    matches no route never gets here and is not counted (its label would be unbounded).
    """

    def __init__(self, app: ASGIApp, record: RecordRequest) -> None:
        self.app = app
        self.record = record

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        except HTTPException as exc:  # raised by middleware further in; answered further out
            status = exc.status_code
            raise
        finally:
            self.record(
                scope.get("method", ""),
                scope.get("path_template") or "unmatched",
                status,
                time.perf_counter() - started,
            )
