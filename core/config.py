"""Settings from ``OBSERVATORY_*`` environment variables, with embedded defaults.

On a fresh machine nothing needs setting: a SQLite file, a Celery transport on the local
file system and a media folder, all under ``data_dir``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OBSERVATORY_", extra="ignore")

    environment: str = Field("development", description="development, test or production")
    data_dir: Path = Field(Path("var"), description="where embedded defaults keep their files")
    database_url: str = ""
    broker_url: str = ""
    media_dir: Path | None = None
    registry_path: Path = Path("registry.yaml")
    plugin_modules: str = Field("", description="extra plugin modules to load, comma-separated")
    load_plugins: str | None = Field(None, description="the installed plugins to load, comma-separated entry-point "
                                     "names (unset: every installed one; empty: none); plugin_modules come on top")
    trace_plugins: bool = Field(False, description="log every hook call with its plugins, time and answer "
                                "(logger observatory.plugins.trace)")

    enrich_max_attempts: int = 3
    enrich_retry_backoff_s: float = 2.0
    enrich_timeout_s: float = 60.0
    recovery_interval_s: float = 15.0
    dispatch_linger_ms: float = Field(20.0, description="how long a process gathers enrichments into one broker "
                                      "message (0: one message each, sent before submit returns)")
    lease_grace_s: float = Field(10.0, description="how long past its time limit a claimed enrichment is presumed lost")
    max_upload_bytes: int = 20 * 1024 * 1024
    max_request_bytes: int = Field(100 * 1024 * 1024, description="largest request body, media included")
    max_image_pixels: int = 80_000_000
    max_future_skew_s: int = 24 * 3600
    # What an observation's ``fields`` may hold (core.lifecycle.field_problems); see docs/security.md
    max_field_depth: int = Field(32, ge=1, le=200, description="levels of objects and arrays inside fields "
                                 "(at most 200: every reader, the audit log included, stays far below its own limit)")
    max_field_value_bytes: int = Field(64 * 1024, ge=1, description="largest string (value or key) in fields, "
                                       "in UTF-8 bytes")
    max_page_bytes: int = Field(8 * 1024 * 1024, ge=1, description="a list or audit page stops once the JSON "
                                "fields it carries pass this (it always holds one row); next_cursor goes on")
    max_fields_bytes: int = Field(256 * 1024, ge=1, description="largest fields of one observation, as compact "
                                  "UTF-8 JSON")
    max_field_keys: int = Field(1000, ge=1, description="most object keys in fields, at every level together")
    max_field_integer: int = Field(2**53 - 1, ge=0, description="largest integer (in magnitude) in fields; past "
                                   "2^53 - 1 JSON readers that use doubles (browsers, GeoJSON tools) read another "
                                   "number (RFC 7493)")
    rate_limit_per_minute: int = 600
    token_cache_s: float = Field(5.0, description="how long an API process trusts a token it has checked "
                                 "(a token revoked elsewhere stops working within this time; 0: check every request)")

    import_pseudonym_key: str = Field("", description="secret behind the pseudonymous contributor keys of "
                                      "imported data; empty: made once in <data_dir>/import-pseudonym.key; "
                                      "env:NAME reads another variable")

    metrics_token: str = Field("", description="bearer token Prometheus presents to read /metrics; empty: only "
                               "callers on this machine (127.0.0.1, ::1) may read it")

    host: str = "127.0.0.1"
    port: int = 8000
    public_url: str = Field("", description="the engine's address as the world reaches it, e.g. "
                            "https://observatory.example.org (links in exports and archives); "
                            "http://HOST:PORT when left empty")
    sign_in_max_failures: int = Field(5, ge=1, description="failed password sign-ins per account within "
                                      "sign_in_window_s before it is refused (429)")
    sign_in_max_failures_per_address: int = Field(20, ge=1, description="failed sign-ins from one address "
                                                  "within sign_in_window_s before it is refused")
    sign_in_window_s: int = Field(900, ge=1)
    session_hours: float = Field(12.0, gt=0, description="how long a web sign-in lasts")
    web_secret_key: str = Field("", description="key that signs the web console's session cookies; empty: "
                                "made once in <data_dir>/web-session.key; env:NAME reads another variable")
    map_tile_url: str = Field("https://tile.openstreetmap.org/{z}/{x}/{y}.png",
                              description="the public map's tiles (a Leaflet URL template); empty: no tiles, "
                              "points over a plain background")
    map_tile_attribution: str = Field("&copy; OpenStreetMap contributors",
                                      description="the credit shown under the map's tiles")

    @model_validator(mode="after")
    def _embedded_defaults(self) -> "Settings":
        data = self.data_dir
        if not self.database_url:
            self.database_url = f"sqlite:///{(data / 'observatory.db').as_posix()}"
        if not self.broker_url:
            self.broker_url = "filesystem://"
        if self.media_dir is None:
            self.media_dir = data / "media"
        if self.environment == "production" and self.database_url.startswith("sqlite") and ":memory:" in self.database_url:
            raise ValueError("OBSERVATORY_DATABASE_URL: an in-memory database loses everything in production")
        return self

    @property
    def base_url(self) -> str:
        """``public_url`` without a trailing slash, or http://host:port."""
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def broker_folder(self) -> Path:
        return self.data_dir / "broker"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def ensure_dirs(self) -> None:
        """Create the folders the embedded defaults write to."""
        assert self.media_dir is not None
        for path in (self.data_dir, self.media_dir):
            path.mkdir(parents=True, exist_ok=True)
        if self.broker_url.startswith("filesystem"):
            for sub in ("in", "processed", "control"):
                (self.broker_folder / sub).mkdir(parents=True, exist_ok=True)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
