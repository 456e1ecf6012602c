"""mobile_bridge: feed (to be written)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()


def on_assessed(observation: object, flags: object, grade: str, project: object, engine: object) -> None:
    """An observation's results are in: an entry in its contributor's (and followers') feed."""


def on_status_change(observation: object, old: str, new: str, project: object, engine: object) -> None:
    """A moderation decision (trash: a tombstone) in the feed."""


def on_comment(comment: object, observation: object, project: object, engine: object) -> None:
    """A comment in the feed of the observation's contributor (and followers)."""
