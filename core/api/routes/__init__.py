"""The engine's routes, one module per area, each with a ``router``: every module here is served.

``routers()`` gives them in a fixed order: the basics first, then the rest by name.
"""

from __future__ import annotations

import importlib
import pkgutil

from fastapi import APIRouter

FIRST = ("health", "projects", "observations", "moderation", "media", "audit", "exports", "plugins")


def routers() -> list[APIRouter]:
    names = [m.name for m in pkgutil.iter_modules(__path__)]
    ordered = [n for n in FIRST if n in names] + sorted(n for n in names if n not in FIRST)
    return [importlib.import_module(f"{__name__}.{name}").router for name in ordered]
