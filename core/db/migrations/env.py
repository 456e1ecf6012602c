"""Alembic environment: the URL comes from the engine's settings (or the caller's config)."""

from __future__ import annotations

from alembic import context

from core.db.models import Base
import core.db.models_console  # noqa: F401,E402  (the console's and the map's tables on Base.metadata)
import core.db.models_map  # noqa: F401,E402
from core.db.session import make_engine

config = context.config
url = config.get_main_option("sqlalchemy.url")
engine = make_engine(url)

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
engine.dispose()
