"""Static files under ``/assets``: the pages' own CSS and JavaScript, and Leaflet with its
marker clustering from the ``xstatic-leaflet`` and ``xstatic-leaflet-markercluster`` packages
(installed from PyPI, served by the engine: nothing comes from a CDN)."""

from __future__ import annotations

from pathlib import Path

import xstatic.pkg.leaflet as leaflet
import xstatic.pkg.leaflet_markercluster as markercluster
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

OWN = Path(__file__).parent / "static"
FOLDERS: dict[str, Path] = {
    "web": OWN,
    "leaflet": Path(leaflet.BASE_DIR),
    "markercluster": Path(markercluster.BASE_DIR),
}


def mount_assets(app: FastAPI) -> None:
    for name, folder in FOLDERS.items():
        app.mount(f"/assets/{name}", StaticFiles(directory=folder), name=f"assets-{name}")
