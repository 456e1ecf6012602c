"""The Alembic migrations build exactly the schema the models describe."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from core.db.models import Base
import core.db.models_console  # noqa: F401,E402  (the console's and the map's tables on Base.metadata)
import core.db.models_map  # noqa: F401,E402
from core.db.session import make_engine


def test_migrations_match_the_models(database_url):
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            # a plugin's own tables (made at its start-up, e.g. the mobile bridge's) are not the migrations' business
            engines_own = lambda name, kind, _parent: kind != "table" or name in Base.metadata.tables  # noqa: E731
            diff = compare_metadata(MigrationContext.configure(conn, opts={"include_name": engines_own}), Base.metadata)
    finally:
        engine.dispose()
    assert diff == [], f"models and migrations differ; write a migration: {diff}"
