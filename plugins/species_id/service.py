"""Identification as the enrichment, the quality check and the endpoint use it."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from core.media import MediaError, check_media
from core.types import Flag, ObservationView
from plugins.species_id import photo
from plugins.species_id.catalogue import SERVICE, Catalogue
from plugins.species_id.inference import (
    NO_ORGANISM,
    ImageError,
    LoadedModel,
    classify,
    combine,
    decode,
    load_model,
    rank,
)
from plugins.species_id.hash_index import project_index
from plugins.species_id.runtime import Runtime

COMBINATION = "mean"
DEFAULTS: dict[str, Any] = {
    "top_k": 5, "min_score": 0.2, "no_reject": False, "min_side": 224, "dark_below": 40.0,
    "bright_above": 220.0, "blur_below": 30.0, "check_duplicates": True, "duplicate_distance": 5,
}


def setting(settings: dict[str, Any], key: str) -> Any:
    value = settings.get(key)
    return DEFAULTS[key] if value is None else value


@dataclass(frozen=True)
class Photo:
    """One photo to identify: its bytes and what the caller knows of it."""

    data: bytes
    name: str
    content_type: str | None = None
    position: int = 0
    sha256: str | None = None
    filename: str | None = None


@dataclass
class Decoded:
    photo: Photo
    pixels: np.ndarray | None = None
    width: int | None = None
    height: int | None = None
    error: tuple[str, str] | None = None


def model_for(catalogue: Catalogue, name: str | None, threads: int | None = None) -> LoadedModel:
    spec = catalogue.get(name)
    return load_model(spec, catalogue.models_dir, catalogue.config.threads if threads is None else threads,
                      catalogue.config.spinning)


def decode_photo(item: Photo, *, max_bytes: int, max_pixels: int, min_side: int) -> Decoded:
    """Check (the engine's media rules: empty, too large, not an image, bomb) and decode; never raise."""
    try:
        sniffed = check_media(item.data, item.name, item.content_type, max_bytes=max_bytes, max_pixels=max_pixels)
        if not sniffed.content_type.startswith("image/"):
            raise ImageError("not_an_image", f"{item.name}: {sniffed.content_type} is not a photo")
        pixels = decode(item.data, sniffed.width, sniffed.height, min_side=min_side, name=item.name)
        return Decoded(item, pixels, sniffed.width, sniffed.height)
    except (MediaError, ImageError) as exc:
        return Decoded(item, error=(exc.code, str(exc)))
    except Exception as exc:  # OpenCV can raise on data it half-understands; never crash the caller
        return Decoded(item, error=("media_corrupt", f"{item.name}: cannot be decoded: {type(exc).__name__}: {exc}"))


def identify(model: LoadedModel, decoded: Sequence[Decoded], *, top_k: int, no_reject: bool,
             batch_size: int = 16, measure: bool = False) -> dict[str, Any]:
    """Rank the decoded photos together (mean of probabilities) and one by one."""
    started = time.perf_counter()
    good = [d for d in decoded if d.pixels is not None]
    probs = classify(model, [d.pixels for d in good], batch_size)  # type: ignore[misc]
    spec = model.spec
    result: dict[str, Any] = {
        "model": {"name": spec.name, "version": spec.version},
        "top_k": top_k,
        "no_reject": no_reject,
        "combination": COMBINATION,
    }
    ranked: dict[str, Any] = {}
    if good:
        ranked = rank(model.taxa, combine(probs), top_k, no_reject)
        result["outcome"] = "no_organism" if ranked["rejected"] else "identified"
        result.update(ranked)
    else:
        result.update(outcome="no_photo", rejected=False, results=[],
                      message="no photo could be read" if decoded else "the observation has no photo")
    result["best"] = result["results"][0] if result["results"] else None
    images = []
    row = 0
    for item in decoded:
        entry: dict[str, Any] = {"media": item.photo.position, "filename": item.photo.filename}
        if item.photo.sha256:
            entry["sha256"] = item.photo.sha256
        if item.pixels is None:
            code, message = item.error or ("media_corrupt", "cannot be decoded")
            entry["error"] = {"code": code, "message": message}
        else:
            # one photo: its own ranking is the combined one
            own = ranked if len(good) == 1 else rank(model.taxa, probs[row], top_k, no_reject)
            row += 1
            entry.update(rejected=own["rejected"], results=list(own["results"]))
            if own["rejected"]:
                entry["best_guess"] = own["best_guess"]
            if measure:
                entry["quality"] = photo.measure(item.pixels, item.width, item.height)
        images.append(entry)
    result["images"] = images
    result["elapsed_ms"] = round((time.perf_counter() - started) * 1000, 1)
    return result


# --------------------------------------------------------------------------------------------
# The enrichment
# --------------------------------------------------------------------------------------------


def enrich(runtime: Runtime, observation: ObservationView, settings: dict[str, Any]) -> dict[str, Any]:
    """Identify every photo of the observation; a bad photo is recorded, never fatal."""
    started = time.perf_counter()
    catalogue = runtime.catalogue()
    model = model_for(catalogue, settings.get("model"))
    limits = runtime.settings
    decoded = []
    for position, media in enumerate(observation.media):
        if not media.content_type.startswith("image/"):
            continue
        name = media.filename or f"photo {position + 1}"
        try:
            data = media.read_bytes()
        except OSError as exc:
            decoded.append(Decoded(Photo(b"", name, position=position, sha256=media.sha256, filename=media.filename),
                                   error=("media_missing", f"{name}: cannot read the stored file: {exc.strerror}")))
            continue
        item = Photo(data, name, media.content_type, position, media.sha256, media.filename)
        decoded.append(decode_photo(item, max_bytes=limits.max_upload_bytes, max_pixels=limits.max_image_pixels,
                                    min_side=model.spec.preprocessing.resize))
    result = identify(model, decoded, top_k=int(setting(settings, "top_k")),
                      no_reject=bool(setting(settings, "no_reject")), batch_size=catalogue.config.batch_size,
                      measure=True)
    hashes: list[str | None] = [None] * len(observation.media)
    for entry in result["images"]:
        if "quality" in entry:
            hashes[entry["media"]] = entry["quality"]["dhash"]
    result["dhashes"] = hashes
    result["elapsed_ms"] = round((time.perf_counter() - started) * 1000, 1)
    return result


# --------------------------------------------------------------------------------------------
# Quality flags
# --------------------------------------------------------------------------------------------


def _which(entry: dict[str, Any]) -> str:
    return f"photo {entry['media'] + 1}" + (f" ({entry['filename']})" if entry.get("filename") else "")


def photo_flags(result: dict[str, Any], settings: dict[str, Any]) -> list[Flag]:
    flags = []
    min_side, dark, bright, blur = (setting(settings, k) for k in ("min_side", "dark_below", "bright_above", "blur_below"))
    for entry in result.get("images", []):
        where = _which(entry)
        if "error" in entry:
            flags.append(Flag("photo_unreadable", f"{where}: {entry['error']['message']}", "warning",
                              {"media": entry["media"], "value": entry["error"]["code"]}))
            continue
        q = entry.get("quality")
        if not q:
            continue
        if q["min_side"] < min_side:
            flags.append(Flag("photo_too_small", f"{where} is {q['width']}×{q['height']} pixels; its shorter side "
                              f"should be at least {min_side}", "warning",
                              {"media": entry["media"], "value": q["min_side"], "threshold": min_side}))
        exposure = None
        if q["luminance"] < dark:
            exposure = Flag("photo_too_dark", f"{where} is too dark: mean luminance {q['luminance']:.0f} of 255 "
                            f"(below {dark:g})", "warning",
                            {"media": entry["media"], "value": q["luminance"], "threshold": dark})
        elif q["luminance"] > bright:
            exposure = Flag("photo_too_bright", f"{where} is too bright: mean luminance {q['luminance']:.0f} of 255 "
                            f"(above {bright:g})", "warning",
                            {"media": entry["media"], "value": q["luminance"], "threshold": bright})
        if exposure:
            flags.append(exposure)  # a photo that is too dark or too bright says nothing about its focus
        elif q["sharpness"] < blur:
            flags.append(Flag("photo_blurred", f"{where} looks blurred: sharpness (variance of the Laplacian) "
                              f"{q['sharpness']:.1f}, below {blur:g}", "warning",
                              {"media": entry["media"], "value": q["sharpness"], "threshold": blur}))
    return flags


def identification_flags(result: dict[str, Any], settings: dict[str, Any]) -> list[Flag]:
    min_score = float(setting(settings, "min_score"))
    model = result.get("model", {})
    label = f"{model.get('name')} {model.get('version')}"
    if result.get("outcome") == "no_organism":
        guess = result.get("best_guess") or {}
        return [Flag("no_organism", f"{NO_ORGANISM} by {label} (best guess: {guess.get('name')}, "
                     f"{guess.get('score', 0):.2f})", "info", {"value": guess.get("score"), "label": guess.get("name")})]
    best = result.get("best")
    if result.get("outcome") == "identified" and best and best["score"] < min_score:
        name = best.get("scientific_name") or (best.get("common_names") or ["?"])[0]
        return [Flag("low_confidence", f"the best suggestion of {label}, {name}, scores {best['score']:.2f}, "
                     f"below the project's minimum of {min_score:g}", "warning",
                     {"value": best["score"], "threshold": min_score})]
    return []


def duplicate_flags(runtime: Runtime, observation: ObservationView, result: dict[str, Any],
                    settings: dict[str, Any]) -> list[Flag]:
    if not setting(settings, "check_duplicates") or runtime.sessions is None:
        return []
    mine = [(i, h) for i, h in enumerate(result.get("dhashes") or []) if isinstance(h, str)]
    if not mine:
        return []
    index = project_index(runtime.sessions, observation.project)
    limit = int(setting(settings, "duplicate_distance"))
    flags = []
    for position, value in mine:
        match = index.nearest(value, observation.id, limit)
        if match is not None:
            other_obs, other_pos, distance = match.observation_id, match.position, match.distance
            name = observation.media[position].filename if position < len(observation.media) else None
            where = f"photo {position + 1}" + (f" ({name})" if name else "")
            flags.append(Flag("photo_duplicate", f"{where} is a near-duplicate of photo {other_pos + 1} of "
                              f"observation {other_obs} ({distance} of 64 bits differ)", "warning",
                              {"media": position, "value": distance, "threshold": limit,
                               "observation_id": other_obs, "other_media": other_pos}))
    return flags


def quality(runtime: Runtime | None, observation: ObservationView, settings: dict[str, Any]) -> list[Flag]:
    result = observation.enrichments.get(SERVICE)
    if not result:
        return []
    flags = photo_flags(result, settings) + identification_flags(result, settings)
    if runtime is not None:
        flags += duplicate_flags(runtime, observation, result, settings)
    return flags
