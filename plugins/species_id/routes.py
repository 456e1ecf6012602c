"""``POST /api/v1/identify``: photos in, species suggestions out, at once (Pl@ntNet-shaped)."""

from __future__ import annotations

import re
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from core.api.deps import EngineDep, PrincipalDep, deny
from core.api.errors import ApiError, error_body
from core.api.limits import read_body
from core.api.schemas import error_responses
from core.engine import Engine
from core.errors import ValidationFailed
from core.types import Problem
from plugins.species_id import multipart
from plugins.species_id.multipart import Part

router = APIRouter(prefix="/api/v1", tags=["species_id"])

MAX_IMAGES = 5
MAX_TOP_K = 20
ORGANS = ("auto", "leaf", "flower", "fruit", "bark", "habit", "other")
BOOLEANS = {"true": True, "false": False}  # a form-encoded boolean, as the schema declares it
MAX_PARTS = 50

TAXON_NAME = {
    "type": "object",
    "properties": {"scientificNameWithoutAuthor": {"type": "string"}, "scientificNameAuthorship": {"type": "string"},
                   "scientificName": {"type": "string"}},
}
RESULT = {
    "type": "object",
    "required": ["score", "species", "gbif"],
    "properties": {
        "score": {"type": "number", "minimum": 0, "maximum": 1},
        "species": {
            "type": "object",
            "properties": {
                "scientificNameWithoutAuthor": {"type": ["string", "null"]},
                "scientificNameAuthorship": {"type": "string"},
                "scientificName": {"type": ["string", "null"]},
                "genus": TAXON_NAME,
                "family": TAXON_NAME,
                "commonNames": {"type": "array", "items": {"type": "string"}},
            },
        },
        "gbif": {"type": "object", "properties": {"id": {"type": ["string", "null"]}}},
        "rank": {"type": ["string", "null"]},
        "kingdom": {"type": ["string", "null"]},
        "organism": {"type": "boolean"},
    },
}
EXAMPLE = {
    "query": {"images": ["cat.jpg"], "organs": ["auto"], "model": "efficientnet_lite0-imagenet1k", "top_k": 5,
              "no_reject": False},
    "bestMatch": "Felis catus",
    "results": [{"score": 0.9121, "species": {"scientificNameWithoutAuthor": "Felis catus",
                                             "scientificNameAuthorship": "", "scientificName": "Felis catus",
                                             "genus": {"scientificNameWithoutAuthor": "Felis",
                                                       "scientificNameAuthorship": "", "scientificName": "Felis"},
                                             "commonNames": ["tiger cat", "Egyptian cat", "tabby"]},
                 "gbif": {"id": None}, "rank": "species", "kingdom": "Animalia", "organism": True}],
    "rejected": False,
    "version": "57934424.r1",
    "model": {"name": "efficientnet_lite0-imagenet1k", "version": "57934424.r1"},
    "images": [{"name": "cat.jpg", "bestMatch": "Felis catus", "score": 0.9121, "rejected": False}],
    "elapsedMs": 41.3,
}
IDENTIFY_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["images"],
                    "properties": {
                        "images": {"type": "array", "minItems": 1, "maxItems": MAX_IMAGES,
                                   "items": {"type": "string", "format": "binary"},
                                   "description": "1 to 5 photos of one organism (JPEG, PNG, WebP, GIF). "
                                                  "Their decoding is budgeted: all together at most the "
                                                  "service's `max_request_pixels` (default 100 million; a "
                                                  "sequential JPEG counts at the 1/2, 1/4 or 1/8 scale it is "
                                                  "decoded at), else 413 `too_many_pixels`"},
                        "organs": {"type": "array", "maxItems": MAX_IMAGES,
                                   "items": {"type": "string", "enum": list(ORGANS)},
                                   "description": "none, or exactly one per image, in the images' order, as "
                                                  "Pl@ntNet's (recorded, not used by ImageNet models); another "
                                                  "count is refused (422, organs_mismatch)"},
                        "model": {"type": "string", "description": "a model name (default: the service's)"},
                        "top_k": {"type": "integer", "minimum": 1, "maximum": MAX_TOP_K, "default": 5},
                        "no_reject": {"type": "boolean", "default": False,
                                      "description": "`true` or `false` (another value is refused): list "
                                                     "suggestions even when no organism is recognised"},
                    },
                }
            }
        },
    }
}
RESPONSE = {
    200: {
        "description": "Suggestions, best first. `results` is empty and `rejected` true when no organism is "
                       "recognised (Pl@ntNet answers 404 there; this answer keeps the model and the time).",
        "content": {"application/json": {"schema": {
            "type": "object",
            "required": ["results", "bestMatch", "rejected", "version", "model", "elapsedMs"],
            "properties": {"results": {"type": "array", "items": RESULT}, "bestMatch": {"type": "string"},
                           "rejected": {"type": "boolean"}, "message": {"type": "string"},
                           "version": {"type": "string"}, "model": {"type": "object"}, "query": {"type": "object"},
                           "images": {"type": "array", "items": {"type": "object"}},
                           "elapsedMs": {"type": "number"}},
        }, "example": EXAMPLE}},
    },
    **error_responses(401, 413, 422, 429),
    400: {"description": "unreadable multipart"},
    503: {"description": "the model cannot be loaded (`model_unavailable`, the message says why), or the "
                         "server's photo decoding stayed full for 30 s (`busy`: try again)"},
    415: {"description": "not multipart/form-data"},
}


