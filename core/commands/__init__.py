"""The engine's own command groups beyond the basics of ``core.cli``, one module per area.

Each module has ``register(cli: click.Group) -> None``; ``core.cli.build_cli`` calls every one
(in name order), as it calls plugins' ``register_commands``.
"""

from __future__ import annotations

import importlib
import pkgutil

import click


def register_all(cli: click.Group) -> None:
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        importlib.import_module(f"{__name__}.{info.name}").register(cli)
