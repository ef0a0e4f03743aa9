"""Liveness and readiness, without auth."""

from __future__ import annotations

import asyncio
import logging

import msgspec
from litestar import Controller, Response, get

from api.dependencies import Injected, Probes

log = logging.getLogger(__name__)
READY_TIMEOUT_SECONDS = 2.0


class Health(msgspec.Struct, omit_defaults=True):
    status: str
    database: str | None = None
    redis: str | None = None


class HealthController(Controller):
    path = "/health"
    tags = ["operations"]

    @get("/live")
    async def live(self) -> Health:
        """The process is up."""
        return Health(status="ok")

    @get("/ready")
    async def ready(self, probes: Injected[Probes]) -> Response[Health]:
        """The database and Redis answer."""

        async def check(probe: asyncio.Future[object] | object) -> str:
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
