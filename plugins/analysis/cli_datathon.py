"""``observatory datathon create | score | leaderboard``: the datathon kit's commands (see
``plugins.analysis.datathon``)."""

from __future__ import annotations

from pathlib import Path

import click

from core.cli import EXIT_INVALID, engine_of, fail, with_examples


@click.group("datathon", help=with_examples(
    "Datathons: freeze a project's labelled observations (split by contributor and day, test labels "
    "kept by the organiser), score submissions, keep a leaderboard.",
    "observatory datathon create birds-2026 --project wildlife --out ./birds-2026",
    "observatory datathon score preds.csv --datathon ./birds-2026 --name team-a --model \"resnet50 fine-tuned\"",
    "observatory datathon leaderboard ./birds-2026"))
def datathon() -> None:
    pass


@datathon.command("create", help="Freeze a project's published, labelled observations into a datathon folder.")
@click.argument("name")
@click.option("--project", required=True, help="the project's slug")
@click.option("--filter", "filters", multiple=True, metavar="NAME=VALUE",
              help="a filter of the observation list, e.g. kind=photo, since=2026-01-01T00:00:00Z (repeatable)")
@click.option("--label", default="taxon_name", show_default=True,
              help="the column to predict: taxon_name, category or field.NAME")
@click.option("--column", "columns", multiple=True, metavar="COLUMN",
              help="an extra column for both parts, e.g. field.habitat (repeatable)")
@click.option("--test-share", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.2,
              show_default=True, help="share of the rows in the test part")
@click.option("--split", "how", type=click.Choice(["contributor+time", "time"]), default="contributor+time",
              show_default=True, help="assign contributors (or the latest days) to the test part; either way no "
                                      "person and no day is on both sides")
@click.option("--media", type=click.Choice(["copy", "link"]), default="copy", show_default=True,
              help="copy the public media files, or link the training part's to the engine")
@click.option("--seed", type=int, default=None, help="fix the random choices (default: a new seed, kept by the organiser)")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="a new folder")
@click.pass_context
def create(ctx: click.Context, name: str, project: str, filters: tuple[str, ...], label: str,
           columns: tuple[str, ...], test_share: float, how: str, media: str, seed: int | None, out: Path) -> None:
    from core.errors import EngineError
    from core.filters import filter_params
    from plugins.analysis.datathon.freeze import Options, create_datathon
    from plugins.analysis.datathon.layout import DatathonError
    from plugins.analysis.datathon.split import SplitError

    engine = engine_of(ctx)
    try:
        options = Options(name=name, project=project, out=out, filters=filter_params(filters), label=label,
                          test_share=test_share, split=how, media=media, columns=columns, seed=seed)
        card = create_datathon(engine, options)
    except EngineError as exc:
        fail(exc.message, EXIT_INVALID)
    except (DatathonError, SplitError) as exc:
        fail(str(exc), EXIT_INVALID)
    rows, split = card["rows"], card["split"]
    click.echo(f"datathon {name}: {rows['train']} training rows, {rows['test']} test rows, "
               f"{card['label']['classes']} classes (test share {split['test_share']})")
    for reason, n in {**rows["excluded"], **rows["dropped_by_split"]}.items():
        if n:
            click.echo(f"  {n} rows left out: {reason}")
    click.echo(f"  participants: {out / 'participants'} (hand this folder out)")
    click.echo(f"  organiser only: {out / 'organiser'} (test labels, leaderboard)")


@datathon.command("score", help="Score a predictions CSV and add it to the leaderboard (see the data card for "
                  "the format).")
@click.argument("predictions", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--datathon", "root", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="the datathon's folder (with its organiser/ part)")
@click.option("--name", "team", required=True, help="the team's name")
@click.option("--model", default="", help="a description of the model")
@click.option("--json", "as_json", is_flag=True, help="print the scores as JSON")
def score_command(predictions: Path, root: Path, team: str, model: str, as_json: bool) -> None:
    from core.cli import echo_json
    from plugins.analysis.datathon.layout import DatathonError
    from plugins.analysis.datathon.leaderboard import add_entry, score_file
    from plugins.analysis.datathon.predictions import SubmissionError

    try:
        scores = score_file(root, predictions)
        entry = add_entry(root, team, model, scores, source=predictions)
    except SubmissionError as exc:
        fail(str(exc), EXIT_INVALID)
    except DatathonError as exc:
        fail(str(exc), EXIT_INVALID)
    if as_json:
        echo_json({**scores, "rank": entry["rank"]})
        return
    print_scores(scores)
    click.echo(f"  added to the leaderboard: {team}, rank {entry['rank']}")


def print_scores(scores: dict[str, object]) -> None:
    """The scores as lines for people."""
    ece = scores.get("ece")
    click.echo(f"  rows {scores['rows']}: top-1 {scores['top1']:.4f}, top-5 {scores['top5']:.4f}, "
               f"macro F1 {scores['macro_f1']:.4f}, ECE {'-' if ece is None else f'{ece:.4f}'}")
    recall = scores["per_class_recall"]
    assert isinstance(recall, dict)
    width = max([12, *(len(c) for c in recall)])
    click.echo(f"  {'class':<{width}}  recall")
    for label, value in recall.items():
        click.echo(f"  {label:<{width}}  {value:.4f}")


@datathon.command("leaderboard", help="Show a datathon's leaderboard, best first.")
@click.argument("root", type=click.Path(file_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="print JSON")
def leaderboard_command(root: Path, as_json: bool) -> None:
    from core.cli import echo_json
    from plugins.analysis.datathon.layout import DatathonError, read_settings
    from plugins.analysis.datathon.leaderboard import read_board

    try:
        read_settings(root)
    except DatathonError as exc:
        fail(str(exc), EXIT_INVALID)
    entries = read_board(root)
    if as_json:
        echo_json({"entries": entries})
        return
    if not entries:
        click.echo("no submissions yet")
        return
    click.echo(f"{'rank':>4}  {'team':<20} {'top-1':>6} {'top-5':>6} {'F1':>6} {'ECE':>6}  submitted            model")
    for e in entries:
        ece = "-" if e["ece"] is None else f"{e['ece']:.3f}"
        click.echo(f"{e['rank']:>4}  {e['team'][:20]:<20} {e['top1']:>6.3f} {e['top5']:>6.3f} {e['macro_f1']:>6.3f} "
                   f"{ece:>6}  {e['submitted_at']}  {e['model']}")


def add_commands(cli: click.Group, analyse: click.Group) -> None:
    """Add ``observatory datathon`` to the engine's CLI."""
    cli.add_command(datathon)
