"""Liveness and readiness, without auth."""

from __future__ import annotations

import asyncio
import logging
from typing import Literal

import msgspec
from litestar import Controller, Response, get
from litestar.openapi.datastructures import ResponseSpec

from api.dependencies import Injected, Probes
from api.examples import examples

log = logging.getLogger(__name__)
READY_TIMEOUT_SECONDS = 2.0


Check = Literal["ok", "unavailable"]


class Health(msgspec.Struct, omit_defaults=True):
    """`ok`, or `unavailable` with what is not reachable."""

    status: Check
    database: Check | None = None
    redis: Check | None = None


class HealthController(Controller):
    path = "/health"
    tags = ["operations"]

    @get(
        "/live",
        summary="Liveness",
        operation_id="live",
        responses={
            200: ResponseSpec(Health, description="Up", examples=examples(up={"status": "ok"}))
        },
    )
    async def live(self) -> Health:
        """The process is up and serving (no key needed; no dependency is checked)."""
        return Health(status="ok")

    @get(
        "/ready",
        summary="Readiness",
        operation_id="ready",
        responses={
            200: ResponseSpec(
                Health,
                description="The database and Redis answer",
                examples=examples(ready={"status": "ok", "database": "ok", "redis": "ok"}),
            ),
            503: ResponseSpec(
                Health,
                description="Not ready: the database or Redis does not answer",
                examples=examples(
                    redis_down={"status": "unavailable", "database": "ok", "redis": "unavailable"}
                ),
            ),
        },
    )
    async def ready(self, probes: Injected[Probes]) -> Response[Health]:
        """The database and Redis answer within 2 seconds: 200, else 503 naming the one that
        does not (no key needed). Take the replica out of rotation while it is 503."""

        async def check(probe: asyncio.Future[object] | object) -> Check:
            try:
                await asyncio.wait_for(probe, READY_TIMEOUT_SECONDS)  # type: ignore[arg-type]
            except Exception as exc:  # readiness reports any failure rather than raising it
                log.warning("readiness check failed: %r", exc)
                return "unavailable"
            return "ok"

        database = await check(probes["database"]())
        redis = await check(probes["redis"]())
        ok = database == "ok" and redis == "ok"
        return Response(
            Health(status="ok" if ok else "unavailable", database=database, redis=redis),
            status_code=200 if ok else 503,
        )
