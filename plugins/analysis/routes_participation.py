"""Routes of the analysis service: participation analytics for staff (filled in by its area)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
