"""An observation's media files."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from core.api.access import can_read, sees_everything
from core.api.deps import DbInt, EngineDep, ObsId, PrincipalDep
from core.api.schemas import error_responses
from core.db.session import transaction
from core.errors import NotFound
from core.metadata import strip_metadata
from core.views import load_observation, observation_not_found

router = APIRouter(prefix="/api/v1", tags=["media"])


@router.get("/observations/{obs_id}/media/{media_id}", summary="Download a media file",
            response_class=Response,
            responses={200: {"content": {"image/jpeg": {}, "image/png": {}, "video/mp4": {}},
                             "description": "the file, as stored"}, **error_responses(401, 403, 404, 429)})
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
    data = engine.media.open(sha)
    if not private:
        data = strip_metadata(data, content_type)
    return Response(data, media_type=content_type, headers={
        "ETag": f'"{sha}"', "Cache-Control": "private, max-age=3600", "X-Content-Type-Options": "nosniff"})
