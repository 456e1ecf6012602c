"""The default taxonomy: what installed plugins offer through ``register_taxa`` (species_id's
label file, for one), loaded when the taxon table is empty at start-up so a fresh engine works
offline, and by ``observatory taxa defaults``."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError, IntegrityError

from core.taxonomy.load import TAXA, Report, load_records
from core.types import TaxonRecord

if TYPE_CHECKING:
    from core.engine import Engine

log = logging.getLogger(__name__)


def collect(engine: Engine) -> dict[str, list[TaxonRecord]]:
    """Every installed plugin's ``register_taxa`` records, by plugin name. A plugin that raises
    (or registers something that is not a TaxonRecord) is logged and left out, never fatal."""
    found: dict[str, list[TaxonRecord]] = {}
    for plugin in engine.host.plugins_of("register_taxa"):
        records: list[TaxonRecord] = []

        def register(record: TaxonRecord, _into: list[TaxonRecord] = records) -> None:
            if not isinstance(record, TaxonRecord):
                raise TypeError(f"register_taxa takes TaxonRecord, not {type(record).__name__}")
            _into.append(record)

        try:
            engine.host.caller("register_taxa", None, None, only=plugin)(register=register)
        except Exception as exc:  # noqa: BLE001 (one plugin's failure leaves the others' taxa)
            log.warning("plugin %r: register_taxa failed, its taxa are not loaded: %s: %s", plugin,
                        type(exc).__name__, exc)
            continue
        found[plugin] = records
    return found


def load_defaults(engine: Engine) -> list[Report]:
    """Load every installed plugin's ``register_taxa`` (source: the plugin's name); one report
    per plugin. Idempotent: a second call reports every taxon unchanged."""
    return [load_records(engine, records, plugin) for plugin, records in collect(engine).items() if records]


def taxa_table_empty(engine: Engine) -> bool | None:
    """Whether the taxon table has no row; None when the database has no taxon table yet."""
    if not sa.inspect(engine.db).has_table(TAXA.name):
        return None
    with engine.db.connect() as conn:
        return conn.execute(sa.select(TAXA.c.id).limit(1)).first() is None


def load_defaults_if_empty(engine: Engine) -> list[Report]:
    """At start-up: the defaults when the taxon table is empty (nothing otherwise, nor before
    the database is migrated). Never raises: a failure is logged and the engine starts."""
    try:
        if not taxa_table_empty(engine):
            return []
        reports = load_defaults(engine)
    except IntegrityError:  # another process (a worker beside serve) loaded them at the same moment
        log.info("the default taxonomy was loaded by another process")
        return []
    except (DBAPIError, ValueError, TypeError) as exc:
        log.warning("the default taxonomy was not loaded: %s: %s", type(exc).__name__, exc)
        return []
    for report in reports:
        log.info("default taxonomy: %s", report.summary())
    return reports