def _problem(path: tuple[str | int, ...], message: str, code: str) -> ValidationFailed:
    return ValidationFailed([Problem(path, message, code)])


def refused(problems: list[Problem]) -> JSONResponse:
    """The engine's JSON error shape: 413 when a photo, or the decoding of them all, is too large, else 422."""
    details = [{"path": list(p.path), "message": p.message, "code": p.code} for p in problems]
    summary = "; ".join(f"{'.'.join(map(str, p.path))}: {p.message}" for p in problems)
    status = 413 if any(p.code in ("media_too_large", "too_many_pixels") for p in problems) else 422
    return JSONResponse(error_body("validation_failed", f"the request was refused: {summary}", details), status)


def _fields(parts: list[Part], request: Request) -> dict[str, list[str]]:
    """The plain (non-file) fields of the form, by name; the query string's when the form has
    none of a name (Pl@ntNet's clients send options there)."""
    fields: dict[str, list[str]] = {}
    for part in parts:
        if part.name == "images":
            continue
        if part.is_file:
            raise _problem((part.name,), f"'{part.name}' must be a plain field, not a file", "not_a_field")
        fields.setdefault(part.name, []).append(part.text())
    for key in ("top_k", "no_reject", "model", "organs"):
        if key not in fields and key in request.query_params:
            fields[key] = request.query_params.getlist(key)
    return fields


def _one(fields: dict[str, list[str]], key: str) -> str | None:
    values = fields.get(key)
    if not values:
        return None
    if len(values) > 1:
        raise _problem((key,), f"'{key}' is given {len(values)} times; give it once", "repeated_field")
    return values[0]


