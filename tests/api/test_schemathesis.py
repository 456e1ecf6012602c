"""Property-based tests of the whole API against its own OpenAPI document (schemathesis).

Every operation of ``/openapi.json`` is called in-process on the ASGI app with generated
requests, valid and invalid, once with an operator's token and once with no token. Whatever
comes in, no route may answer 5xx, and every answer must be one the document declares, with
the declared status code, content type and body schema.

The database is seeded first (observations in every status, one with a photo, an audit trail),
and generated path parameters are often swapped for the seeded ids and project slugs, so that
reads, edits and moderation reach real rows rather than only 404s.

Bounded: ``OBSERVATORY_SCHEMATHESIS_EXAMPLES`` examples per operation (default 40), no deadline,
no example database (nothing is written to the working tree), the same examples on every run
unless ``OBSERVATORY_SCHEMATHESIS_RANDOM=1``. About 15 s for the file on SQLite or PostgreSQL.
"""

from __future__ import annotations

import os
from collections import Counter
from typing import Any, Callable, Iterator

import hypothesis
import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from hypothesis import HealthCheck
from hypothesis import strategies as st

from core.api.ratelimit import RateLimiter

MAX_EXAMPLES = int(os.environ.get("OBSERVATORY_SCHEMATHESIS_EXAMPLES", "40"))

hypothesis.settings.register_profile(
    "observatory-api",
    max_examples=MAX_EXAMPLES,
    deadline=None,
    database=None,
    # the same requests on every run, so a failure reproduces; OBSERVATORY_SCHEMATHESIS_RANDOM=1 explores
    derandomize=not os.environ.get("OBSERVATORY_SCHEMATHESIS_RANDOM"),
    suppress_health_check=list(HealthCheck),
    print_blob=True,
)
PROFILE = hypothesis.settings.get_profile("observatory-api")
# tus chunks (the mobile bridge's uploads) are raw bytes
schemathesis.serializer.alias("application/offset+octet-stream", "application/octet-stream")

# every check schemathesis has, but the response time (a shared CI machine) and the
# two-user object-level check (tests/api/test_access.py walks every route and role instead)
CHECKS_NAMES = ("not_a_server_error", "status_code_conformance", "content_type_conformance",
                "response_schema_conformance", "response_headers_conformance", "negative_data_rejection",
                "positive_data_acceptance", "missing_required_header", "unsupported_method",
                "allow_header_conformance", "use_after_free", "ensure_resource_availability", "ignored_auth")


# Refusals no OpenAPI schema can express, so a schema-valid request may still get them: a time
# past "now + max_future_skew_s", a cursor this API never gave out (opaque, only valid as given),
# a bounding box whose numbers are shaped right but out of range or with south > north.
# The kinds a draft may have depend on the project's services, and /identify wants as many organs
# as images (or none), a rule between two fields. Free-form fields are checked at every depth
# (their nesting, key count, total size, string length and integer range; the schema's
# description of `fields` states the limits) and against the kind's own JSON Schema (`schema_*`,
# served by GET /projects/{slug}), which a route's one schema cannot hold for every kind.
SCHEMA_CANNOT_SAY = {"time_in_future", "invalid_cursor", "invalid_bbox", "unknown_kind", "organs_mismatch",
                     "too_deep", "too_many_keys", "fields_too_large", "field_too_long",
                     "integer_out_of_range", "nul_character", "lone_surrogate",
                     # a file's content is sniffed and decoded: `format: binary` cannot say which bytes are a photo
                     "media_corrupt", "media_empty", "media_type_mismatch", "media_unknown_type",
                     "media_unsupported_type", "media_too_many_pixels",
                     # /identify's models are added while the engine runs (`observatory models add`)
                     "unknown_model",
                     # a project's licences are set in registry.yaml; a polygon is GeoJSON text in a query string
                     "unknown_licence", "invalid_filter_value",
                     # a project's consent choices and their text versions are set in registry.yaml
                     "unknown_choice", "consent_version_outdated",
                     # a webhook's host must be public (localhost only outside production): a DNS question
                     "invalid_webhook_url",
                     # a tus body past its Upload-Length or Tus-Max-Size, a chunk's checksum, the finished
                     # file's sha256 against the one announced at creation
                     "upload_too_large", "checksum_mismatch", "sha256_mismatch",
                     # taxa are the taxonomy's rows (an id the document cannot list), text without control
                     # characters, a subscription needs a taxon or a place
                     "unknown_taxon", "inactive_taxon", "empty_taxon_group", "empty_subscription",
                     "body_control_characters",
                     # a video's bytes are probed (a file that is not a video, cut short, of a codec
                     # OpenCV cannot read, too large a frame); a path must lie in the operator's folders;
                     # a deployment is a row of the project's; a job's settings follow the project's schema
                     "not_a_video", "truncated", "no_frames", "unreadable_codec", "too_large", "not_found",
                     "path_not_allowed", "unreachable", "invalid_url", "unknown_deployment", "invalid_settings",
                     # feedback names a service installed in this engine and used by the project (plugins,
                     # registry.yaml), and its fields depend on each other (a correction only with disagree, a
                     # rating only for kind rating, a comment's text); a project may require a download's purpose
                     "unknown_service", "service_not_enabled", "correction_with_agree", "rating_not_expected",
                     "body_empty", "purpose_required"}


