"""``observatory moderate-many``: one moderation action on every observation a filter selects
(publishing an imported project's vetted records, trashing a spam wave)."""

from __future__ import annotations

import click
from sqlalchemy import select

from core.cli import EXIT_INVALID, engine_of, fail, with_examples
from core.errors import EngineError


def register(cli: click.Group) -> None:
    @cli.command("moderate-many", help=with_examples(
        "Apply ACTION (publish, unpublish, trash, restore) to every observation of PROJECT that the filters "
        "select, each change audited as a single moderation is. Observations the action does not apply to "
        "(publishing a published one) are counted and left alone. Without a filter, refused: say --filter "
        "status=pending (or another) to mean it.",
        "observatory moderate-many demo publish --filter status=pending --filter created_since=2026-11-30T00:00:00Z",
        "observatory moderate-many demo trash --filter field.note=buy-cheap-watches --reason spam --dry-run",
    ))
    @click.argument("project")
    @click.argument("action", type=click.Choice(["publish", "unpublish", "trash", "restore"]))
    @click.option("--filter", "filters", multiple=True, metavar="NAME=VALUE",
                  help="a filter of the observation list (docs/filters.md), repeatable")
    @click.option("--reason", default=None, help="recorded in the audit log")
    @click.option("--dry-run", is_flag=True, help="only count what would change")
    @click.pass_context
    def moderate_many(ctx: click.Context, project: str, action: str, filters: tuple[str, ...], reason: str | None,
                      dry_run: bool) -> None:
        from core.db.models import Observation
        from core.db.session import transaction
        from core.filters import filter_conditions, filter_params, parse_filters
        from core.lifecycle import get_project
        from core.moderation import TRANSITIONS, moderate

        engine = engine_of(ctx)
        if not filters:
            fail("name at least one --filter (e.g. --filter status=pending)", EXIT_INVALID)
        try:
            context = get_project(engine, project)
            chosen = parse_filters(engine, context, filter_params(filters))
        except EngineError as exc:
            fail(exc.message, EXIT_INVALID)
        allowed, _new = TRANSITIONS[action]
        query = select(Observation.id, Observation.status).where(
            Observation.project == project, *filter_conditions(chosen, context, staff=True, contributor_id=None))
        with transaction(engine.readers) as session:
            rows = session.execute(query.order_by(Observation.id)).all()
        applicable = [obs_id for obs_id, status in rows if status in allowed]
        changed = 0
        if not dry_run:
            with click.progressbar(applicable, label=f"{action}", file=click.get_text_stream("stderr")) as bar:
                for obs_id in bar:
                    try:
                        moderate(engine, obs_id, action, actor="cli (moderate-many)", reason=reason)
                        changed += 1
                    except EngineError:  # changed by someone else meanwhile
                        pass
        verb = "would change" if dry_run else "changed"
        click.echo(f"{len(rows)} selected; {len(applicable) if dry_run else changed} {verb}; "
                   f"{len(rows) - len(applicable)} left alone (the action does not apply to their status)")
