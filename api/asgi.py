"""The ASGI entry point for servers: `granian --interface asgi --factory api.asgi:app_from_env`."""

from __future__ import annotations

from litestar import Litestar

from api.app import create_app
from infra.logs import configure_logging
from infra.settings import Settings


def app_from_env() -> Litestar:
    settings = Settings.from_env()
    configure_logging(settings.log_level, settings.log_format)
    return create_app(settings)