def _checks(response: Any = None) -> list[Any]:
    from schemathesis import checks

    names = CHECKS_NAMES
    if response is not None and response.status_code in (413, 422, 460) and _only_unsayable(response):
        names = tuple(n for n in names if n != "positive_data_acceptance")
    return [getattr(checks, name) for name in names]


def _only_unsayable(response: Any) -> bool:
    """Whether every reason of a 422 is one of the refusals no schema can express."""
    try:
        error = response.json()["error"]
    except (ValueError, KeyError, TypeError):
        return False
    codes = [d.get("code") for d in error.get("details") or []] or [error.get("code")]
    return all(c in SCHEMA_CANNOT_SAY or str(c).startswith("schema_") for c in codes)


def call_and_check(case: schemathesis.Case, headers: dict[str, str] | None = None) -> Any:
    """Call the operation and run every check (but positive-data acceptance on refusals the schema cannot say)."""
    response = case.call(headers=headers)
    case.validate_response(response, checks=_checks(response), headers=headers)
    return response


@pytest.fixture
def seeded(make_observation: Callable[..., dict[str, Any]], make_token: Callable[..., str],
           small_png: bytes, client: TestClient) -> dict[str, list[Any]]:
    """Observations in every status, in each project, one with a photo; returns their ids."""
    contributor = make_token("contributor", "alpha")
    made = [  # the first is the one the document's examples name
        make_observation("alpha", status="published", client_id="seed-1",
                         files=[("seed.png", small_png, "image/png")]),
        make_observation("alpha", client_id="seed-2"),
        make_observation("alpha", status="unpublished", token=contributor),
        make_observation("alpha", status="trashed"),
        make_observation("beta", status="published"),
        make_observation("gamma", fields={"note": "coarsened in public"}),
    ]
    comment = client.post(f"/api/v1/observations/{made[0]['id']}/comments", json={"body": "a seeded comment"},
                          headers={"Authorization": f"Bearer {contributor}"})
    assert comment.status_code == 201, comment.text
    return {
        "comment_id": [comment.json()["id"]],
        "obs_id": [o["id"] for o in made],
        "media_id": [m["id"] for o in made for m in o["media"]],
        "slug": ["alpha", "beta", "gamma"],
    }


