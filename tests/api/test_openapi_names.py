"""The OpenAPI document names every schema plainly: client generators (openapi-generator,
openapi-python-client) turn the names into classes, and two plugins' models of one name would
come out as ``plugins__x__routes__TaxonOut``."""

from __future__ import annotations

from typing import Any


def test_every_schema_has_a_plain_name(client: Any) -> None:
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    mangled = sorted(name for name in schemas if "__" in name)
    assert mangled == [], f"models of one name in two modules; rename one: {mangled}"
    assert {"QueueTaxonOut", "IdentifiedTaxonOut", "InatTaxonOut", "TaxonOut"} <= set(schemas)
