"""``observatory services [NAME] [--json]``: the service catalogue as an operator sees it."""

from __future__ import annotations

from typing import Any

import click

from core.cli import EXIT_INVALID, echo_json, engine_of, fail, with_examples


def _figures(entry: dict[str, Any]) -> str:
    """Last week's health in a few words: run, failed (timed out), retried, median and p95."""
    total = (entry.get("health") or {}).get("total")
    if not total:
        return "-"
    week = total["windows"]["week"]
    durations = "" if week["median_ms"] is None else f", {week['median_ms']}/{week['p95_ms']} ms"
    return (f"{week['run']} run, {week['failed']} failed ({week['timed_out']} timed out), "
            f"{week['retried']} retried{durations}")


def _acceptance(entry: dict[str, Any]) -> str:
    months = [m for m in entry.get("acceptance") or [] if m["rate"] is not None]
    return "-" if not months else f"{months[-1]['rate']:.0%} ({months[-1]['month']})"


def table(entries: list[dict[str, Any]]) -> list[str]:
    """The catalogue as lines of a table: name, version, status and TRL, projects, last week's
    health, the latest month's acceptance."""
    header = ("SERVICE", "VERSION", "STATUS", "TRL", "PROJECTS", "LAST 7 DAYS (median/p95)", "ACCEPTANCE")
    rows = [(e["name"], e["version"], e["maturity"]["status"], str(e["maturity"]["trl"] or "-"),
             ", ".join(e["projects"]) or "-", _figures(e), _acceptance(e)) for e in entries]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in [header, *rows]]


def details(entry: dict[str, Any]) -> list[str]:
    """One service in full: what it says about itself, its hooks and kinds, and its health."""
    lines = [f"{entry['name']} {entry['version']}: {entry['summary']}",
             f"  maturity:    {entry['maturity']['status']}, TRL {entry['maturity']['trl'] or 'not declared'}",
             f"  maintainer:  {entry['maintainer'] or '-'}", f"  docs:        {entry['docs'] or '-'}",
             f"  hooks:       {', '.join(entry['hooks']) or '-'}",
             f"  kinds:       {', '.join(entry['kinds']) if entry['kinds'] else 'every kind'}",
             f"  projects:    {', '.join(entry['projects']) or '-'}"]
    total = (entry.get("health") or {}).get("total")
    if total:
        for name, w in total["windows"].items():
            lines.append(f"  last {name:<6} {w['run']} run, {w['succeeded']} succeeded, {w['failed']} failed "
                         f"({w['timed_out']} timed out), {w['retried']} retried; median {w['median_ms']} ms, "
                         f"p95 {w['p95_ms']} ms")
        lines.append(f"  waiting:     {total['pending']} pending, {total['running']} running")
        error = total["last_error"]
        if error:
            lines.append(f"  last error:  {error['code'] or 'error'}: {error['message']} ({error['at']})")
    lines.append(f"  acceptance:  {_acceptance(entry)}")
    return lines


def register(cli: click.Group) -> None:
    @cli.command("services", short_help="The service catalogue: maturity, health and acceptance.",
                 help=with_examples(
                     "List every installed service (registry.yaml's and every loaded plugin) with its version, "
                     "status and technology readiness level, the projects that enable it, last week's health "
                     "(enrichments run, failed, timed out, retried; median and 95th-percentile duration) and the "
                     "latest month's acceptance of its results. With NAME, that service in full. Reads the "
                     "database as an operator does (the API's GET /api/v1/services shows each caller their part).",
                     "observatory services",
                     "observatory services species_id",
                     "observatory services --json | jq '.[] | {name, maturity}'",
                 ))
    @click.argument("name", required=False)
    @click.option("--json", "as_json", is_flag=True, help="print the catalogue entries as JSON")
    @click.pass_context
    def services(ctx: click.Context, name: str | None, as_json: bool) -> None:
        from core.catalogue import catalogue
        from core.tokens import Principal

        engine = engine_of(ctx)
        entries = catalogue(engine, Principal(operator=True), name)
        if name is not None and not entries:
            known = ", ".join(e["name"] for e in catalogue(engine, Principal(operator=True)))
            fail(f"no service {name!r}; installed: {known}", EXIT_INVALID)
        if as_json:
            echo_json(entries if name is None else entries[0])
            return
        for line in table(entries) if name is None else details(entries[0]):
            click.echo(line)
