"""The README's "People and data" walk, run as a user runs it: its shell block, unchanged but for
the server's address, in bash against a running engine; then what a user would check afterwards.

An administrator signs in, a comment is hidden, an old project's CSV is imported after a dry
run, the result is published and archived as a Darwin Core Archive that python-dwca-reader
reads, and a contributor downloads and then erases their data: after which no output of the
engine names them.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import httpx
import pytest

from core.db.migrate import upgrade
from tests.conftest import PG_ENV
from tests.support.serving import api_server

ROOT = Path(__file__).resolve().parent.parent
MARKER = "<!-- walk: people-and-data"


def readme_block() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index(MARKER)
    body = text[start:].split("```sh\n", 1)[1]
    return body.split("\n```", 1)[0]


@pytest.fixture
def walk_env(tmp_path, database_url):
    if os.environ.get(PG_ENV):
        url = database_url  # the session's database, emptied: plugins' tables too (they refer to the engine's)
        import sqlalchemy as sa

        from core.db.session import make_engine

        db = make_engine(url)
        tables = sa.MetaData()
        tables.reflect(db)
        with db.begin() as conn:
            for table in reversed(tables.sorted_tables):
                if table.name != "alembic_version":
                    conn.execute(table.delete())
        db.dispose()
    else:
        url = f"sqlite:///{tmp_path / 'walk.db'}"
        upgrade(url)
    shutil.copytree(ROOT / "docs" / "examples", tmp_path / "docs" / "examples")
    bin_dir = str(Path(sys.executable).parent)
    return {
        "OBSERVATORY_DATABASE_URL": url,
        "OBSERVATORY_DATA_DIR": str(tmp_path / "data"),
        "OBSERVATORY_REGISTRY_PATH": str(ROOT / "registry.yaml"),
        "OBSERVATORY_PLUGIN_MODULES": "",
        "OBSERVATORY_ENVIRONMENT": "test",
        "OBSERVATORY_TOKEN_CACHE_S": "0",
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": str(ROOT),
    }


@pytest.mark.slow  # once in CI (the PostgreSQL pass); test_readme_shell.py also runs this block, on SQLite
def test_the_people_and_data_walk_of_the_readme(tmp_path, walk_env):
    with api_server(tmp_path, ROOT, env=walk_env) as base:
        script = readme_block().replace("http://127.0.0.1:8000", base)
        done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, capture_output=True, text=True,
                              env={**os.environ, **walk_env}, timeout=300)
        assert done.returncode == 0, f"the README walk failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        operator = subprocess.run([sys.executable, "-m", "core.cli", "tokens", "create", "--role", "operator"],
                                  cwd=tmp_path, capture_output=True, text=True, env={**os.environ, **walk_env},
                                  check=True).stdout.strip()
        staff = {"Authorization": f"Bearer {operator}"}
        api = f"{base}/api/v1"

        # the dry run reported the two bad rows; the import stored the four others once
        problems = list(csv.DictReader((tmp_path / "dry-run.csv").open(encoding="utf-8")))
        assert {p["source_id"] for p in problems if p["outcome"] != "stored"} >= {"OP-3", "OP-4"}
        everything = httpx.get(f"{api}/projects/demo/observations", params={"limit": 200}, headers=staff).json()["items"]
        imported = [o for o in everything if (o["client_id"] or "").startswith("old-project:")]
        assert sorted(o["client_id"] for o in imported) == [f"old-project:OP-{i}" for i in (1, 2, 5, 6)]
        assert all(o["status"] == "published" for o in everything)

        # the archive holds every published record, and python-dwca-reader reads it
        assert "5 occurrences" in done.stdout
        from dwca.read import DwCAReader

        with DwCAReader(str(tmp_path / "demo-dwca.zip")) as archive:
            names = {term.rsplit("/", 1)[-1] for term in archive.core_file.file_descriptor.terms}
            assert {"occurrenceID", "basisOfRecord", "eventDate", "decimalLatitude", "license"} <= names

        # anonymous readers do not see the hidden comment; staff still do, marked hidden
        # (Ben's fox: the one not imported; erased, it has no client id any more)
        ben_fox = next(o for o in everything if o["fields"].get("species") == "Vulpes vulpes" and not o["client_id"])
        assert httpx.get(f"{api}/observations/{ben_fox['id']}/comments").json()["items"] == []
        kept = httpx.get(f"{api}/observations/{ben_fox['id']}/comments", headers=staff).json()["items"]
        assert [c["hidden"] for c in kept] == [True]

        # Ben's download held his account and his observation
        with zipfile.ZipFile(tmp_path / "ben-data.zip") as download:
            account = json.loads(download.read("account.json"))
            assert account["email"] == "ben@example.org"
            assert "ben-0001" in download.read("observations.json").decode()

        # after the erasure, nothing the engine serves names Ben
        outputs = [
            httpx.get(f"{api}/projects/demo/observations", params={"limit": 200}, headers=staff).text,
            httpx.get(f"{api}/projects/demo/export", params={"scope": "all"}, headers=staff).text,
            httpx.get(f"{api}/projects/demo/audit", headers=staff).text,
            httpx.get(f"{api}/projects/demo/comments", params={"state": "all"}, headers=staff).text,
            httpx.get(f"{api}/accounts", headers=staff).text,
        ]
        for text in outputs:
            assert "Ben Okafor" not in text and "ben@example.org" not in text
        accounts = httpx.get(f"{api}/accounts", headers=staff).json()
        assert "Ada Lovelace" in {a["display_name"] for a in accounts}
        ben_obs = next(o for o in httpx.get(f"{api}/projects/demo/observations", params={"limit": 200},
                                            headers=staff).json()["items"] if o["fields"].get("species") == "Vulpes vulpes"
                       and o["client_id"] is None)
        assert ben_obs["contributor_id"] is None, "anonymised: the observation stays, with no link to Ben"
        assert not any(re.search(rf'"contributor_id":\s*{account["id"]}\b', text) for text in outputs)
