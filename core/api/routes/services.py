"""The service catalogue: ``GET /api/v1/services`` and ``GET /api/v1/services/{name}`` (core.catalogue)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from core.api.deps import EngineDep, PrincipalDep
from core.api.errors import ApiError
from core.api.schemas import error_responses
from core.catalogue import catalogue

router = APIRouter(prefix="/api/v1", tags=["services"])


class MaturityOut(BaseModel):
    trl: int | None = Field(None, ge=1, le=9, description="technology readiness level, 1-9; null: not declared")
    status: Literal["experimental", "beta", "stable", "deprecated"]


class WindowOut(BaseModel):
    run: int = Field(description="enrichments that ended in the window (succeeded + failed)")
    succeeded: int
    failed: int
    timed_out: int = Field(description="failures that were the service's time limit (counted in failed too)")
    retried: int = Field(description="ended enrichments that needed more than one attempt")
    median_ms: int | None = Field(None, description="median duration of the latest attempt (nearest rank)")
    p95_ms: int | None = Field(None, description="95th-percentile duration (nearest rank)")


class LastErrorOut(BaseModel):
    code: str | None = Field(None, description="the exception's class, or timed_out / worker_stopped")
    message: str = Field(description="its first line, without e-mail addresses, paths, long numbers or credentials")
    at: str | None = None


class HealthFiguresOut(BaseModel):
    windows: dict[Literal["day", "week", "month"], WindowOut]
    pending: int
    running: int
    last_error: LastErrorOut | None = None


class HealthOut(BaseModel):
    total: HealthFiguresOut | None = Field(None, description="every project together (operators only)")
    projects: dict[str, HealthFiguresOut] = Field(description="per project the caller is staff of")


class AcceptanceOut(BaseModel):
    month: str = Field(examples=["2026-11"])
    agree: int
    disagree: int
    rate: float | None = Field(None, description="agree / (agree + disagree); null without a verdict")


class CatalogueEntryOut(BaseModel):
    name: str
    summary: str
    version: str
    maintainer: str
    docs: str | None = Field(None, description="a link to the service's documentation")
    maturity: MaturityOut
    installed: bool = Field(description="false: registry.yaml offers it but no plugin is loaded")
    builtin: bool = Field(description="shipped with the engine")
    default: bool = Field(description="one of the engine's own plugins, on for every project")
    hooks: list[str] = Field(description="the hooks its plugin implements")
    kinds: list[str] | None = Field(None, description="the kinds of observation it handles; null: every kind")
    observation_types: list[str] = Field(description="the kinds it registers")
    projects: list[str] = Field(description="the projects that enable it, among those the caller may see")
    settings_schema: dict[str, Any] | None = Field(None, description="JSON Schema of its per-project settings")
    health: HealthOut | None = Field(None, description="for operators and project staff")
    acceptance: list[AcceptanceOut] | None = Field(None, description="agreement with its results by month")


ServiceName = Annotated[str, Path(min_length=1, max_length=200, description="a service's name")]


@router.get("/services", response_model=list[CatalogueEntryOut], summary="The service catalogue",
            description="Every installed service with its maturity, hooks, kinds, projects, settings schema and "
            "acceptance. Anonymous callers see the services public projects use; members their projects' too; "
            "project staff and operators every service, with its health.",
            responses=error_responses(401, 429))
async def list_services(engine: EngineDep, principal: PrincipalDep) -> list[dict[str, Any]]:
    return await run_in_threadpool(catalogue, engine, principal)


@router.get("/services/{name}", response_model=CatalogueEntryOut, summary="One service of the catalogue",
            responses=error_responses(401, 404, 429))
async def get_service(engine: EngineDep, principal: PrincipalDep, name: ServiceName) -> dict[str, Any]:
    found = await run_in_threadpool(catalogue, engine, principal, name)
    if not found:
        raise ApiError(404, "not_found", f"no service {name!r}")
    return found[0]
