"""The odour service as test registries declare it."""

from __future__ import annotations

import json

from plugins.odour.schema import ODOUR_SETTINGS_SCHEMA


def odour_service(pseudonym_key: str) -> str:
    """The ``odour`` entry of a registry's ``services:`` (two-space indented), with the plugin's own
    settings schema and ``pseudonym_key`` for OdourCollect's ``id_user``."""
    return (f"  odour:\n    summary: odour reports\n    config: {{pseudonym_key: {json.dumps(pseudonym_key)}}}\n"
            f"    settings: {json.dumps(ODOUR_SETTINGS_SCHEMA)}\n")
