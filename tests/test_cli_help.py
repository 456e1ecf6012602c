"""Every command of the engine's own CLI (core/cli.py and core/commands/, not plugins') shows, in
its --help, at least one example of itself and the default of every option that has one."""

from __future__ import annotations

import copy
from collections.abc import Iterator

import click
import pytest
from click.testing import CliRunner

from core.cli import engine_cli


def commands(group: click.Group, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    yield path, group
    for name, command in sorted(group.commands.items()):
        if command.hidden:
            continue
        if isinstance(command, click.Group):
            yield from commands(command, (*path, name))
        else:
            yield (*path, name), command


ENGINE_COMMANDS = dict(commands(engine_cli()))


def help_of(path: tuple[str, ...]) -> str:
    result = CliRunner().invoke(engine_cli(), [*path, "--help"], prog_name="observatory")
    assert result.exit_code == 0, result.output
    return result.stdout


def shown_default(option: click.Option, ctx: click.Context, *, forced: bool = False) -> bool:
    """Whether the option's line in --help names its default (as it does, ``forced``, when asked to
    show it: so an off flag, an empty value or none at all count as no default)."""
    if forced:
        option = copy.copy(option)
        option.show_default = True
    _names, described = option.get_help_record(ctx) or ("", "")
    return "default:" in described and '[default: ""]' not in described


def test_the_engine_commands_are_found():
    names = {" ".join(path) for path in ENGINE_COMMANDS}
    assert {"", "serve", "submit", "db upgrade", "tokens create", "import", "doctor"} <= names
    assert "models" not in names, "plugins' commands are theirs to document"


@pytest.mark.parametrize("path", sorted(ENGINE_COMMANDS), ids=lambda p: " ".join(p) or "observatory")
def test_help_shows_an_example_of_the_command(path):
    text = help_of(path)
    assert "\n  Examples:\n" in text, f"observatory {' '.join(path)} --help has no Examples: section"
    examples = text.split("\n  Examples:\n", 1)[1].split("\n\n", 1)[0].splitlines()
    prefix = " ".join(("observatory", *path))
    assert any(prefix in line for line in examples), f"no example in {examples} runs `{prefix}`"


@pytest.mark.parametrize("path", sorted(ENGINE_COMMANDS), ids=lambda p: " ".join(p) or "observatory")
def test_help_shows_every_default(path):
    command = ENGINE_COMMANDS[path]
    ctx = click.Context(command, info_name=path[-1] if path else "observatory")
    text = help_of(path)
    for option in command.params:
        if not isinstance(option, click.Option) or option.hidden or not shown_default(option, ctx, forced=True):
            continue
        assert shown_default(option, ctx), f"observatory {' '.join(path)}: {option.opts[0]} defaults to " \
                                           f"{option.default!r}, which --help does not show (show_default=True)"
        assert option.opts[0] in text
