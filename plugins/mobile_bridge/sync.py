"""mobile_bridge: sync (to be written)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()


def media_arrived(engine: object, sha256: str) -> None:
    """A media file with this sha256 is now stored (a tus upload finished): the items waiting
    for it, when it was their last, are stored as observations. Called by ``tus``."""
