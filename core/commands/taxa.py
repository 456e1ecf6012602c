"""``observatory taxa import|search|show|defaults``: the engine's taxonomy (``core.taxonomy``)."""

from __future__ import annotations

import click

from core.cli import with_examples
from core.taxonomy.names import RANK_LEVELS

SHOWN_SKIPS = 50
"""How many skipped records ``taxa import`` lists (the report counts them all)."""


def register(cli: click.Group) -> None:
    @cli.group(help=with_examples(
        "The taxonomy: import a Darwin Core checklist, search names, show a taxon, load the plugins' default taxa.",
        "observatory taxa import Taxon.tsv --source gbif-backbone",
        "observatory taxa search merl",
    ))
    def taxa() -> None:
        pass

    @taxa.command("import", help=with_examples(
        "Import a Darwin Core checklist: a CSV or tab-separated file with Darwin Core Taxon columns (GBIF's "
        "Taxon.tsv as it is), or a Darwin Core Archive (zip) whose core is Taxon, its VernacularName extension "
        "giving common names. Idempotent: taxa are found again by their taxonID, so importing the same file "
        "twice reports everything unchanged. Prints the report: taxa added, updated, unchanged, and the records "
        "skipped with their line numbers and reasons.",
        "observatory taxa import backbone.zip --source gbif-backbone",
        "observatory taxa import checklist.csv --dry-run",
        "observatory taxa import Taxon.tsv --json",
    ))
    @click.argument("path", type=click.Path(path_type=str))
    @click.option("--source", default=None, show_default="the file's name without extension",
                  help="the checklist's name, stored with its taxa (a name starting with 'gbif' reads taxonIDs as GBIF keys)")
    @click.option("--dry-run", is_flag=True, help="read and report, store nothing")
    @click.option("--json", "as_json", is_flag=True, help="print the report as JSON")
    @click.pass_context
    def taxa_import(ctx: click.Context, path: str, source: str | None, dry_run: bool, as_json: bool) -> None:
        from core.cli import EXIT_INVALID, echo_json, engine_of, fail
        from core.taxonomy import ChecklistError, import_checklist

        engine = engine_of(ctx)
        try:
            report = import_checklist(engine, path, source=source, dry_run=dry_run)
        except ChecklistError as exc:
            fail(exc.message, EXIT_INVALID)
        if as_json:
            echo_json(report.to_dict())
            return
        click.echo(report.summary())
        for skipped in report.skipped[:SHOWN_SKIPS]:
            click.echo(f"  skipped {skipped}")
        if len(report.skipped) > SHOWN_SKIPS:
            click.echo(f"  ... and {len(report.skipped) - SHOWN_SKIPS} more skipped (--json lists them all)")

    @taxa.command("search", help=with_examples(
        "Taxa with a name starting with Q, in any language (case and accents ignored): id, rank, scientific "
        "name, preferred common name and the name matched.",
        "observatory taxa search tinca",
        "observatory taxa search mesange --lexicon fr --limit 5",
    ))
    @click.argument("q")
    @click.option("--lexicon", default=None, help="search common names of this language only (en, es, ca...)")
    @click.option("--rank", type=click.Choice(sorted(RANK_LEVELS)), default=None, metavar="RANK",
                  help="only taxa of this rank (species, genus, family...)")
    @click.option("--limit", type=click.IntRange(1, 200), default=20, show_default=True, help="at most this many")
    @click.pass_context
    def taxa_search(ctx: click.Context, q: str, lexicon: str | None, rank: str | None, limit: int) -> None:
        from core.cli import EXIT_INVALID, engine_of, fail
        from core.errors import EngineError
        from core.taxonomy import search

        try:
            found = search(engine_of(ctx), q, limit=limit, lexicon=lexicon, rank=rank)
        except EngineError as exc:
            fail(exc.message, EXIT_INVALID)
        for taxon in found:
            common = f" ({taxon.preferred_common_name})" if taxon.preferred_common_name else ""
            matched = f"  [{taxon.matched_term}]" if taxon.matched_term not in (None, taxon.name) else ""
            click.echo(f"{taxon.id}\t{taxon.rank}\t{taxon.name}{common}{matched}")
        click.echo(f"{len(found)} of {found.total} taxa", err=True)

    @taxa.command("show", help=with_examples(
        "One taxon as JSON: its ancestors root first, children, names in every language, GBIF key and iconic group.",
        "observatory taxa show 3",
        "observatory taxa show 3 --lexicon es",
    ))
    @click.argument("taxon_id", type=click.IntRange(1, 2_147_483_647))
    @click.option("--lexicon", default=None, help="common names in this language (else English)")
    @click.pass_context
    def taxa_show(ctx: click.Context, taxon_id: int, lexicon: str | None) -> None:
        from core.cli import echo_json, engine_of, fail
        from core.taxonomy import TaxonNotFound, get

        try:
            echo_json(get(engine_of(ctx), taxon_id, lexicon=lexicon).to_dict())
        except TaxonNotFound as exc:
            fail(exc.message)

    @taxa.command("defaults", help=with_examples(
        "Load (again) the default taxa that installed plugins offer (register_taxa: species_id's label file), "
        "one report per plugin. The engine does this by itself when it starts on an empty taxon table.",
        "observatory taxa defaults",
    ))
    @click.pass_context
    def taxa_defaults(ctx: click.Context) -> None:
        from core.cli import engine_of
        from core.taxonomy import load_defaults

        reports = load_defaults(engine_of(ctx))
        for report in reports:
            click.echo(report.summary())
        if not reports:
            click.echo("no installed plugin offers taxa")
