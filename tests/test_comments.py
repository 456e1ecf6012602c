"""Comments in the core and on the command line: what a body may hold, the community managers'
list, hiding and unhiding from the CLI (audited), and who sees a hidden comment."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from core import comments
from core.db.models import AuditEntry
from core.engine import Engine
from core.errors import ValidationFailed
from core.lifecycle import submit
from core.moderation import moderate
from core.tokens import Principal, create_token
from tests.conftest import draft


@pytest.mark.parametrize("body, stored", [
    ("hello", "hello"),
    ("  two\r\nlines\rhere \t", "two\nlines\nhere"),
    ("tab\tinside", "tab\tinside"),
    ("emoji 🦊 and accents é", "emoji 🦊 and accents é"),
    ("x" * 5000, "x" * 5000),
])
def test_a_body_is_stored_trimmed_with_newlines(body, stored):
    assert comments.check_body(body) == stored


@pytest.mark.parametrize("body, code", [
    ("", "comment_empty"),
    (" \n ", "comment_empty"),
    ("y" * 5001, "comment_too_long"),
    ("form\x0cfeed", "comment_control_characters"),
    ("delete\x7f", "comment_control_characters"),
    ("c1 \x85 control", "comment_control_characters"),
    ("lone \ud800 surrogate", "comment_control_characters"),
])
def test_a_body_is_refused_naming_the_problem(body, code):
    with pytest.raises(ValidationFailed) as refused:
        comments.check_body(body)
    assert [p.code for p in refused.value.problems] == [code]
    assert refused.value.problems[0].path == ("body",)


def _principal(engine: Engine, role: str, project: str, name: str) -> Principal:
    new = create_token(engine, role, project, name)
    return Principal(new.account_id, new.id, False, ((project, role),))


def test_the_command_line_lists_hides_and_unhides(engine: Engine):
    from core.cli import build_cli

    author = _principal(engine, "contributor", "alpha", "Ada")
    obs_id = submit(engine, "alpha", draft(), contributor_id=author.account_id, actor=author.actor).observation_id
    moderate(engine, obs_id, "publish", actor="test")
    first = comments.post(engine, author, obs_id, "first")
    second = comments.post(engine, author, obs_id, "second")
    runner = CliRunner()

    def listed(*flags: str) -> list[tuple[str, str | None, bool]]:
        result = runner.invoke(build_cli(), ["comments", "list", "alpha", *flags])
        assert result.exit_code == 0, result.output
        return [(r["body"], r["author"], r["hidden"]) for r in map(json.loads, result.stdout.splitlines())]

    assert listed() == [("second", "Ada", False), ("first", "Ada", False)]
    result = runner.invoke(build_cli(), ["comments", "hide", str(first["id"])])
    assert result.exit_code == 0 and f"comment {first['id']} hidden" in result.stdout
    assert listed() == [("second", "Ada", False)]
    assert listed("--hidden") == [("first", "Ada", True)]
    assert listed("--all", "--limit", "1") == [("second", "Ada", False)]
    anonymous = comments.of_observation(engine, Principal(), obs_id)
    assert [c["body"] for c in anonymous["items"]] == ["second"]
    assert [c["body"] for c in comments.of_observation(engine, author, obs_id)["items"]] == ["first", "second"]

    assert runner.invoke(build_cli(), ["comments", "unhide", str(first["id"])]).exit_code == 0
    assert listed("--hidden") == []
    missing = runner.invoke(build_cli(), ["comments", "hide", "999999"])
    assert missing.exit_code == 1 and "no comment 999999" in missing.stderr
    unknown = runner.invoke(build_cli(), ["comments", "list", "nowhere"])
    assert unknown.exit_code == 2 and "unknown project" in unknown.stderr
    with engine.sessions() as session:
        log = [(e.actor, e.action, e.after) for e in session.scalars(
            select(AuditEntry).where(AuditEntry.action.like("%hide_comment")).order_by(AuditEntry.id))]
    assert log == [("cli", "hide_comment", {"comment_id": first["id"], "hidden": True}),
                   ("cli", "unhide_comment", {"comment_id": first["id"], "hidden": False})]
