"""docs/hackathon_plugin.md, done as a reader does it, in a new folder: its shell blocks run in order
(``tests/support/shell_blocks.py``), its two edits are made as the reader makes them (the hook's
new code in place of the generated one, the registry entries added to a copy of the engine's
``registry.yaml``), and ``observatory serve`` is started where the guide says to; then the
observation the guide submits shows the edited enrichment and the flag.

The reader's ``pip install -e`` must not change the engine's shared .venv (every other test would
see the plugin): the reader's environment is a throwaway virtual environment layered over it (a
``.pth`` adds .venv's packages), with ``pip`` and ``observatory`` run by its own interpreter, and
pip told to build with what is installed and to fetch nothing (PIP_NO_BUILD_ISOLATION,
PIP_NO_INDEX).
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
import sysconfig
import time
from contextlib import ExitStack, contextmanager
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
import yaml

from tests.support.serving import HOST, free_port, wait_until_healthy
from tests.support.shell_blocks import ShellBlock, reader_env, run_shell_blocks, shell_blocks

ROOT = Path(__file__).resolve().parent.parent
GUIDE = ROOT / "docs" / "hackathon_plugin.md"
GUIDE_ADDRESS = "http://127.0.0.1:8000"
EDIT = re.compile(r"^<!-- edit: (?P<path>\S+) -->\n```(?P<language>\w+)\n(?P<body>.*?)\n```$", re.M | re.S)


def edits(text: str) -> list[tuple[int, str, str]]:
    """(line, path, code) of each ``<!-- edit: PATH -->`` block of the guide."""
    return [(text[:m.start()].count("\n") + 1, m["path"], m["body"]) for m in EDIT.finditer(text)]


def replace_functions(source: str, code: str) -> str:
    """``source`` with each top-level function that ``code`` defines replaced by ``code``'s."""
    for new in ast.parse(code).body:
        assert isinstance(new, ast.FunctionDef)
        (old,) = [f for f in ast.parse(source).body if isinstance(f, ast.FunctionDef) and f.name == new.name]
        lines = source.splitlines()
        first = min([old.lineno, *(d.lineno for d in old.decorator_list)]) - 1
        start = min([new.lineno, *(d.lineno for d in new.decorator_list)]) - 1
        lines[first:old.end_lineno] = code.splitlines()[start:new.end_lineno]
        source = "\n".join(lines) + "\n"
    return source


def add_to_registry(registry: dict[str, Any], entries: dict[str, Any]) -> None:
    """What the guide asks: its services added, its projects' services added to those projects."""
    registry["services"].update(entries.get("services", {}))
    for project in entries.get("projects", []):
        (target,) = [p for p in registry["projects"] if p["slug"] == project["slug"]]
        target["services"] = {**(target.get("services") or {}), **project["services"]}


def apply_edit(folder: Path, path: str, code: str) -> None:
    target = folder / path
    if target.suffix == ".py":
        target.write_text(replace_functions(target.read_text(), code))
    else:
        registry = yaml.safe_load(target.read_text())
        add_to_registry(registry, yaml.safe_load(code))
        target.write_text(yaml.safe_dump(registry, sort_keys=False))


