"""The analysis service's hooks: its commands (``observatory analyse ...``, ``observatory
report``, ``observatory datathon ...``) and routes (``/api/v1/analytics/...``).

Each area adds its own commands and routes (``cli_*.add_commands``, ``routes_*.router``), so
this file only gathers them."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import click

from core import hookimpl

CLI_MODULES = ("cli_frames", "cli_plots", "cli_participation", "cli_datathon")
ROUTE_MODULES = ("routes_participation",)


@click.group("analyse")
def analyse() -> None:
    """Data frames, plots and participation analytics of projects (the analysis service)."""


@hookimpl
def register_commands(cli: Any) -> None:
    cli.add_command(analyse)
    for name in CLI_MODULES:
        module = importlib.import_module(f"plugins.analysis.{name}")
        module.add_commands(cli, analyse)


@hookimpl
def register_routes(register: Callable[..., None]) -> None:
    for name in ROUTE_MODULES:
        register(importlib.import_module(f"plugins.analysis.{name}").router)
