"""The service catalogue (core.catalogue) and `observatory services`: built-in services, the engine's
test plugins and a third-party plugin installed as pip installs one are listed alike, each with
what it declares; who sees what; registry.yaml declares every built-in service's maturity."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.registry import RegistryError, parse_registry
from core.tokens import ANONYMOUS, Principal
from tests.conftest import own_plugins

ROOT = Path(__file__).resolve().parent.parent

OWLS = '''"""Owl calls: counts the hoots in a recording."""
from core import for_kinds, hookimpl
from core.types import ObservationType

SERVICE_METADATA = {"trl": 4, "status": "beta"}


@hookimpl
def register_observation_types(register):
    register(ObservationType("owl_call", "Owl call", {"type": "object"}))


@hookimpl
@for_kinds("owl_call")
def enrich_observation(observation, project):
    return {"hoots": 3}
'''

CATALOGUE_REGISTRY = """
services:
  recorder:
    summary: records which observations it saw
    version: "1.2.0"
    maintainer: Test team
    docs: https://example.org/recorder
    trl: 7
    status: stable
    settings: {type: object, properties: {verbose: {type: boolean, default: false}}}
  flaky:
    summary: fails the first N attempts
    settings: {type: object, properties: {failures: {type: integer, default: 0}}}
  sleepy:
    summary: sleeps
projects:
  - slug: alpha
    name: Alpha
    services: {recorder: {}}
  - slug: beta
    name: Beta
    public: false
    services: {flaky: {}, recorder: {}}
