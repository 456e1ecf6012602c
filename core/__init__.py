"""The observatory engine: projects, contributors, observations, media, quality, moderation
and export, with services plugged in through pluggy hooks."""

from core.hookspecs import for_kinds, hookimpl

__all__ = ["for_kinds", "hookimpl"]
__version__ = "0.1.0"
