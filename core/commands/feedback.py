"""``observatory feedback list|export|mark|dataset``: feedback on services for their maintainers,
and people's corrections of results as a labelled data set (``core.feedback``)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click

from core.cli import with_examples

OPERATOR_ACTOR = "cli"


def _wanted(service: str | None, kind: str | None, state: str | None, role: str | None, project: str | None,
            since: datetime | None) -> object:
    from datetime import timezone

    from core.feedback import ServiceFeedbackFilter

    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=timezone.utc)
    return ServiceFeedbackFilter(service=service, kind=kind, state=state, role=role, project=project, since=since)


def _filters(command: click.Command) -> click.Command:
    from core.feedback import KINDS, SENDER_ROLES, STATES

    for option in reversed([
            click.option("--service", help="one service's feedback"),
            click.option("--kind", type=click.Choice(KINDS), help="rating, comment or feature_request"),
            click.option("--state", type=click.Choice(STATES), help="new, planned, done or declined"),
            click.option("--role", type=click.Choice(SENDER_ROLES), help="the senders' role"),
            click.option("--project", help="feedback about one project's use of the service"),
            click.option("--since", type=click.DateTime(), help="sent at or after (UTC unless an offset is given)")]):
        command = option(command)
    return command


def register(cli: click.Group) -> None:
    @cli.group(help=with_examples(
        "Feedback on services: list, export for a co-design session, mark planned/done/declined; and people's "
        "corrections of a service's results as a labelled data set.",
        "observatory feedback list --service species_id --state new",
        "observatory feedback export --kind feature_request --out session.csv",
        "observatory feedback mark 12 planned --note 'in the spring release'",
        "observatory feedback dataset --service species_id --out corrections/",
    ))
    def feedback() -> None:
        pass

    @feedback.command("list", help=with_examples(
        "Feedback on services, newest first, as JSON lines (with the sender's role and, as this is the operator's "
        "command line, their account id and name).",
        "observatory feedback list --service species_id --kind rating",
    ))
    @_filters
    @click.option("--limit", type=click.IntRange(1, 1000), default=200, show_default=True)
    @click.pass_context
    def feedback_list(ctx: click.Context, limit: int, **filters: object) -> None:
        import json

        from core import feedback as core_feedback
        from core.cli import EXIT_INVALID, engine_of, fail
        from core.comments import OPERATOR
        from core.errors import EngineError

        engine = engine_of(ctx)
        try:
            page = core_feedback.list_service_feedback(engine, OPERATOR, _wanted(**filters),  # type: ignore[arg-type]
                                                       limit=limit)
        except EngineError as exc:
            fail(exc.message, EXIT_INVALID)
        for item in page["results"]:
            click.echo(json.dumps(item, ensure_ascii=False))

    @feedback.command("export", help=with_examples(
        "Feedback on services as CSV for a co-design session, oldest first: roles, never names or ids (add "
        "--with-authors for account ids and names: for the operator's own use only).",
        "observatory feedback export --service species_id --out species-feedback.csv",
    ))
    @_filters
    @click.option("--with-authors", is_flag=True, help="add account_id and author columns")
    @click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
                  help="write to this file (default: standard output)")
    @click.pass_context
    def feedback_export(ctx: click.Context, with_authors: bool, out: Path | None, **filters: object) -> None:
        from core import feedback as core_feedback
        from core.cli import EXIT_INVALID, engine_of, fail
        from core.errors import EngineError
        from core.tokens import Principal

        engine = engine_of(ctx)
        # without --with-authors the export is the one a project admin gets: made as an operator
        # (every item), with the author columns left out
        try:
            text = core_feedback.export_service_feedback(engine, Principal(operator=True), _wanted(**filters),  # type: ignore[arg-type]
                                                         authors=with_authors)
        except EngineError as exc:
            fail(exc.message, EXIT_INVALID)
        if out is None:
            click.echo(text, nl=False)
        else:
            out.write_text(text, encoding="utf-8")
            click.echo(f"wrote {max(text.count(chr(10)) - 1, 0)} items to {out}", err=True)

    @feedback.command("mark", help=with_examples(
        "Mark an item planned, done or declined (or new again), with a note its sender reads in their feed. "
        "Audited.",
        "observatory feedback mark 12 done --note 'released in 0.4'",
    ))
    @click.argument("feedback_id", type=click.IntRange(1))
    @click.argument("state", type=click.Choice(("new", "planned", "done", "declined")))
    @click.option("--note", default=None, help="what the sender reads with the state")
    @click.pass_context
    def feedback_mark(ctx: click.Context, feedback_id: int, state: str, note: str | None) -> None:
        import json

        from core import feedback as core_feedback
        from core.cli import EXIT_INVALID, engine_of, fail
        from core.comments import OPERATOR
        from core.errors import EngineError

        engine = engine_of(ctx)
        try:
            item = core_feedback.mark(engine, OPERATOR, feedback_id, state, note, actor=OPERATOR_ACTOR)
        except EngineError as exc:
            fail(exc.message, EXIT_INVALID)
        click.echo(json.dumps(item, ensure_ascii=False))

    @feedback.command("dataset", help=with_examples(
        "People's corrections of a service's results (a disagreement naming the right taxon) as a labelled data "
        "set: photos of published observations of public projects, cleaned of location metadata, and labels.csv "
        "(path, label, then taxon, votes, observation, project, licence, rights holder, recorder where they "
        "agreed to be named). species_id reads it: observatory models evaluate NAME --dataset DIR/labels.csv",
        "observatory feedback dataset --service species_id --out corrections/",
    ))
    @click.option("--service", required=True, help="the service whose results were corrected")
    @click.option("--project", default=None, help="one project's corrections only")
    @click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="a folder")
    @click.pass_context
    def feedback_dataset(ctx: click.Context, service: str, project: str | None, out: Path) -> None:
        import json

        from core.cli import EXIT_INVALID, engine_of, fail
        from core.errors import EngineError
        from core.feedback_dataset import write_dataset

        engine = engine_of(ctx)
        try:
            report = write_dataset(engine, service, out, project)
        except EngineError as exc:
            fail(exc.message, EXIT_INVALID)
        click.echo(json.dumps(report))
