"""``observatory plugin new``: the package it writes builds as a wheel, its own tests pass against a
real engine, an edited hook shows through the API, and every hook it leaves commented works once
uncommented. The engine's shared .venv is never changed: the built wheel is unpacked into a folder
that only the child processes have on PYTHONPATH."""

from __future__ import annotations

import csv
import io
import os
import re
import subprocess
import sys
import zipfile
from importlib.metadata import version
from pathlib import Path
from typing import Iterator

import click
import pytest
import yaml
from click.testing import CliRunner

from core.commands.plugin import ENGINE_DIST, register, write_package
from core.testing import draft, submit, wait_for_enrichments

NAME = "scaffolded"  # a name no other test uses: its module stays importable in this process
MODULE = f"observatory_{NAME}"


def plugin_cli() -> click.Group:
    group = click.Group()
    register(group)
    return group


def child_env(**extra: str) -> dict[str, str]:
    """This process's environment for a child: no test's OBSERVATORY_* settings (the test database's
    URL kept), no PYTHONPATH but ``extra``'s."""
    env = {k: v for k, v in os.environ.items()
           if (not k.startswith("OBSERVATORY_") or k.startswith("OBSERVATORY_TEST_")) and k != "PYTHONPATH"}
    return {**env, **extra}


def run(args: list[str], cwd: Path, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def uncomment_hooks(source: str) -> str:
    """The plugin module with every commented hook (a block from ``# @hookimpl`` to the next line
    that is not a comment) and the commented ``@for_kinds`` switched on, as a user would."""
    out, inside = [], False
    for line in source.splitlines():
        inside = line == "# @hookimpl" or (inside and line.startswith("#"))
        if inside:
            line = line[2:] if line.startswith("# ") else line[1:]
        out.append(re.sub(r"^# (@for_kinds\(.*\))  #.*$", r"\1", line))
    return "\n".join(out) + "\n"


def test_a_bad_name_or_an_existing_folder_is_refused(tmp_path):
    runner = CliRunner()
    for name, message in (("2birds", "'2birds' is not a Python identifier"),
                          ("bird-song", "'bird-song' is not a Python identifier"),
                          ("Birds", "'Birds': a plugin's name is lower case"),
                          ("_birds", "'_birds': a plugin's name is lower case, letters, digits and '_', starting with "
                                     "a letter, e.g. 'birds'")):
        result = runner.invoke(plugin_cli(), ["plugin", "new", name, "--dir", str(tmp_path)])
        assert result.exit_code == 2, result.output
        assert f"error: {message}" in result.output
    assert list(tmp_path.iterdir()) == [], "nothing written for a refused name"

    (tmp_path / "observatory-birds").mkdir()
    result = runner.invoke(plugin_cli(), ["plugin", "new", "birds", "--dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "observatory-birds exists already" in result.output
    assert list((tmp_path / "observatory-birds").iterdir()) == [], "an existing folder is left alone"


def test_the_package_names_its_entry_point_the_engine_and_the_settings_schema(tmp_path):
    package = write_package("night_owl", tmp_path)
    assert package.name == "observatory-night-owl"
    pyproject = (package / "pyproject.toml").read_text()
    assert 'night_owl = "observatory_night_owl.plugin"' in pyproject
    assert version(ENGINE_DIST), "the dependency names the engine's distribution, as installed"
    assert f'dependencies = ["{ENGINE_DIST}>=' in pyproject
    readme = (package / "README.md").read_text()
    snippet = yaml.safe_load(readme.split("```yaml\n", 1)[1].split("```", 1)[0])
    schema = (package / "observatory_night_owl" / "settings.schema.json").read_text()
    assert snippet["services"]["night_owl"]["settings"] == yaml.safe_load(schema), "the README's schema is the file's"
    assert "{{" not in "".join(p.read_text() for p in package.rglob("*") if p.is_file())


@pytest.fixture
def uncommented(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A generated package with every hook switched on, importable in this process."""
    package = write_package(NAME, tmp_path)
    plugin = package / MODULE / "plugin.py"
    plugin.write_text(uncomment_hooks(plugin.read_text()))
    monkeypatch.syspath_prepend(str(package))
    yield package
    for module in [m for m in sys.modules if m == MODULE or m.startswith(MODULE + ".")]:
        del sys.modules[module]


@pytest.fixture
def plugins(uncommented: Path) -> str:
    return f"{NAME}={MODULE}.plugin"


@pytest.fixture
def registry() -> str:
    return yaml.safe_dump({"services": {NAME: {"summary": "scaffolded"}},
                           "projects": [{"slug": "demo", "name": "Demo", "services": {NAME: {}}}]})


def test_every_commented_hook_works_once_uncommented(client, make_token, auth):
    token = make_token("operator")
    kind = f"{NAME}_sighting"
    # validate_observation
    refused = client.post("/api/v1/projects/demo/observations", json=draft(fields={"note": 5}), headers=auth(token))
    assert refused.status_code == 422
    assert "note must be text" in refused.text
    # register_observation_types: the kind's schema is enforced
    refused = client.post("/api/v1/projects/demo/observations", json=draft(kind=kind, fields={}), headers=auth(token))
    assert refused.status_code == 422
    assert "count" in refused.text
    # @for_kinds: the enrichment runs for the kind only; grade_observation grades by the flag
    plain = wait_for_enrichments(client, submit(client, "demo", draft(), token=token)["id"], token=token)
    assert NAME not in plain["enrichments"]
    sighting = wait_for_enrichments(client, submit(client, "demo", draft(kind=kind, fields={"count": 2}),
                                                   token=token)["id"], token=token)
    assert sighting["enrichments"][NAME]["result"] == {"photos": 0}
    assert [f["code"] for f in sighting["flags"] if f["plugin"] == NAME] == ["few_photos"]
    assert sighting["grade"] == "casual"
    # export_columns
    exported = client.get("/api/v1/projects/demo/export", params={"scope": "all"}, headers=auth(token))
    assert exported.status_code == 200, exported.text
    rows = {row["id"]: row for row in csv.DictReader(io.StringIO(exported.text))}
    assert rows[str(sighting["id"])][f"{NAME}_photos"] == "0"
    # register_routes (taking the engine)
    counted = client.get(f"/api/v1/{NAME}/projects/demo/count")
    assert counted.status_code == 200
    assert counted.json() == {"published": 0}
    # register_commands
    from core.cli import build_cli

    result = CliRunner().invoke(build_cli(), [NAME, "hello"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"hello from {NAME}"


EDIT_FROM = 'return {"photos": len(photos)}'
EDIT_TO = 'return {"photos": len(photos), "note_words": len(str(observation.fields.get("note", "")).split())}'
EDITED_TEST = '''
from core.testing import draft, submit, wait_for_enrichments


def test_the_edited_hook_shows_through_the_api(client):
    sent = submit(client, "demo", draft(fields={"note": "three birds singing"}))
    result = wait_for_enrichments(client, sent["id"])["enrichments"]["birds"]["result"]
    assert result == {"photos": 0, "note_words": 3}
'''


@pytest.mark.slow  # about a minute: a wheel built and two pytest runs, each migrating a database
def test_the_generated_package_builds_and_its_tests_pass_then_an_edit_shows(tmp_path):
    env = child_env()
    made = run([sys.executable, "-m", "core.cli", "plugin", "new", "birds", "--dir", str(tmp_path)], tmp_path, env)
    assert made.returncode == 0, made.stderr
    package = tmp_path / "observatory-birds"
    assert "pip install -e ./observatory-birds" not in made.stdout  # --dir given: the path is shown as it is
    assert f"pip install -e {package}" in made.stdout

    built = run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
                 "-w", str(tmp_path / "wheels"), str(package)], tmp_path, env)
    assert built.returncode == 0, f"{built.stdout}\n{built.stderr}"
    (wheel,) = (tmp_path / "wheels").glob("observatory_birds-0.1.0-*.whl")
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
        assert "observatory_birds/settings.schema.json" in archive.namelist()

    # the package's own tests, as in its CI: the plugin found through the wheel's entry point
    tests = run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(package)], tmp_path,
                child_env(PYTHONPATH=str(site)))
    assert tests.returncode == 0, tests.stdout[-4000:] + tests.stderr[-2000:]
    assert re.search(r"^6 passed", tests.stdout, re.M), tests.stdout[-2000:]

    # the user edits a hook; with the package's folder first on the path (as `pip install -e` gives),
    # a submit through the API shows the change
    plugin = package / "observatory_birds" / "plugin.py"
    assert EDIT_FROM in plugin.read_text()
    plugin.write_text(plugin.read_text().replace(EDIT_FROM, EDIT_TO))
    (package / "tests" / "test_edit.py").write_text(EDITED_TEST)
    edited = run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(package / "tests" / "test_edit.py")],
                 tmp_path, child_env(PYTHONPATH=os.pathsep.join([str(package), str(site)])))
    assert edited.returncode == 0, edited.stdout[-4000:] + edited.stderr[-2000:]
    assert re.search(r"^1 passed", edited.stdout, re.M)
