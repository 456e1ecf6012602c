"""``observatory plugin new NAME``: writes a ready package for a new plugin, from the files of
``core/plugin_template``."""

from __future__ import annotations

import json
import re
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

import click

ENGINE_DIST = "observatory-engine"  # the engine's distribution (pyproject.toml), which a plugin depends on
PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")
NAME_RULE = re.compile(r"^[a-z][a-z0-9_]*$")


class ScaffoldError(ValueError):
    """The plugin's name or its folder cannot be used; the message says why."""


def check_name(name: str) -> None:
    """Raise ScaffoldError unless ``name`` can name a plugin: a lower-case Python identifier."""
    if not name.isidentifier():
        raise ScaffoldError(f"{name!r} is not a Python identifier: use letters, digits and '_' "
                            "(not first), e.g. birds or night_owl")
    if not NAME_RULE.match(name):
        raise ScaffoldError(f"{name!r}: a plugin's name is lower case, letters, digits and '_', starting with a "
                            f"letter, e.g. {name.lower().strip('_') or 'birds'!r}")


def package_dir_name(name: str) -> str:
    return f"observatory-{name.replace('_', '-')}"


def _files(folder: Traversable, relative: Path = Path()) -> list[tuple[Path, Traversable]]:
    found = []
    for item in sorted(folder.iterdir(), key=lambda i: i.name):
        if item.is_dir():
            found += _files(item, relative / item.name)
        elif item.name.endswith(".tmpl"):
            found.append((relative / item.name.removesuffix(".tmpl"), item))
    return found


def _render(text: str, values: dict[str, str], source: str) -> str:
    def value(match: re.Match[str]) -> str:
        if match.group(1) not in values:
            raise KeyError(f"{source}: unknown placeholder {match.group(0)}")
        return values[match.group(1)]

    return PLACEHOLDER.sub(value, text)


def write_package(name: str, directory: Path) -> Path:
    """Write the package ``observatory-NAME`` in ``directory`` and return its folder.

    Raises ScaffoldError for a bad name or a folder that exists already (nothing is written)."""
    from core import __version__

    check_name(name)
    target = directory / package_dir_name(name)
    if target.exists():
        raise ScaffoldError(f"{target} exists already: choose another name, or another folder with --dir")
    module = f"observatory_{name}"
    values = {"name": name, "module": module, "dist": package_dir_name(name), "engine_dist": ENGINE_DIST,
              "engine_version": __version__}
    files = _files(resources.files("core.plugin_template").joinpath("files"))
    schema = next(item for path, item in files if path.name == "settings.schema.json")
    values["settings_inline"] = json.dumps(json.loads(_render(schema.read_text(encoding="utf-8"), values, "schema")))
    rendered = [(Path(*(module if part == "MODULE" else part for part in path.parts)),
                 _render(item.read_text(encoding="utf-8"), values, str(path))) for path, item in files]
    for path, text in rendered:
        (target / path).parent.mkdir(parents=True, exist_ok=True)
        (target / path).write_text(text, encoding="utf-8")
    return target


def register(cli: click.Group) -> None:
    @cli.group(help="Write a new plugin as its own package (docs/hackathon_plugin.md).\n\n\b\nExamples:\n"
               "  observatory plugin new birds")
    def plugin() -> None:
        pass

    @plugin.command("new", help="Write a ready package observatory-NAME/ for the plugin NAME (a lower-case Python "
                    "identifier): pyproject.toml with the entry point, the hooks (two working, the rest "
                    "commented), a settings schema, a README and tests that pass against a real engine. "
                    "docs/hackathon_plugin.md goes on from there.\n\n\b\nExamples:\n"
                    "  observatory plugin new birds\n  observatory plugin new night_owl --dir ~/src")
    @click.argument("name")
    @click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path), default=Path("."),
                  show_default=True, help="the folder to write observatory-NAME/ in")
    def plugin_new(name: str, directory: Path) -> None:
        from core.cli import EXIT_INVALID, fail

        try:
            target = write_package(name, directory)
        except ScaffoldError as exc:
            fail(str(exc), EXIT_INVALID)
        for path in sorted(p for p in target.rglob("*") if p.is_file()):
            click.echo(f"  {path.relative_to(directory)}")
        shown = target if target.is_absolute() else f"./{target}"  # pip reads a bare name as a package's
        click.echo(f"\nplugin {name!r} written to {target}. Next:\n"
                   f"  1. pip install -e {shown}\n"
                   f"  2. offer and enable '{name}' in registry.yaml (the snippet is in {target / 'README.md'})\n"
                   f"  3. cd {target} && python -m pytest")
