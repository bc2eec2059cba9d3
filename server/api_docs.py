"""``/docs``: Swagger UI served entirely by this server (decision 0056).

Litestar's Swagger plugin loads Swagger UI's JavaScript, CSS and favicon from a CDN, so the
page is blank on an offline or air-gapped install. The ``swagger-ui-bundle-v2`` package ships
Swagger UI's distribution files; they are served under ``/docs/<version>/`` (the version in the
path lets browsers cache them for a day and still fetch the new files after an upgrade).
"""

from __future__ import annotations

from pathlib import Path

from litestar import Router
from litestar.datastructures import CacheControlHeader
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.static_files import create_static_files_router
from swagger_ui_bundle import swagger_ui_path

_ASSETS = Path(str(swagger_ui_path))
ASSETS_PATH = f"/docs/{_ASSETS.name}"  # e.g. /docs/swagger-ui-5.31.0


def swagger_render_plugin() -> SwaggerRenderPlugin:
    """The Swagger UI page at ``/docs``, its assets from ``ASSETS_PATH`` (same origin)."""
    return SwaggerRenderPlugin(
        path="/",
        js_url=f"{ASSETS_PATH}/swagger-ui-bundle.js",
        css_url=f"{ASSETS_PATH}/swagger-ui.css",
        standalone_preset_js_url=f"{ASSETS_PATH}/swagger-ui-standalone-preset.js",
        favicon=f"<link rel='icon' type='image/png' href='{ASSETS_PATH}/favicon-32x32.png'>",
    )


def swagger_assets_router() -> Router:
    """Swagger UI's distribution files, public like the page that loads them."""
    return create_static_files_router(
        path=ASSETS_PATH,
        directories=[_ASSETS],
        name="swagger-ui-assets",
        cache_control=CacheControlHeader(max_age=86400, public=True),
        include_in_schema=False,
    )
