"""``observatory comments list|hide|unhide``: a project's comments, for community managers."""

from __future__ import annotations

import click

from core.cli import with_examples


def register(cli: click.Group) -> None:
    @cli.group(help=with_examples(
        "Comments on observations: list a project's, hide or unhide one.",
        "observatory comments list demo --hidden",
        "observatory comments hide 7",
    ))
    def comments() -> None:
        pass

    @comments.command("list", help=with_examples(
        "A project's comments, newest first, as JSON lines (id, observation, author, hidden, text). Visible ones "
        "by default.",
        "observatory comments list demo",
        "observatory comments list demo --all --limit 50",
    ))
    @click.argument("project")
    @click.option("--hidden", is_flag=True, help="the hidden comments instead")
    @click.option("--all", "everything", is_flag=True, help="visible and hidden comments")
    @click.option("--limit", type=click.IntRange(1), default=None, show_default="all", help="at most this many")
    @click.pass_context
    def comments_list(ctx: click.Context, project: str, hidden: bool, everything: bool, limit: int | None) -> None:
        import json

        from core import comments as core_comments
        from core.cli import EXIT_INVALID, engine_of, fail
        from core.errors import EngineError
        from core.lifecycle import get_project

        engine = engine_of(ctx)
        state = "all" if everything else "hidden" if hidden else "visible"
        cursor, shown = None, 0
        try:
            get_project(engine, project)
            while True:
                page = core_comments.feed(engine, core_comments.OPERATOR, project, state=state,
                                          cursor=int(cursor) if cursor else None, limit=200)
                for item in page["items"]:
                    if limit is not None and shown >= limit:
                        return
                    click.echo(json.dumps({k: item[k] for k in ("id", "observation_id", "author", "author_id",
                                                                "created_at", "hidden", "body")},
                                          ensure_ascii=False))
                    shown += 1
                cursor = page["next_cursor"]
                if cursor is None:
                    return
        except EngineError as exc:
            fail(exc.message, EXIT_INVALID)

    def _hide(ctx: click.Context, comment_id: int, hidden: bool) -> None:
        from core import comments as core_comments
        from core.cli import engine_of, fail
        from core.errors import EngineError

        try:
            core_comments.set_hidden(engine_of(ctx), core_comments.OPERATOR, comment_id, hidden, actor="cli")
        except EngineError as exc:
            fail(exc.message)
        click.echo(f"comment {comment_id} {'hidden' if hidden else 'visible'}")

    @comments.command("hide", help=with_examples(
        "Hide a comment (kept, and audited); its author and staff still see it.",
        "observatory comments hide 7",
    ))
    @click.argument("comment_id", type=int)
    @click.pass_context
    def comments_hide(ctx: click.Context, comment_id: int) -> None:
        _hide(ctx, comment_id, True)

    @comments.command("unhide", help=with_examples("Show a hidden comment again (audited).",
                                                   "observatory comments unhide 7"))
    @click.argument("comment_id", type=int)
    @click.pass_context
    def comments_unhide(ctx: click.Context, comment_id: int) -> None:
        _hide(ctx, comment_id, False)