@pytest.fixture
def api_schema(app: FastAPI, client: TestClient, seeded: dict[str, list[Any]]) -> schemathesis.BaseSchema:
    """The app's own /openapi.json, with seeded ids as the examples of path parameters.

    The examples and coverage phases start from a parameter's example; without one they would
    only ever ask for project "0" and observation 1.
    """
    # thousands of requests in a minute from one caller: the rate limit would answer 429 to most
    app.state.rate_limiter = RateLimiter(0)
    response = client.get("/openapi.json")
    assert response.status_code == 200
    document = response.json()
    for operations in document["paths"].values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path" and seeded.get(parameter["name"]):
                    parameter["example"] = seeded[parameter["name"]][0]
    schema = schemathesis.openapi.from_dict(document)
    schema.app = app  # calls go to the app in-process, as with schemathesis.openapi.from_asgi

    @schema.hook
    def flatmap_path_parameters(context: Any, params: dict[str, Any] | None) -> st.SearchStrategy:
        """Keep the generated path parameters, or swap in seeded ids and slugs (half the time).

        Only values that are valid are swapped: an invalid one belongs to a negative case, and
        swapping it for a real id would make a valid request that is expected to be refused."""
        declared = {p.name: p.definition.get("schema", {}) for p in context.operation.path_parameters} \
            if context is not None and context.operation is not None else {}
        swaps = {k: st.sampled_from(seeded[k]) for k in (params or {})
                 if seeded.get(k) and _valid(params[k], declared.get(k))}
        if not swaps or not isinstance(params, dict):
            return st.just(params)
        real = st.fixed_dictionaries({k: swaps.get(k, st.just(v)) for k, v in params.items()})
        return st.one_of(st.just(params), real)

    return schema


schema = schemathesis.pytest.from_fixture("api_schema")


@pytest.fixture
def answers(request: pytest.FixtureRequest, app: FastAPI) -> Iterator[Counter[tuple[str, int]]]:
    """(operation, status) -> how many times; printed at the end (``pytest -s`` shows it).

    With the operator's token every operation of the engine's own routes must have succeeded at
    least once: a run that only ever met 404s and 422s would pass while testing little. (Plugins'
    routes are tested too, but their projects may not be in the test registry.)
    """
    core_operations = {
        f"{method} {route.path}"
        for route in app.routes
        if isinstance(route, APIRoute) and route.include_in_schema  # /docs is a page, not an operation
        and route.endpoint.__module__.startswith("core.api.")
        for method in route.methods
    }
    seen: Counter[tuple[str, int]] = Counter()
    yield seen
    labels = sorted({label for label, _ in seen})
    for label in labels:
        codes = ", ".join(f"{code}: {n}" for (lab, code), n in sorted(seen.items()) if lab == label)
        print(f"  {label:<55} {codes}")
    if request.node.name == "test_api_as_operator":
        never = [label for label in labels if label in core_operations
                 and not any(lab == label and code < 300 for lab, code in seen)]
        assert core_operations <= set(labels), f"operations never called: {core_operations - set(labels)}"
        assert not never, f"operations that never succeeded with an operator's token: {never}"


def _valid(value: Any, schema: dict[str, Any] | None) -> bool:
    import jsonschema

    return schema is not None and jsonschema.Draft202012Validator(schema).is_valid(value)


def _token_headers(case: schemathesis.Case, token: str) -> dict[str, str]:
    """The operator's token, unless the case's headers are the invalid part (then send them as made)."""
    from schemathesis.core.parameters import ParameterLocation

    if case.meta is not None and case.meta.is_negative_at(ParameterLocation.HEADER):
        return {}
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.slow  # minutes: once in CI (the PostgreSQL pass), as the other long ones
@schema.parametrize()
@hypothesis.settings(PROFILE)
def test_api_as_operator(case: schemathesis.Case, operator_token: str, answers: Counter[tuple[str, int]]) -> None:
    response = call_and_check(case, _token_headers(case, operator_token))
    answers[(case.operation.label, response.status_code)] += 1


@pytest.mark.slow
@schema.parametrize()
@hypothesis.settings(PROFILE)
def test_api_anonymous(case: schemathesis.Case, answers: Counter[tuple[str, int]]) -> None:
    case.headers = {k: v for k, v in (case.headers or {}).items() if k.lower() != "authorization"}
    response = call_and_check(case)
    answers[(case.operation.label, response.status_code)] += 1


# -- inputs the generator seldom or never produces -----------------------------------------

OK_DRAFT = '"observed_at": "2026-05-01T09:30:00Z", "location": {"lat": 41.39, "lon": 2.17}'
DEEP = "[" * 100_000 + "]" * 100_000