def _options(fields: dict[str, list[str]], n_images: int) -> dict[str, Any]:
    top_k_text = _one(fields, "top_k")
    if top_k_text is None:
        top_k = 5
    elif re.fullmatch(r"-?[0-9]{1,6}", top_k_text):
        top_k = int(top_k_text)
    else:
        raise _problem(("top_k",), f"top_k must be a whole number, got {top_k_text[:40]!r}", "invalid_integer")
    if not 1 <= top_k <= MAX_TOP_K:
        raise _problem(("top_k",), f"top_k must be between 1 and {MAX_TOP_K}, got {top_k}", "out_of_range")
    no_reject_text = _one(fields, "no_reject")
    if no_reject_text is not None and no_reject_text not in BOOLEANS:
        raise _problem(("no_reject",), f"no_reject must be true or false, got {no_reject_text[:40]!r}",
                       "invalid_boolean")
    organs = fields.get("organs", [])
    for i, organ in enumerate(organs):
        if organ not in ORGANS:
            raise _problem(("organs", i), f"unknown organ {organ[:40]!r} (organs: {', '.join(ORGANS)})",
                           "unknown_organ")
    if organs and len(organs) != n_images:
        raise _problem(("organs",), f"give one organ per image ({n_images} images, {len(organs)} organs), or none",
                       "organs_mismatch")
    return {"top_k": top_k, "no_reject": BOOLEANS.get(no_reject_text or "false", False),
            "organs": organs or ["auto"] * n_images, "model": _one(fields, "model") or None}


def _name(value: str | None) -> dict[str, str] | None:
    if not value:
        return None
    return {"scientificNameWithoutAuthor": value, "scientificNameAuthorship": "", "scientificName": value}


def plantnet_result(entry: dict[str, Any]) -> dict[str, Any]:
    """One ranking entry in Pl@ntNet's shape (plus rank, kingdom and whether it is an organism)."""
    species: dict[str, Any] = {
        "scientificNameWithoutAuthor": entry["scientific_name"],
        "scientificNameAuthorship": "",
        "scientificName": entry["scientific_name"],
        "commonNames": entry["common_names"],
    }
    for key in ("genus", "family"):
        if entry.get(key):
            species[key] = _name(entry[key])
    return {"score": entry["score"], "species": species, "gbif": {"id": entry.get("gbif_id")},
            "rank": entry.get("rank"), "kingdom": entry.get("kingdom"), "organism": entry["organism"]}


def _best_name(entry: dict[str, Any] | None) -> str:
    if not entry:
        return ""
    return entry["scientific_name"] or (entry["common_names"] or [""])[0]


def plantnet_body(result: dict[str, Any], options: dict[str, Any], names: list[str], elapsed_ms: float) -> dict[str, Any]:
    body: dict[str, Any] = {
        "query": {"images": names, "organs": options["organs"], "model": result["model"]["name"],
                  "top_k": options["top_k"], "no_reject": options["no_reject"]},
        "bestMatch": _best_name(result.get("best")),
        "results": [plantnet_result(e) for e in result["results"]],
        "rejected": bool(result.get("rejected")),
        "version": result["model"]["version"],
        "model": result["model"],
        "images": [
            {"name": names[i], "bestMatch": _best_name(img["results"][0] if img.get("results") else None),
             "score": img["results"][0]["score"] if img.get("results") else None, "rejected": img.get("rejected", False)}
            for i, img in enumerate(result["images"])
        ],
        "elapsedMs": round(elapsed_ms, 1),
    }
    if result.get("rejected"):
        body["message"] = result.get("message", "no organism recognised")
        body["bestGuess"] = result.get("best_guess")
    return body


