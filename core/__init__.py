"""The observatory engine: projects, contributors, observations, media, quality, moderation
and export, with services plugged in through pluggy hooks."""

from core.hookspecs import hookimpl

__all__ = ["hookimpl"]
__version__ = "0.1.0"
