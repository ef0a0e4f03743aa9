"""Interactive API docs (Swagger UI at /docs, ReDoc at /docs/redoc) that work with no network.

The UIs' JavaScript and CSS come from an installed package (drf-spectacular-sidecar, which
ships the Swagger UI and ReDoc distribution builds as plain files) and are served by this app
under /docs/assets; the pages load nothing from anywhere else.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any

from litestar import MediaType, Request, Router, get
from litestar.openapi.plugins import RedocRenderPlugin, SwaggerRenderPlugin
from litestar.static_files import create_static_files_router

ASSETS_PATH = "/docs/assets"
_SIDECAR = Path(str(files("drf_spectacular_sidecar"))) / "static" / "drf_spectacular_sidecar"
_FAVICON = (
    f"<link rel='icon' type='image/png' href='{ASSETS_PATH}/swagger-ui-dist/favicon-32x32.png'>"
)

SWAGGER = SwaggerRenderPlugin(
    js_url=f"{ASSETS_PATH}/swagger-ui-dist/swagger-ui-bundle.js",
    css_url=f"{ASSETS_PATH}/swagger-ui-dist/swagger-ui.css",
    standalone_preset_js_url=f"{ASSETS_PATH}/swagger-ui-dist/swagger-ui-standalone-preset.js",
    path="/swagger",
    favicon=_FAVICON,
)
REDOC = RedocRenderPlugin(
    js_url=f"{ASSETS_PATH}/redoc/bundles/redoc.standalone.js",
    google_fonts=False,
    path="/redoc",
    favicon=_FAVICON,
)


@get("/docs", include_in_schema=False, media_type=MediaType.HTML, sync_to_thread=False)
def swagger_ui(request: Request[Any, Any, Any]) -> bytes:
    """Swagger UI over this app's OpenAPI document."""
    return SWAGGER.render(request, request.app.openapi_schema.to_schema())


@get("/docs/redoc", include_in_schema=False, media_type=MediaType.HTML, sync_to_thread=False)
def redoc(request: Request[Any, Any, Any]) -> bytes:
    """ReDoc over this app's OpenAPI document."""
    return REDOC.render(request, request.app.openapi_schema.to_schema())


def docs_router() -> Router:
    assets = create_static_files_router(
        path=ASSETS_PATH,
        directories=[_SIDECAR],
        include_in_schema=False,
    )
    return Router(path="/", route_handlers=[swagger_ui, redoc, assets], include_in_schema=False)