"""


def install_owls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A third-party plugin as pip installs one: a distribution on sys.path with an entry point,
    a summary, an author and a documentation URL in its metadata."""
    monkeypatch.delitem(sys.modules, "observatory_owls", raising=False)  # another test's copy
    site = tmp_path / "site-packages"
    (site / "observatory_owls").mkdir(parents=True)
    (site / "observatory_owls" / "__init__.py").write_text(OWLS)
    dist = site / "observatory_owls-2.0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: observatory-owls\nVersion: 2.0.1\n"
                                   "Summary: Owl calls for observatories\nAuthor: Owl Lab\n"
                                   "Project-URL: Documentation, https://owls.example.org/docs\n")
    (dist / "entry_points.txt").write_text("[observatory]\nowls = observatory_owls\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(site), str(ROOT)]))


@pytest.fixture
def owls_engine(tmp_path, monkeypatch, make_engine):
    install_owls(tmp_path, monkeypatch)
    return make_engine(CATALOGUE_REGISTRY, load_plugins=own_plugins() + ",owls")


def by_name(entries: list[dict]) -> dict[str, dict]:
    return {e["name"]: e for e in entries}


def test_built_ins_test_plugins_and_a_third_party_plugin_are_listed_alike(owls_engine):
    entries = by_name(__import__("core.catalogue").catalogue.catalogue(owls_engine, Principal(operator=True)))
    assert {"owls", "recorder", "flaky", "sleepy", "species_id", "odour", "core.builtin.checks"} <= set(entries)

    owls = entries["owls"]
    assert (owls["summary"], owls["version"], owls["maintainer"], owls["docs"]) == (
        "Owl calls for observatories", "2.0.1", "Owl Lab", "https://owls.example.org/docs")
    assert owls["maturity"] == {"trl": 4, "status": "beta"}
    assert owls["hooks"] == ["enrich_observation", "register_observation_types"]
    assert owls["kinds"] == ["owl_call"] and owls["observation_types"] == ["owl_call"]
    assert owls["projects"] == [] and owls["settings_schema"] is None and not owls["builtin"]

    recorder = entries["recorder"]
    assert (recorder["summary"], recorder["version"], recorder["maintainer"], recorder["docs"]) == (
        "records which observations it saw", "1.2.0", "Test team", "https://example.org/recorder")
    assert recorder["maturity"] == {"trl": 7, "status": "stable"}
    assert recorder["projects"] == ["alpha", "beta"] and recorder["kinds"] is None
    assert recorder["settings_schema"]["properties"]["verbose"] == {"type": "boolean", "default": False}
    assert entries["flaky"]["maturity"] == {"trl": None, "status": "experimental"}, "undeclared: experimental"

    species = entries["species_id"]
    assert species["builtin"] and "enrich_observation" in species["hooks"] and species["kinds"] == ["generic"]
    assert entries["core.builtin.checks"]["default"] and entries["core.builtin.checks"]["projects"] == ["alpha", "beta"]
    assert owls["health"]["total"]["windows"]["week"]["run"] == 0, "operators see health"


def test_who_sees_what(owls_engine):
    from core.catalogue import catalogue

    public = by_name(catalogue(owls_engine, ANONYMOUS))
    assert "owls" not in public and "flaky" not in public and "species_id" not in public, \
        "the public sees only what public projects use"
    assert public["recorder"]["projects"] == ["alpha"], "and only public projects"
    assert public["recorder"]["health"] is None

    member = by_name(catalogue(owls_engine, Principal(account_id=1, roles=(("beta", "contributor"),))))
    assert member["flaky"]["projects"] == ["beta"] and member["recorder"]["projects"] == ["alpha", "beta"]
    assert "owls" not in member and member["flaky"]["health"] is None

    staff = by_name(catalogue(owls_engine, Principal(account_id=2, roles=(("alpha", "moderator"),))))
    assert "owls" in staff and staff["flaky"]["projects"] == [], "staff see every service, not others' projects"
    assert staff["recorder"]["health"]["total"] is None
    assert set(staff["recorder"]["health"]["projects"]) <= {"alpha"}


def test_a_plugin_with_invalid_metadata_names_itself(tmp_path, monkeypatch, make_engine):
    from core.plugins import PluginError

    install_owls(tmp_path, monkeypatch)
    source = tmp_path / "site-packages" / "observatory_owls" / "__init__.py"
    source.write_text(source.read_text().replace('"trl": 4', '"trl": 12'))
    with pytest.raises(PluginError, match=r"plugin 'owls': SERVICE_METADATA is invalid: .*trl"):
        make_engine(CATALOGUE_REGISTRY, load_plugins=own_plugins() + ",owls")


def test_registry_maturity_is_validated():
    with pytest.raises(RegistryError, match=r"services\.x\.trl: Input should be less than or equal to 9"):
        parse_registry("services: {x: {summary: x, trl: 10}}\nprojects: []")
    with pytest.raises(RegistryError, match=r"services\.x\.status: Input should be 'experimental', 'beta'"):
        parse_registry("services: {x: {summary: x, status: mature}}\nprojects: []")


def test_registry_yaml_declares_every_built_in_services_maturity():
    registry = parse_registry((ROOT / "registry.yaml").read_text(encoding="utf-8"))
    for name, spec in registry.services.items():
        assert spec.trl is not None and spec.status is not None and spec.docs, f"{name}: maturity or docs missing"
        assert spec.docs.startswith(("docs/", "https://")), f"{name}: docs {spec.docs!r} is no page of docs/ or URL"


def test_the_cli_prints_the_table_and_json(owls_engine, tmp_path):
    """`observatory services` as a user runs it (a separate process); then one service in full,
    as JSON and unknown, through the same command in this process (click's runner: faster)."""
    from click.testing import CliRunner

    from core.cli import engine_cli

    table = subprocess.run([sys.executable, "-m", "core.cli", "services"], capture_output=True, text=True,
                           env=dict(os.environ), cwd=tmp_path, timeout=120)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split()[:5] == ["SERVICE", "VERSION", "STATUS", "TRL", "PROJECTS"]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert rows["owls"][1:4] == ["2.0.1", "beta", "4"]
    assert rows["recorder"][1:5] == ["1.2.0", "stable", "7", "alpha,"]

    def run(*args: str):
        return CliRunner().invoke(engine_cli(), ["services", *args], obj={"engine": owls_engine})

    one = run("owls", "--json")
    assert one.exit_code == 0, one.output
    assert json.loads(one.output)["maturity"] == {"trl": 4, "status": "beta"}
    detail = run("recorder")
    assert "maturity:    stable, TRL 7" in detail.output and "last week" in detail.output
    missing = run("nope")
    assert missing.exit_code == 2 and "no service 'nope'; installed: " in missing.output
