"""``observatory doctor``: check an installation and say what to do about each problem."""

from __future__ import annotations

import sys

import click

from core.cli import echo_json, with_examples

MARKS = {"ok": ("ok", "green"), "warning": ("warning", "yellow"), "problem": ("problem", "red")}


def register(cli: click.Group) -> None:
    @cli.command("doctor", short_help="Check the installation; say what to do about each problem.", help=with_examples(
        "Check the settings, the database (reachable, at the newest migration), the broker, the media folder, "
        "the plugins and registry.yaml, and species_id's models. One line per check (ok, warning, problem), "
        "each problem with what to do. Exit status 0 when there is no problem, 1 otherwise. Starts nothing "
        "and changes nothing.",
        "observatory doctor",
        "observatory doctor --json | jq '.checks[] | select(.level != \"ok\")'",
        "OBSERVATORY_BROKER_URL=redis://queue:6379/0 observatory doctor --timeout 10",
    ))
    @click.option("--json", "as_json", is_flag=True, help="print JSON: ok, and each check's area, level, message "
                  "and remedy")
    @click.option("--timeout", "timeout_s", type=click.FloatRange(0.1, 120), default=3.0, show_default=True,
                  help="seconds to wait for the database and the broker")
    def doctor(as_json: bool, timeout_s: float) -> None:
        from core.doctor import diagnose, has_problem

        checks = diagnose(timeout_s)
        failed = has_problem(checks)
        if as_json:
            echo_json({"ok": not failed, "checks": [c.as_dict() for c in checks]})
            sys.exit(1 if failed else 0)
        width = max(len(area) for area in (c.area for c in checks))
        for check in checks:
            label, colour = MARKS[check.level]
            click.echo(f"{click.style(f'{label:<7}', fg=colour)}  {check.area:<{width}}  {check.message}")
            if check.remedy and check.level != "ok":
                click.echo(f"{'':<7}  {'':<{width}}  what to do: {check.remedy}")
        problems = sum(c.level == "problem" for c in checks)
        warnings = sum(c.level == "warning" for c in checks)
        click.echo(f"{problems} problem(s), {warnings} warning(s)" if problems or warnings else
                   f"all {len(checks)} checks ok")
        sys.exit(1 if failed else 0)
