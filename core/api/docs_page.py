"""The interactive API docs at /docs, served with their own Swagger UI files.

FastAPI's default page loads Swagger UI from a public CDN, so behind a firewall, or on a field
laptop without internet, it stays blank. The engine serves the Swagger UI 5 files (Apache-2.0)
that the ``fastapi-swagger`` package ships, from ``/docs/assets``: the page needs nothing from
outside. (``swagger-ui-bundle`` ships Swagger UI 4, which cannot read OpenAPI 3.1, the version
FastAPI writes.)
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

DOCS_PATH = "/docs"
ASSETS_PATH = f"{DOCS_PATH}/assets"


def swagger_ui_folder() -> Path:
    """swagger-ui-bundle.js, swagger-ui.css and favicon-32x32.png, as a package ships them."""
    return Path(str(resources.files("fastapi_swagger") / "resources"))


def install_docs_page(app: FastAPI, openapi_url: str = "/openapi.json") -> None:
    """Serve Swagger UI for ``openapi_url`` at /docs, its scripts and styles from this server."""
    app.mount(ASSETS_PATH, StaticFiles(directory=swagger_ui_folder()), name="docs-assets")

    @app.get(DOCS_PATH, include_in_schema=False)
    async def docs_page() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title}: API docs",
            swagger_js_url=f"{ASSETS_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_PATH}/favicon-32x32.png",
        )
