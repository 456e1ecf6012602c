"""Identifications by people, the community taxon and research grade as iNaturalist decides them,
an expert queue across projects, and an iNaturalist-v1-compatible read API (docs/identification.md).

Modules: ``db`` (the plugin's tables), ``rules`` (the community taxon, categories, quality votes
and grade: pure functions), ``store`` (adding, withdrawing, restoring, recomputing), ``routes``
(the identification API), ``queue`` (experts' subscriptions and queue), ``inat_api`` (``/inat/v1``),
``plugin`` (the hooks).
"""
