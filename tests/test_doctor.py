"""`observatory doctor` on real parts: a real SQLite database at an old revision, a port where
nothing listens, a folder that cannot be written, a registry naming a service nobody installed,
species_id's real model."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import yaml
from click.testing import CliRunner, Result

from core.cli import build_cli

ROOT = Path(__file__).resolve().parent.parent


def doctor(*args: str) -> Result:
    return CliRunner().invoke(build_cli(), ["doctor", *args])


def checks(result: Result) -> list[dict[str, Any]]:
    return json.loads(result.stdout)["checks"]


def problems(result: Result, area: str) -> list[dict[str, Any]]:
    return [c for c in checks(result) if c["area"] == area and c["level"] == "problem"]


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A local port bound but not listening: a connection to it is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


@pytest.fixture
def unwritable_folder(tmp_path: Path) -> Iterator[Path]:
    """A folder this process cannot write in: read-only for its owner; for root, whom file modes
    do not stop, /sys, where the kernel lets no one create a file."""
    if os.geteuid() == 0:
        yield Path("/sys")
        return
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o555)
    yield folder
    folder.chmod(0o755)


def test_a_healthy_engine_passes(make_engine):
    make_engine()  # migrated database, folders made, plugins and registry loaded
    result = doctor()
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    for area in ("settings", "database", "broker", "media", "plugins", "models"):
        assert any(line.split()[:2] == ["ok", area] for line in lines), f"no ok line for {area}:\n{result.stdout}"
    assert not any(line.startswith(("problem", "warning")) for line in lines)
    assert "at revision" in result.stdout and "the newest" in result.stdout

    as_json = doctor("--json")
    assert as_json.exit_code == 0
    body = json.loads(as_json.stdout)
    assert body["ok"] is True and {c["level"] for c in body["checks"]} == {"ok"}


def test_a_database_at_an_old_revision_is_a_problem_that_db_upgrade_fixes(settings_factory, tmp_path):
    from alembic.script import ScriptDirectory

    from core.db.migrate import alembic_config, upgrade

    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    head = script.get_current_head()
    older = script.get_revision(head).down_revision
    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, older)
    settings_factory(database_url=url)

    result = doctor("--json")
    assert result.exit_code == 1
    (problem,) = problems(result, "database")
    assert f"at revision {older}; the newest is {head}" in problem["message"]
    assert problem["remedy"] == "run `observatory db upgrade`"

    text = doctor()
    assert text.exit_code == 1
    assert "what to do: run `observatory db upgrade`" in text.stdout

    assert CliRunner().invoke(build_cli(), ["db", "upgrade"]).exit_code == 0  # the remedy, as given
    assert problems(doctor("--json"), "database") == []


def test_no_database_file_yet_says_to_create_it(settings_factory, tmp_path):
    settings_factory(database_url=f"sqlite:///{tmp_path / 'absent.db'}")
    result = doctor("--json")
    assert result.exit_code == 1
    (problem,) = problems(result, "database")
    assert "no database file" in problem["message"] and "observatory db upgrade" in problem["remedy"]
    assert not (tmp_path / "absent.db").exists(), "the doctor creates nothing"


def test_an_empty_database_and_one_from_a_newer_engine_are_problems(settings_factory, tmp_path):
    import sqlite3

    from core.db.migrate import upgrade

    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()
    settings_factory(database_url=f"sqlite:///{empty}")
    (problem,) = problems(doctor("--json"), "database")
    assert "has no schema yet" in problem["message"] and problem["remedy"] == "run `observatory db upgrade`"

    newer = tmp_path / "newer.db"
    upgrade(f"sqlite:///{newer}")
    with sqlite3.connect(newer) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999'")
    settings_factory(database_url=f"sqlite:///{newer}")
    result = doctor("--json")
    assert result.exit_code == 1
    (problem,) = problems(result, "database")
    assert "at revision 9999, which this engine's migrations do not know" in problem["message"]
    assert "engine version that migrated it" in problem["remedy"]


def test_an_unreachable_database_server_is_a_problem(settings_factory, closed_port):
    settings_factory(database_url=f"postgresql://observatory:secret@127.0.0.1:{closed_port}/observatory")
    result = doctor("--json")
    assert result.exit_code == 1
    (problem,) = problems(result, "database")
    assert f"cannot reach postgresql://observatory:***@127.0.0.1:{closed_port}/observatory" in problem["message"]
    assert "secret" not in result.stdout
    assert "OBSERVATORY_DATABASE_URL" in problem["remedy"]


@pytest.mark.parametrize("scheme", ["redis", "amqp"])
def test_an_unreachable_broker_is_a_problem(settings_factory, closed_port, scheme):
    settings_factory(broker_url=f"{scheme}://guest:secret@127.0.0.1:{closed_port}//")
    result = doctor("--json", "--timeout", "2")
    assert result.exit_code == 1
    (problem,) = problems(result, "broker")
    assert f"cannot reach the broker {scheme}://guest:**@127.0.0.1:{closed_port}" in problem["message"]
    assert "secret" not in result.stdout
    assert "OBSERVATORY_BROKER_URL" in problem["remedy"]
    assert [c["area"] for c in checks(result) if c["level"] == "problem"] == ["broker"]


def test_an_unwritable_media_folder_is_a_problem(settings_factory, unwritable_folder):
    settings_factory(media_dir=unwritable_folder)
    result = doctor("--json")
    assert result.exit_code == 1
    (problem,) = problems(result, "media")
    assert f"media folder {unwritable_folder} is not writable" in problem["message"]
    assert "OBSERVATORY_MEDIA_DIR" in problem["remedy"]
    assert [c["area"] for c in checks(result) if c["level"] == "problem"] == ["media"]


def test_a_registry_enabling_a_service_not_installed_is_a_problem(settings_factory):
    settings_factory("""
        services:
          recorder: {summary: records which observations it saw}
          ghost: {summary: a service no installed package provides}
        projects:
          - {slug: haunted, name: Haunted, services: {ghost: {}, recorder: {}}}
    """)
    result = doctor("--json")  # the engine cannot start, the doctor still runs
    assert result.exit_code == 1
    (problem,) = problems(result, "plugins")
    assert "service 'ghost' (enabled by haunted) but no installed plugin provides it" in problem["message"]
    assert "install the package that provides the entry point 'observatory: ghost'" in problem["remedy"]
    assert "remove 'ghost'" in problem["remedy"]


def test_when_the_engine_cannot_start_other_commands_say_why(settings_factory):
    settings_factory("""
        services:
          ghost: {summary: a service no installed package provides}
        projects: []
    """)
    cli = build_cli()
    for args in (["models", "list"], ["projects"]):  # a plugin's command (not added), an engine command
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 3, result.output
        assert "plugin 'ghost': registry.yaml offers it (enabled by no project) but it is not installed" in result.stderr
    assert "Usage:" in CliRunner().invoke(cli, ["--help"]).stdout


def test_a_broken_plugin_is_named(settings_factory):
    settings_factory(plugin_modules="broken=tests.support.no_such_module")
    result = doctor("--json")
    assert result.exit_code == 1
    (problem,) = problems(result, "plugins")
    assert "plugin 'broken': cannot import 'tests.support.no_such_module'" in problem["message"]
    assert "OBSERVATORY_PLUGIN_MODULES" in problem["remedy"]


def test_settings_that_do_not_load_are_named_by_their_variable(settings_factory, monkeypatch):
    from core.config import get_settings

    settings_factory()
    monkeypatch.setenv("OBSERVATORY_PORT", "eighty")
    get_settings.cache_clear()
    result = doctor("--json")
    assert result.exit_code == 1
    (problem,) = problems(result, "settings")
    assert problem["message"].startswith("the settings do not load: OBSERVATORY_PORT: ")
    assert "environment variable" in problem["remedy"]


# --------------------------------------------------------------------------------------------
# species_id's models
# --------------------------------------------------------------------------------------------


def species_registry(models: list[dict[str, Any]]) -> str:
    service = yaml.safe_load((ROOT / "registry.yaml").read_text())["services"]["species_id"]
    service["config"] = {"models": models}
    return yaml.safe_dump({"services": {"species_id": service},
                           "projects": [{"slug": "wildlife", "name": "Wildlife", "services": {"species_id": {}}}]})


@pytest.fixture(scope="module")
def built_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from plugins.species_id import model_build

    return model_build.build_default_model(tmp_path_factory.mktemp("doctor_models"))


def test_a_built_model_that_loads_passes(make_engine, built_model):
    engine = make_engine(species_registry([{"name": "lite0", "builtin": "efficientnet_lite0"}]))
    models = engine.settings.data_dir / "models"
    models.mkdir(parents=True)
    (models / built_model.name).symlink_to(built_model)
    result = doctor()
    assert result.exit_code == 0, result.output
    assert any(line.split()[:2] == ["ok", "models"] and "model lite0" in line and "loads (1000 labels)" in line
               and "used by wildlife" in line for line in result.stdout.splitlines()), result.stdout


def test_a_builtin_model_not_built_yet_is_a_warning_with_the_command(make_engine):
    make_engine(species_registry([{"name": "lite0", "builtin": "efficientnet_lite0"}]))
    result = doctor("--json")
    assert result.exit_code == 0  # a warning: the first identification builds it
    (check,) = [c for c in checks(result) if c["area"] == "models"]
    assert check["level"] == "warning" and "not built yet" in check["message"]
    assert check["remedy"] == "observatory models build lite0"


@pytest.mark.parametrize("content", [None, b"not an onnx model"], ids=["missing", "damaged"])
def test_a_model_file_missing_or_damaged_is_a_problem(make_engine, tmp_path, content):
    onnx = tmp_path / "mine.onnx"
    labels = tmp_path / "labels.txt"
    labels.write_text("fox\nbadger\n")
    if content is not None:
        onnx.write_bytes(content)
    make_engine(species_registry([{"name": "mine", "onnx": str(onnx), "labels": str(labels), "input_size": 224}]))
    result = doctor("--json")
    assert result.exit_code == 1
    (problem,) = problems(result, "models")
    if content is None:
        assert f"the ONNX file {onnx} does not exist" in problem["message"]
    else:
        assert "is not an ONNX model onnxruntime can load" in problem["message"]
    assert "observatory models add mine --onnx FILE --labels FILE" in problem["remedy"]
