"""Installation secrets (the keys behind pseudonyms): from the settings, from another environment
variable, or made once per installation in a file of the data folder, never committed."""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time
from pathlib import Path

from core.errors import EngineError

log = logging.getLogger(__name__)
_KEYS: dict[str, bytes] = {}
_LOCK = threading.Lock()


def secret_key(configured: str, path: Path, *, setting: str, error: type[EngineError], code: str) -> bytes:
    """The key a ``setting`` asks for: ``configured`` itself; ``env:NAME``, the variable NAME
    (``error`` with ``code`` when it is not set); empty, a random key made once in ``path``
    (mode 0600) and read back on every later start, so pseudonyms stay stable across restarts."""
    if configured.startswith("env:"):
        value = os.environ.get(configured[4:], "")
        if not value:
            raise error(f"{setting} names the environment variable {configured[4:]!r}, which is not set", code=code)
        return value.encode()
    if configured:
        return configured.encode()
    cache_key = str(Path(path).resolve())
    with _LOCK:
        if cache_key not in _KEYS:
            _KEYS[cache_key] = _read_or_create(Path(path), error, code)
        return _KEYS[cache_key]


def _read_or_create(path: Path, error: type[EngineError], code: str) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(50):  # another process may have created it and not written it yet
            key = path.read_text(encoding="ascii").strip()
            if key:
                return key.encode()
            time.sleep(0.02)
        raise error(f"{path} is empty: delete it to make a new key", code=code) from None
    key = secrets.token_hex(32)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(key + "\n")
    log.info("made a new secret key in %s", path)
    return key.encode()


def forget_cached_keys() -> None:
    """Read every key from its file again on next use (as a restarted process does)."""
    with _LOCK:
        _KEYS.clear()
