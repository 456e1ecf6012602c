"""Things that must be documented: every hook with its full signature, every CLI command."""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterator
from pathlib import Path

import click
import pytest

from core import hookspecs

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def hook_specs() -> dict[str, list[str]]:
    """Each hook in core/hookspecs.py and its argument names, in the spec's order."""
    marker = f"{hookspecs.PROJECT_NAME}_spec"
    return {
        name: list(inspect.signature(fn).parameters)
        for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
        if hasattr(fn, marker)
    }


HOOKS = hook_specs()


@pytest.fixture(scope="module")
def plugin_hooks_doc() -> str:
    return (DOCS / "plugin_hooks.md").read_text(encoding="utf-8")


def headings(markdown: str, level: int = 2) -> set[str]:
    return set(re.findall(rf"^{'#' * level} +(\S.*?)\s*$", markdown, flags=re.MULTILINE))


def test_the_hook_specs_are_found():
    assert len(HOOKS) >= 10, f"expected the engine's hooks, found {sorted(HOOKS)}"


@pytest.mark.parametrize("hook", sorted(HOOKS))
def test_hook_is_documented_with_its_signature(hook, plugin_hooks_doc):
    assert hook in headings(plugin_hooks_doc), f"docs/plugin_hooks.md has no '## {hook}' heading"
    signature = f"{hook}({', '.join(HOOKS[hook])})"
    assert signature in plugin_hooks_doc, f"docs/plugin_hooks.md does not show the signature {signature}"


def test_documented_hooks_exist(plugin_hooks_doc):
    """A '## name(' style heading for a hook that was renamed or removed is caught too."""
    documented = {h for h in headings(plugin_hooks_doc) if re.fullmatch(r"[a-z_]+", h)}
    assert documented - set(HOOKS) == set(), "docs/plugin_hooks.md documents hooks that core/hookspecs.py lacks"


def walk(group: click.Group, prefix: str = "observatory") -> Iterator[str]:
    """The full name of every command under ``group``, subcommands included."""
    for name, command in sorted(group.commands.items()):
        if command.hidden:
            continue
        path = f"{prefix} {name}"
        yield path
        if isinstance(command, click.Group):
            yield from walk(command, path)


@pytest.fixture(scope="module")
def cli_commands(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """Every command of the CLI that `observatory` builds, with the installed plugins' commands."""
    from core import cli
    from core.config import get_settings

    registry = tmp_path_factory.mktemp("cli") / "registry.yaml"
    registry.write_text("services: {}\nprojects: []\n")  # installed plugins add commands whatever it enables
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OBSERVATORY_REGISTRY_PATH", str(registry))
        mp.setenv("OBSERVATORY_PLUGIN_MODULES", "")
        get_settings.cache_clear()
        try:
            group = cli.build_cli()
        finally:
            get_settings.cache_clear()
    return list(walk(group))


@pytest.fixture(scope="module")
def cli_docs() -> str:
    return "\n".join(
        path.read_text(encoding="utf-8") for path in (ROOT / "README.md", *sorted(DOCS.glob("*.md"))) if path.exists()
    )


def test_the_cli_commands_are_found(cli_commands):
    assert {"observatory submit", "observatory db upgrade"} <= set(cli_commands)


def test_every_cli_command_is_documented(cli_commands, cli_docs):
    """Each command's full name (`observatory tokens create`) appears in README.md or a page of docs/ (docs/cli.md for the engine's own)."""
    missing = [command for command in cli_commands if not re.search(rf"(?<![\w-]){re.escape(command)}(?![\w-])", cli_docs)]
    assert not missing, f"not mentioned in README.md or docs/*.md: {', '.join(missing)}"


def test_every_registry_key_is_documented():
    """docs/registry.md describes each key a service or a project may have in registry.yaml."""
    from core.registry import ProjectSpec, ServiceSpec

    page = (DOCS / "registry.md").read_text(encoding="utf-8")
    for spec in (ServiceSpec, ProjectSpec):
        missing = [key for key in spec.model_fields if f"| `{key}` |" not in page]
        assert missing == [], f"docs/registry.md does not describe {spec.__name__} keys {missing}"


def test_the_cli_guide_shows_the_newest_migration():
    from alembic.script import ScriptDirectory

    from core.db.migrate import alembic_config

    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert f"# database at revision {head}" in (DOCS / "cli.md").read_text(encoding="utf-8")