# (method, path, raw JSON body or None, expected status); {obs} is a seeded observation's id
BAD_INPUTS = [
    pytest.param("POST", "/projects/alpha/observations", "{" + OK_DRAFT + ', "fields": {"x": NaN}}', 422, id="create-nan"),
    pytest.param("POST", "/projects/alpha/observations", "{" + OK_DRAFT + ', "fields": {"x": -Infinity}}', 422,
                 id="create-infinity"),
    pytest.param("POST", "/projects/alpha/observations", "{" + OK_DRAFT + ', "fields": {"x": ' + "1" * 5000 + "}}", 422,
                 id="create-5000-digit-int"),
    pytest.param("POST", "/projects/alpha/observations", DEEP, 422, id="create-deep-nesting"),
    pytest.param("POST", "/projects/alpha/observations", '{"observed_at": "2026-05-01T09:30:00Z", '
                 '"location": {"lat": 1e400, "lon": 2}}', 422, id="create-lat-overflows-to-inf"),
    pytest.param("PATCH", "/observations/{obs}", '{"fields": {"x": NaN}}', 422, id="patch-nan"),
    pytest.param("PATCH", "/observations/{obs}", '{"fields": {"x": [1, {"y": Infinity}]}}', 422, id="patch-nested-inf"),
    pytest.param("PATCH", "/observations/{obs}", '{"fields": {"x": ' + "1" * 5000 + "}}", 400, id="patch-5000-digit-int"),
    pytest.param("PATCH", "/observations/{obs}", '{"fields": ' + DEEP + "}", 400, id="patch-deep-nesting"),
    pytest.param("PATCH", "/observations/{obs}", '{"fields": {"x": "a\\u0000b"}}', 422, id="patch-nul-in-a-field"),
    pytest.param("GET", "/projects/alpha/observations?kind=a%00b", None, 422, id="list-nul-in-kind"),
    pytest.param("GET", "/projects/alpha/observations?since=0001-01-01T00:00:00%2B01:00", None, 422,
                 id="list-since-before-year-1-in-utc"),
    pytest.param("GET", "/projects/alpha/observations?until=9999-12-31T23:59:59-01:00", None, 422,
                 id="list-until-after-year-9999-in-utc"),
    pytest.param("GET", "/projects/alpha/observations?bbox=nan,nan,nan,nan", None, 422, id="list-nan-bbox"),
    pytest.param("GET", "/projects/alpha/observations?cursor=%00", None, 422, id="list-nul-cursor"),
    pytest.param("GET", "/projects/a%00/observations", None, 404, id="list-nul-in-slug"),
    pytest.param("POST", "/projects/alpha/observations", '{"observed_at": "0001-01-01T00:00:00+01:00", '
                 '"location": {"lat": 1, "lon": 2}}', 422, id="create-observed-at-before-year-1-in-utc"),
    pytest.param("POST", "/projects/alpha/observations", '{"observed_at": "9999-12-31T23:59:59-01:00", '
                 '"location": {"lat": 1, "lon": 2}}', 422, id="create-observed-at-after-year-9999-in-utc"),
    pytest.param("POST", "/projects/alpha/observations", "{" + OK_DRAFT + ', "client_id": "a\\u0000b"}', 422,
                 id="create-nul-in-client-id"),
]


@pytest.mark.parametrize(("method", "path", "body", "expected"), BAD_INPUTS)
def test_bad_input_is_refused_not_a_server_error(
    app: FastAPI, client: TestClient, make_observation: Callable[..., dict[str, Any]], operator_token: str,
    method: str, path: str, body: str | None, expected: int,
) -> None:
    obs = make_observation("alpha")
    headers = {"Authorization": f"Bearer {operator_token}"}
    if body is not None:
        headers["Content-Type"] = "application/json"
    response = client.request(method, "/api/v1" + path.format(obs=obs["id"]), content=body, headers=headers)
    assert response.status_code == expected, response.text[:500]
    if response.status_code >= 400:
        assert response.json()["error"]["code"]
