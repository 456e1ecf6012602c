"""Things that must be documented: every hook with its full signature, every CLI command."""

from __future__ import annotations

import inspect
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path

import click
import pytest

from core import hookspecs
from core.plugins import ENTRY_POINT_GROUP

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


def own_entry_points() -> list[tuple[str, str, str | None]]:
    """The plugins this repository itself installs (pyproject.toml's entry points), as
    ``core.plugins.discover`` lists installed ones: not whatever else the environment has."""
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["entry-points"]
    return [(name, value.split(":")[0], None) for name, value in declared[ENTRY_POINT_GROUP].items()]


def cli_of(registry: Path, *, own_only: bool) -> list[str]:
    """Every command of the CLI that `observatory` builds: with ``own_only``, with the engine's own
    plugins only (core's defaults and this repository's plugins/), else with every installed one."""
    from core import cli
    from core.config import get_settings

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OBSERVATORY_REGISTRY_PATH", str(registry))
        mp.setenv("OBSERVATORY_PLUGIN_MODULES", "")
        if own_only:
            mp.setenv("OBSERVATORY_LOAD_PLUGINS", ",".join(name for name, _, _ in own_entry_points()))
        else:  # as a user runs it: every installed plugin
            mp.delenv("OBSERVATORY_LOAD_PLUGINS", raising=False)
        get_settings.cache_clear()
        try:
            group = cli.build_cli()
        finally:
            get_settings.cache_clear()
    assert getattr(group, "startup_error", None) is None, group.startup_error
    return list(walk(group))


@pytest.fixture(scope="module")
def empty_registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    registry = tmp_path_factory.mktemp("cli") / "registry.yaml"
    registry.write_text("services: {}\nprojects: []\n")  # plugins add commands whatever it enables
    return registry


@pytest.fixture(scope="module")
def cli_commands(empty_registry: Path) -> list[str]:
    """The engine's own commands, its plugins' included; never a third-party plugin's."""
    return cli_of(empty_registry, own_only=True)


@pytest.fixture(scope="module")
def cli_docs() -> str:
    return "\n".join(
        path.read_text(encoding="utf-8") for path in (ROOT / "README.md", *sorted(DOCS.glob("*.md"))) if path.exists()
    )


def undocumented(commands: list[str], docs: str) -> list[str]:
    """The commands whose full name (`observatory tokens create`) the docs never mention."""
    return [command for command in commands if not re.search(rf"(?<![\w-]){re.escape(command)}(?![\w-])", docs)]


def test_the_cli_commands_are_found(cli_commands):
    assert {"observatory submit", "observatory db upgrade", "observatory doctor", "observatory models list"} <= set(
        cli_commands)


def test_every_cli_command_is_documented(cli_commands, cli_docs):
    """Each command's full name appears in README.md or a page of docs/ (docs/cli.md for the engine's own)."""
    missing = undocumented(cli_commands, cli_docs)
    assert not missing, f"not mentioned in README.md or docs/*.md: {', '.join(missing)}"


def test_every_command_section_of_the_cli_guide_shows_an_example():
    page = (DOCS / "cli.md").read_text(encoding="utf-8")
    sections = re.split(r"^## ", page, flags=re.MULTILINE)[1:]
    assert len(sections) > 10
    for section in sections:
        title, body = section.split("\n", 1)
        blocks = re.findall(r"```(?:sh|console)\n(.*?)```", body, flags=re.DOTALL)
        assert any(title.strip() in block for block in blocks), f"docs/cli.md: '## {title}' shows no example of it"


THIRD_PARTY = """
import click

from core import hookimpl


@hookimpl
def register_commands(cli):
    @cli.command("hello-third-party")
    def hello():
        click.echo("hello")
"""


def install_third_party_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A plugin installed as pip installs one: a distribution on sys.path with an entry point."""
    site = tmp_path / "site-packages"
    (site / "observatory_hello").mkdir(parents=True)
    (site / "observatory_hello" / "__init__.py").write_text(THIRD_PARTY)
    dist = site / "observatory_hello-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: observatory-hello\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\nhello = observatory_hello\n")
    monkeypatch.syspath_prepend(str(site))


def test_a_third_party_plugins_command_does_not_fail_the_docs_check(tmp_path, monkeypatch, empty_registry, cli_docs):
    """An installed plugin that adds a command (an entry point in a distribution on sys.path, as
    pip installs one) shows in the real CLI, and the documentation check does not see it."""
    install_third_party_plugin(tmp_path, monkeypatch)

    real = cli_of(empty_registry, own_only=False)
    assert "observatory hello-third-party" in real, "the installed plugin's command is in the CLI users get"
    own = cli_of(empty_registry, own_only=True)
    assert "observatory hello-third-party" not in own
    assert set(undocumented(real, cli_docs)) - set(undocumented(own, cli_docs)) == {"observatory hello-third-party"}


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


def test_a_third_party_plugin_installed_beside_the_engine_is_not_loaded_by_its_tests(tmp_path, monkeypatch, make_engine):
    """Installing any plugin into the engine's environment leaves `make test` as it was: the
    engine's tests load only the engine's own plugins (tests/conftest.py: OBSERVATORY_LOAD_PLUGINS)."""
    import importlib.metadata

    install_third_party_plugin(tmp_path, monkeypatch)
    assert "hello" in [ep.name for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)], "installed"
    engine = make_engine()
    assert "hello" not in engine.host.info
    assert {"odour", "species_id", "mobile_bridge"} <= set(engine.host.info)