def reader_venv(folder: Path) -> Path:
    """A virtual environment that sees the engine's packages and installs into itself; its bin."""
    venv = folder / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    purelib = subprocess.run([str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             check=True, capture_output=True, text=True).stdout.strip()
    engine_site = sysconfig.get_paths()["purelib"]
    (Path(purelib) / "engine-venv.pth").write_text(f"import site; site.addsitedir({engine_site!r})\n")
    for command, module in (("pip", "pip"), ("observatory", "core.cli")):
        launcher = venv / "bin" / command
        launcher.write_text(f'#!/bin/sh\nexec "$(dirname "$0")/python" -m {module} "$@"\n')
        launcher.chmod(0o755)
    return venv / "bin"


@contextmanager
def serving(folder: Path, env: dict[str, str], port: int) -> Iterator[None]:
    """``observatory serve`` (API and worker) as the reader starts it, in the reader's folder."""
    log = (folder / "serve.log").open("w+")
    process = subprocess.Popen(["observatory", "serve", "--port", str(port)], cwd=folder, env=env, stdout=log,
                               stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_until_healthy(f"http://{HOST}:{port}", process)
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)
        log.close()


def steps(text: str) -> list[tuple[str, Any]]:
    """The guide in order: ("shell", [blocks run in one session]), ("edit", (path, code)), ("serve", None)."""
    found: list[tuple[int, str, Any]] = [(line, "edit", (path, code)) for line, path, code in edits(text)]
    for block in shell_blocks(GUIDE):
        if block.not_run is None:
            found.append((block.start, "shell", block))
        elif [t.strip() for _, t in block.lines] == ["observatory serve"]:
            found.append((block.start, "serve", None))
    ordered: list[tuple[str, Any]] = []
    for _, kind, item in sorted(found, key=lambda f: f[0]):
        if kind == "shell" and ordered and ordered[-1][0] == "shell":
            ordered[-1][1].append(item)
        else:
            ordered.append((kind, [item] if kind == "shell" else item))
    return ordered


def test_the_guide_is_in_the_order_a_reader_follows():
    kinds = [kind for kind, _ in steps(GUIDE.read_text(encoding="utf-8"))]
    assert kinds == ["shell", "edit", "shell", "edit", "shell", "serve", "shell"]
    first = steps(GUIDE.read_text(encoding="utf-8"))[0][1][0]
    assert isinstance(first, ShellBlock) and first.lines[0][1] == "observatory plugin new birds"


def test_an_edit_replaces_the_generated_function_and_adds_registry_entries():
    source = "import x\n\n\n@hookimpl\ndef enrich(a):\n    return 1\n\n\ndef other():\n    pass\n"
    assert replace_functions(source, "@hookimpl\ndef enrich(a, b):\n    return 2") == (
        "import x\n\n\n@hookimpl\ndef enrich(a, b):\n    return 2\n\n\ndef other():\n    pass\n")
    registry = {"services": {"a": {}}, "projects": [{"slug": "demo", "name": "D", "services": {}}]}
    add_to_registry(registry, {"services": {"b": {"summary": "b"}}, "projects": [{"slug": "demo", "services": {"b": {}}}]})
    assert registry == {"services": {"a": {}, "b": {"summary": "b"}},
                        "projects": [{"slug": "demo", "name": "D", "services": {"b": {}}}]}


@pytest.mark.slow  # about a minute and a half: a package installed, its tests, a server and a worker
def test_the_guide_runs_as_written(tmp_path):
    folder = tmp_path / "reader"
    folder.mkdir()
    (folder / "registry.yaml").write_text((ROOT / "registry.yaml").read_text())
    env = reader_env(folder / "var", folder)  # no OBSERVATORY_* but the data folder and this registry
    env["PATH"] = f"{reader_venv(tmp_path)}:{env['PATH']}"
    env.update(PIP_NO_BUILD_ISOLATION="0", PIP_NO_INDEX="1")
    port = free_port()
    base = f"http://{HOST}:{port}"
    with ExitStack() as stack:
        for kind, item in steps(GUIDE.read_text(encoding="utf-8")):
            if kind == "shell":
                run_shell_blocks(item, cwd=folder, env=env, replace={GUIDE_ADDRESS: base}, timeout_s=400)
            elif kind == "edit":
                apply_edit(folder, *item)
            else:
                stack.enter_context(serving(folder, env, port))

        with pytest.raises(PackageNotFoundError):
            distribution("observatory-birds")  # the engine's .venv is unchanged
        robin = json.loads((folder / "robin.json").read_text())
        token = subprocess.run(["observatory", "tokens", "create", "--role", "operator"], cwd=folder, env=env,
                               capture_output=True, text=True, check=True).stdout.strip()
        deadline = time.monotonic() + 60
        while True:
            seen = httpx.get(f"{base}/api/v1/observations/{robin['id']}", headers={"Authorization": f"Bearer {token}"})
            birds = seen.json()["enrichments"]["birds"]
            if birds["status"] == "done" and seen.json()["grade"] is not None or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    assert birds["status"] == "done", (folder / "serve.log").read_text()[-3000:]
    assert birds["result"] == {"photos": 0, "note_words": 6}, "the edited hook ran in the worker"
    assert [(f["plugin"], f["code"]) for f in seen.json()["flags"]] == [("birds", "few_photos")]
