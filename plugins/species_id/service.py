"""Identification as the enrichment, the quality check and the endpoint use it."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any, Sequence

import numpy as np

from core.media import MediaError, check_media
from core.types import Flag, ObservationView
from plugins.species_id import photo
from plugins.species_id.catalogue import SERVICE, Catalogue
from plugins.species_id.inference import (
    DECODE_GATE,
    NO_ORGANISM,
    GateTimeout,
    ImageError,
    LoadedModel,
    classify,
    combine,
    decode,
    decode_cost,
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
    cost: int = 0  # pixels its decoding holds (inference.decode_cost)


DECODE_WAIT_S = 30.0  # how long a decoding waits for the process's gate before giving up


def model_for(catalogue: Catalogue, name: str | None, threads: int | None = None) -> LoadedModel:
    spec = catalogue.get(name)
    return load_model(spec, catalogue.models_dir, catalogue.config.threads if threads is None else threads,
                      catalogue.config.spinning)


def check_photo(item: Photo, *, max_bytes: int, max_pixels: int, min_side: int) -> Decoded:
    """The engine's media rules (empty, too large, not an image, bomb) and what decoding will
    cost, from the header alone; never raise."""
    try:
        sniffed = check_media(item.data, item.name, item.content_type, max_bytes=max_bytes, max_pixels=max_pixels)
        if not sniffed.content_type.startswith("image/"):
            raise ImageError("not_an_image", f"{item.name}: {sniffed.content_type} is not a photo")
        width, height = int(sniffed.width or 0), int(sniffed.height or 0)
        return Decoded(item, None, width, height, cost=decode_cost(item.data, width, height, min_side))
    except (MediaError, ImageError) as exc:
        return Decoded(item, error=(exc.code, str(exc)))


def decode_checked(checked: Decoded, *, min_side: int, gate_pixels: int | None = None) -> Decoded:
    """Decode a checked photo (reduced, see ``inference.decode``), within the process's decoding
    gate when ``gate_pixels`` is given; a photo that cannot be decoded gets its error; raise
    GateTimeout only. The result does not keep the file's bytes."""
    item = checked.photo
    kept = replace(item, data=b"")
    if checked.error:
        return replace(checked, photo=kept)
    try:
        if gate_pixels is None:
            pixels = decode(item.data, checked.width, checked.height, min_side=min_side, name=item.name)
        else:
            with DECODE_GATE.hold(checked.cost, gate_pixels, DECODE_WAIT_S):
                pixels = decode(item.data, checked.width, checked.height, min_side=min_side, name=item.name)
        return replace(checked, photo=kept, pixels=pixels)
    except ImageError as exc:
        return replace(checked, photo=kept, error=(exc.code, str(exc)))
    except GateTimeout:
        raise
    except Exception as exc:  # OpenCV can raise on data it half-understands; never crash the caller
        return replace(checked, photo=kept,
                       error=("media_corrupt", f"{item.name}: cannot be decoded: {type(exc).__name__}: {exc}"))


def decode_photo(item: Photo, *, max_bytes: int, max_pixels: int, min_side: int,
                 gate_pixels: int | None = None) -> Decoded:
    """Check (the engine's media rules: empty, too large, not an image, bomb) and decode; never
    raise (but GateTimeout)."""
    checked = check_photo(item, max_bytes=max_bytes, max_pixels=max_pixels, min_side=min_side)
    return decode_checked(checked, min_side=min_side, gate_pixels=gate_pixels)


