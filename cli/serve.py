"""Running the ASGI server."""

from __future__ import annotations

from granian import Granian
from granian.constants import Interfaces, Loops
from granian.log import LogLevels


def serve_api(host: str, port: int, workers: int, log_level: str) -> None:
    Granian(
        target="api.asgi:app_from_env",
        factory=True,
        address=host,
        port=port,
        interface=Interfaces.ASGI,
        workers=workers,
        loop=Loops.auto,
        log_level=LogLevels(log_level.lower())
        if log_level.lower() in LogLevels.__members__
        else LogLevels.info,
        respawn_failed_workers=True,
        backlog=2048,
    ).serve()
