"""``/docs`` (Swagger UI) and ``/redoc`` (ReDoc) with their scripts, styles and icon served by
qthumb, from the copies the fastapi-offline package bundles: FastAPI's defaults load them from
a CDN and fonts from Google, a blank page on a machine without internet that also tells a CDN
who reads the API's docs. Added after every other route, so they cost the API's own requests
nothing."""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

STATIC_URL = "/_qthumb/api-docs"
STATIC_DIR = Path(fastapi_offline.__file__).parent / "static"  # its package data


def add_api_docs(app: FastAPI) -> None:
    openapi = app.openapi_url or "/openapi.json"

    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi,
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{STATIC_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{STATIC_URL}/swagger-ui.css",
            swagger_favicon_url=f"{STATIC_URL}/favicon.png",
        )

    async def redoc() -> HTMLResponse:
        """ReDoc's footer logo, which it loads from its vendor's CDN, is not fetched: the page
        allows images from qthumb only."""
        page = get_redoc_html(
            openapi_url=openapi,
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{STATIC_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{STATIC_URL}/favicon.png",
            with_google_fonts=False,
        )
        page.headers["Content-Security-Policy"] = "img-src 'self' data:"
        return page

    app.add_api_route("/docs", swagger_ui, include_in_schema=False)
    app.add_api_route("/redoc", redoc, include_in_schema=False)
    app.mount(STATIC_URL, StaticFiles(directory=STATIC_DIR), name="api-docs-static")
