"""An observation's media files."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from core.api.access import can_read, sees_everything
from core.api.deps import DbInt, EngineDep, ObsId, PrincipalDep
from core.api.errors import ApiError
from core.api.schemas import ErrorOut, error_responses
from core.db.session import transaction
from core.errors import NotFound
from core.media import ACCEPTED_TYPES, MediaNotPublic
from core.metadata import NOT_PUBLIC, STRIP_VERSION, STRIPPERS
from core.views import load_observation, observation_not_found

router = APIRouter(prefix="/api/v1", tags=["media"])


MEDIA_DESCRIPTION = f"""The file of an observation.

Staff of the project and the contributor who sent it get the file **as stored**. Everyone else
(anonymous callers included) gets a copy **without location or personal metadata**: EXIF (GPS,
camera, owner), XMP, IPTC, comments and text chunks are removed, by keeping only what a decoder
needs. Cleaned: {", ".join(sorted(STRIPPERS))}. Files whose structure cannot be followed with
certainty, and files of these types, are **not served** to them (403, code `media_not_public`):
{", ".join(sorted(NOT_PUBLIC))}.

Responses vary with `Authorization`; the file as stored is `Cache-Control: private`."""

MEDIA_RESPONSES: dict[int | str, dict[str, Any]] = {
    **error_responses(401, 404, 429),
    200: {"content": {t: {"schema": {"type": "string", "format": "binary"}} for t in ACCEPTED_TYPES},
          "description": "the file: as stored for staff and its contributor, cleaned of metadata for others"},
    403: {"model": ErrorOut, "description": "`media_not_public`: this file cannot be served without its "
                                            "location or personal metadata, so only staff and its "
                                            "contributor may download it"},
}


@router.get("/observations/{obs_id}/media/{media_id}", summary="Download a media file",
            description=MEDIA_DESCRIPTION, response_class=Response, responses=MEDIA_RESPONSES)
def get_media(obs_id: ObsId, media_id: DbInt, engine: EngineDep, principal: PrincipalDep) -> Response:
    with transaction(engine.readers) as session:
        obs = load_observation(session, obs_id)
        if not can_read(principal, obs, engine.registry.project(obs.project)):
            raise observation_not_found(obs_id)  # as for a missing id: no oracle for what exists
        item = next((m for m in obs.media if m.id == media_id), None)
        if item is None:
            raise NotFound(f"observation {obs_id} has no media {media_id}", code="media_not_found")
        sha, content_type = item.sha256, item.blob.content_type
        private = sees_everything(principal, obs)
    headers = {"Vary": "Authorization", "X-Content-Type-Options": "nosniff"}
    if private:  # exact place and personal data inside: never kept by a shared cache
        return Response(engine.media.open(sha), media_type=content_type,
                        headers={**headers, "ETag": f'"{sha}"', "Cache-Control": "private, max-age=3600"})
    try:
        data = engine.media.open_public(sha, content_type)
    except MediaNotPublic as exc:
        raise ApiError(403, "media_not_public",
                       f"media {media_id} is not served publicly: {exc.reason}; staff of the project and "
                       "the contributor who sent it can download it with their token") from None
    # short-lived: an observation taken off the public list stops being served soon after
    return Response(data, media_type=content_type,
                    headers={**headers, "ETag": f'"{sha}-public-v{STRIP_VERSION}"',
                             "Cache-Control": "public, max-age=300"})
