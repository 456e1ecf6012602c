"""Commands of the analysis service (filled in by its area)."""

from __future__ import annotations

import click


def add_commands(cli: click.Group, analyse: click.Group) -> None:
    """Add this area's commands to the engine's CLI (``cli``) or its ``analyse`` group."""