def over_budget(checked: Sequence[Decoded], budget: int) -> str | None:
    """Why these photos are too costly to decode together, or None."""
    total = sum(d.cost for d in checked if not d.error)
    if total <= budget:
        return None
    return (f"the photos need {total:,} pixels decoded in all, over the limit of {budget:,} "
            "(max_request_pixels); send fewer or smaller photos (a JPEG counts at the scale it is decoded at)")


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
        entry: dict[str, Any] = {"media": item.photo.position}
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
    """Identify every photo of the observation; a bad photo is recorded, never fatal.

    Photos are read, checked and decoded one at a time (only the reduced pixels are kept), within
    the process's decoding gate; once the observation's photos have used ``max_request_pixels``,
    the others are recorded as not identified. Photos are named by position ("photo 2"), never by
    the file name they were sent with (the result is public with the observation)."""
    started = time.perf_counter()
    catalogue = runtime.catalogue()
    config = catalogue.config
    model = model_for(catalogue, settings.get("model"))
    limits = runtime.settings
    min_side = model.spec.preprocessing.resize
    decoded = []
    spent = 0
    for position, media in enumerate(observation.media):
        if not media.content_type.startswith("image/"):
            continue
        name = f"photo {position + 1}"
        try:
            data = media.read_bytes()
        except OSError as exc:
            decoded.append(Decoded(Photo(b"", name, position=position, sha256=media.sha256),
                                   error=("media_missing", f"{name}: cannot read the stored file: {exc.strerror}")))
            continue
        item = Photo(data, name, media.content_type, position, media.sha256)
        checked = check_photo(item, max_bytes=limits.max_upload_bytes, max_pixels=limits.max_image_pixels,
                              min_side=min_side)
        del data, item
        if not checked.error and spent + checked.cost > config.max_request_pixels:
            decoded.append(replace(checked, photo=replace(checked.photo, data=b""), error=(
                "pixel_budget", f"{name}: not identified: the observation's photos need more than "
                f"{config.max_request_pixels:,} pixels decoded in all (max_request_pixels)")))
            continue
        spent += checked.cost
        decoded.append(decode_checked(checked, min_side=min_side, gate_pixels=config.decode_pixels))
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
    """A photo as flags name it: by its position, never by the file name it was sent with."""
    return f"photo {entry['media'] + 1}"


def _error_text(entry: dict[str, Any], where: str) -> str:
    message = str(entry["error"].get("message") or entry["error"].get("code") or "cannot be read")
    filename = entry.get("filename")  # results stored before photos were named by position
    if filename:
        message = message.replace(str(filename), where)
    return message if message.startswith(where) else f"{where}: {message}"


def photo_flags(result: dict[str, Any], settings: dict[str, Any]) -> list[Flag]:
    flags = []
    min_side, dark, bright, blur = (setting(settings, k) for k in ("min_side", "dark_below", "bright_above", "blur_below"))
    for entry in result.get("images", []):
        where = _which(entry)
        if "error" in entry:
            flags.append(Flag("photo_unreadable", _error_text(entry, where), "warning",
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
                    settings: dict[str, Any], public_project: bool = False) -> list[Flag]:
    """``photo_duplicate`` for each photo near one of an earlier observation of the project.

    Flags are shown to whoever may see this observation: its contributor, and the public once it
    is published. So the other observation is named only when anyone may see it (published, in a
    public project); otherwise the flag says only that an earlier photo of the project is near,
    and names nothing about it (not its id, status or contributor)."""
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
        if match is None:
            continue
        where = f"photo {position + 1}"
        measured = {"media": position, "value": match.distance, "threshold": limit}
        if public_project and match.status == "published":
            flags.append(Flag("photo_duplicate", f"{where} is a near-duplicate of photo {match.position + 1} of "
                              f"observation {match.observation_id} ({match.distance} of 64 bits differ)", "warning",
                              {**measured, "observation_id": match.observation_id, "other_media": match.position}))
        else:
            flags.append(Flag("photo_duplicate", f"{where} is a near-duplicate of a photo of an earlier observation "
                              f"in this project ({match.distance} of 64 bits differ)", "warning", measured))
    return flags


def quality(runtime: Runtime | None, observation: ObservationView, settings: dict[str, Any],
            public_project: bool = False) -> list[Flag]:
    result = observation.enrichments.get(SERVICE)
    if not result:
        return []
    flags = photo_flags(result, settings) + identification_flags(result, settings)
    if runtime is not None:
        flags += duplicate_flags(runtime, observation, result, settings, public_project)
    return flags