def identify_uploads(engine: Engine, uploads: list[tuple[bytes, str, str | None]], options: dict[str, Any]) -> dict[str, Any]:
    """Check, decode and identify the uploads (in a worker thread); raise ValidationFailed for bad input.

    Every photo is checked from its header first (the engine's media rules, and what its decoding
    costs); photos that together cost more than ``max_request_pixels`` are refused before any is
    decoded. They are then decoded one at a time, reduced, within the process's decoding gate."""
    from plugins.species_id.catalogue import CatalogueError
    from plugins.species_id.inference import GateTimeout, ModelError
    from plugins.species_id.runtime import Runtime
    from plugins.species_id.service import Photo, check_photo, decode_checked, identify, model_for, over_budget

    try:
        catalogue = Runtime.of(engine).catalogue()
    except CatalogueError as exc:  # registry.yaml's species_id config is wrong: the operator's to fix
        raise ApiError(503, "model_unavailable", str(exc)) from None
    try:
        catalogue.get(options["model"])
    except CatalogueError as exc:
        raise _problem(("model",), str(exc), "unknown_model") from None
    try:
        model = model_for(catalogue, options["model"])
    except ModelError as exc:  # the operator's model is broken: say so, do not crash
        raise ApiError(503, "model_unavailable", str(exc)) from None
    settings, config = engine.settings, catalogue.config
    min_side = model.spec.preprocessing.resize
    checked = [
        check_photo(Photo(data, name, content_type, i, filename=name), max_bytes=settings.max_upload_bytes,
                    max_pixels=settings.max_image_pixels, min_side=min_side)
        for i, (data, name, content_type) in enumerate(uploads)
    ]
    problems = [Problem(("images", i), d.error[1], d.error[0]) for i, d in enumerate(checked) if d.error]
    if problems:
        raise ValidationFailed(problems)
    too_costly = over_budget(checked, config.max_request_pixels)
    if too_costly:
        raise _problem(("images",), too_costly, "too_many_pixels")
    try:
        decoded = [decode_checked(d, min_side=min_side, gate_pixels=config.decode_pixels) for d in checked]
    except GateTimeout:
        raise ApiError(503, "busy", "too many photos are being identified now; try again in a moment") from None
    problems = [Problem(("images", i), d.error[1], d.error[0]) for i, d in enumerate(decoded) if d.error]
    if problems:
        raise ValidationFailed(problems)
    return identify(model, decoded, top_k=options["top_k"], no_reject=options["no_reject"],
                    batch_size=catalogue.config.batch_size)


@router.post(
    "/identify",
    summary="Identify the species in 1 to 5 photos (Pl@ntNet-style answer)",
    description="Needs a token (any role). The photos are checked as uploads are (size, type, decompression "
    "bombs), and their decoding is budgeted (`max_request_pixels` of the service's config, 413 past it); "
    "they are identified together (mean of the photos' probabilities) and the answer comes at once; nothing "
    "is stored. Classes of one taxon are added up; only organisms are listed unless `no_reject` is `true`.",
    responses=RESPONSE,
    openapi_extra=IDENTIFY_BODY,
)
async def identify(request: Request, engine: EngineDep, principal: PrincipalDep) -> JSONResponse:
    started = time.perf_counter()
    if principal.anonymous:
        raise deny(principal, "identifying species")
    body = await read_body(request, engine.settings.max_upload_bytes * MAX_IMAGES + 1_000_000)
    content_type = request.headers.get("content-type", "")
    if content_type.split(";")[0].strip().lower() != "multipart/form-data":
        raise ApiError(415, "unsupported_media_type", "send multipart/form-data with 1 to 5 'images' files")
    try:
        parts = multipart.parse(body, content_type, max_parts=MAX_PARTS)
    except multipart.MultipartError as exc:
        raise ApiError(400, "bad_multipart", f"the multipart body cannot be read: {exc}") from None
    del body
    images = [part for part in parts if part.name == "images"]
    if not all(part.is_file for part in images):
        return refused([Problem(("images",), "'images' parts must be files", "not_a_file")])
    if not 1 <= len(images) <= MAX_IMAGES:
        return refused([Problem(("images",), f"send 1 to {MAX_IMAGES} images, got {len(images)}", "image_count")])
    uploads = [(part.data, part.filename or f"image {i + 1}", part.content_type) for i, part in enumerate(images)]
    try:
        options = _options(_fields(parts, request), len(images))
        del parts, images
        result = await run_in_threadpool(identify_uploads, engine, uploads, options)
    except ValidationFailed as exc:
        return refused(exc.problems)
    names = [name for _, name, _ in uploads]
    answer = plantnet_body(result, options, names, (time.perf_counter() - started) * 1000)
    return JSONResponse(answer)
