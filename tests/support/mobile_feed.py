"""What the mobile bridge's feed, stream and webhook tests share: a registry whose projects use
the bridge (with species_id on real photos, odour, the recorder and ``doubter``), the engine on
it with the bridge's tables emptied, people with tokens, and the engine's app served by a real
uvicorn on loopback.

Import the fixtures a test module uses: ``from tests.support.mobile_feed import engine, people, ...``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

import pytest
import uvicorn
import yaml

from core import hookimpl
from core.accounts import create_account, grant
from core.engine import Engine
from core.tokens import create_account_token
from core.types import Flag
from tests.support.serving import HOST, free_port
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
API = "/api/v1"
MOBILE = "/api/v1/mobile"



@hookimpl
def quality_check(observation: Any, project: Any) -> list[Flag]:
    """The ``doubter`` test service: an error flag (grade casual) while ``fields.doubtful`` is set."""
    if observation.fields.get("doubtful"):
        return [Flag("doubtful", "the contributor doubts it", "error")]
    return []


def _services() -> dict[str, Any]:
    services = yaml.safe_load((ROOT / "registry.yaml").read_text())["services"]
    from plugins.species_id import model_build

    species = services["species_id"]
    species["config"] = {"default_model": model_build.DEFAULT_MODEL["name"],
                         "models": [{"name": model_build.DEFAULT_MODEL["name"], "builtin": "efficientnet_lite0"}]}
    return {
        "mobile_bridge": services["mobile_bridge"], "species_id": species, "odour": services["odour"],
        "recorder": {"summary": "records which observations it saw", "settings": {"type": "object"}},
        "doubter": {"summary": "flags observations marked doubtful", "settings": {"type": "object"}},
    }


ZONE = [[2.150, 41.365], [2.250, 41.365], [2.250, 41.435], [2.150, 41.435]]
FEED_REGISTRY = yaml.safe_dump({
    "services": _services(),
    "projects": [
        {"slug": "wild", "name": "Wild", "public": True, "auto_publish": True,
         "services": {"mobile_bridge": {}, "species_id": {}, "recorder": {}, "doubter": {}}},
        {"slug": "smells", "name": "Smells", "public": True, "auto_publish": True, "timezone": "Europe/Madrid",
         "services": {"mobile_bridge": {}, "odour": {
             "points_of_interest": [{"name": "Chemical plant", "lat": 41.40, "lon": 2.20}],
             "zones": [{"name": "Industrial estate", "polygon": ZONE}]}}},
        {"slug": "closed", "name": "Closed", "public": False, "auto_publish": True,
         "services": {"mobile_bridge": {}, "recorder": {}}},
        {"slug": "plain", "name": "Plain", "public": True, "auto_publish": True, "services": {"recorder": {}}},
    ],
}, sort_keys=False)


@pytest.fixture
def registry() -> str:
    return FEED_REGISTRY


@pytest.fixture
def plugins() -> str:
    return "recorder=tests.support.recorder,doubter=tests.support.mobile_feed"


@pytest.fixture(scope="session")
def built_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from plugins.species_id import model_build

    return model_build.build_default_model(tmp_path_factory.mktemp("species_id_models"))


@pytest.fixture
def engine(make_engine: Callable[..., Engine], built_model: Path) -> Engine:
    """An engine on ``FEED_REGISTRY`` (enrichments inline), the bridge's tables emptied."""
    from plugins.mobile_bridge.db import metadata

    made = make_engine()
    models = Path(made.settings.data_dir) / "models"
    models.mkdir(parents=True, exist_ok=True)
    (models / built_model.name).symlink_to(built_model)
    with made.db.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            conn.execute(table.delete())
    return made


def bearer_of(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class People:
    """Accounts with a token each, by name: ``people.add("ana", wild="contributor")``."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.ids: dict[str, int] = {}
        self.tokens: dict[str, str] = {}

    def add(self, name: str, **roles: str) -> str:
        account = create_account(self.engine, name.title())
        for project, role in roles.items():
            grant(self.engine, account.id, project, role)
        self.ids[name] = account.id
        self.tokens[name] = create_account_token(self.engine, account.id, name=f"{name}'s phone", kind="device").token
        return self.tokens[name]

    def auth(self, name: str) -> dict[str, str]:
        return bearer_of(self.tokens[name])


@pytest.fixture
def people(engine: Engine) -> People:
    return People(engine)


class LiveServer:
    """The engine's app under a real uvicorn on loopback, in a thread of this process."""

    def __init__(self, engine: Engine):
        from core.api.app import create_app

        self.port = free_port()
        self.base = f"http://{HOST}:{self.port}"
        config = uvicorn.Config(create_app(engine), host=HOST, port=self.port, log_level="warning",
                                access_log=False, lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="uvicorn", daemon=True)

    def start(self) -> None:
        self.thread.start()
        wait_until(lambda: self.server.started, 30, "uvicorn to start")

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


@pytest.fixture
def live_server(engine: Engine) -> Iterator[LiveServer]:
    server = LiveServer(engine)
    server.start()
    try:
        yield server
    finally:
        server.stop()
