"""What the tests of sign-up, forms, sync and edits share: a registry whose projects enable the
mobile bridge (its service entry is the repository's registry.yaml one), and an app's steps."""

from __future__ import annotations

import hashlib
import uuid as uuids
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[3]
API = "/api/v1/mobile"


def bridge_registry(settings: str = "{}", extra_projects: str = "") -> str:
    """Projects ``field`` (mobile_bridge with ``settings``, licences and a consent choice) and
    ``closed`` (the bridge not enabled)."""
    service = yaml.safe_load((ROOT / "registry.yaml").read_text())["services"]["mobile_bridge"]
    return yaml.safe_dump({"services": {"mobile_bridge": service}}) + f"""
projects:
  - slug: field
    name: Field
    timezone: Europe/Madrid
    licence: CC-BY-4.0
    licences: [CC0-1.0, CC-BY-4.0]
    consent_choices:
      - {{name: newsletter, text: "Send me the newsletter.", version: "2"}}
    services: {{mobile_bridge: {settings}}}
  - slug: closed
    name: Closed
    services: {{}}
{extra_projects}"""


def empty_bridge_tables(engine: Any) -> None:
    """Delete the rows of the plugin's own tables (the test kit empties only the engine's)."""
    from plugins.mobile_bridge.db import metadata

    with engine.db.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            conn.execute(table.delete())


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def sign_up(client: Any, slug: str = "field", name: str = "Ana", **extra: Any) -> dict[str, Any]:
    """An app signs a person up; the answer (with the device token)."""
    body = {"display_name": name, "device_name": f"{name}'s phone", **extra}
    response = client.post(f"{API}/projects/{slug}/signup", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def now() -> datetime:
    return datetime.now(timezone.utc)


def media_ref(data: bytes, content_type: str = "image/jpeg") -> dict[str, Any]:
    return {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data), "content_type": content_type}


def item(note: str = "a fox", media: list[bytes] | None = None, uuid: str | None = None, **overrides: Any) -> dict[str, Any]:
    """A queued observation as an app keeps it offline."""
    made = now() - timedelta(hours=2)
    base: dict[str, Any] = {
        "uuid": uuid or str(uuids.uuid4()),
        "observed_at": made.isoformat(),
        "location": {"lat": 41.39, "lon": 2.17, "accuracy_m": 8},
        "fields": {"note": note},
        "device_created_at": made.isoformat(),
        "device_sent_at": now().isoformat(),
        "media": [media_ref(m) for m in media or []],
    }
    base.update(overrides)
    return base


def multipart(items: list[dict[str, Any]], files: list[tuple[str, bytes]]) -> dict[str, Any]:
    """``client.post(..., **multipart(items, files))``: the batch with its media in one request."""
    import json

    return {"files": [("batch", (None, json.dumps({"items": items}), "application/json")),
                      *[("media", (name, data, "image/jpeg")) for name, data in files]]}
