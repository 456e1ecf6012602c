"""Reading a project's observations from any engine over its HTTP API into the frames' columns.

``GET /api/v1/projects/{slug}/observations`` page by page (200 a page, by id through its
cursor), retried with back-off on connection errors, 429 and 5xx (``Retry-After`` honoured),
with a progress bar on a terminal. Taxa come from the identification service's read API
(``/inat/v1/observations/{ids}``, one request a page; ``/api/v1/observations/{id}/identifications``
for those it does not serve, such as unpublished ones staff see) and ancestors from
``/api/v1/taxa/{id}``; visible-comment counts from the project's comment feed (staff only)."""

from __future__ import annotations

import sys
import time
from collections import Counter
from typing import Any, Iterator, Mapping

import httpx
import pandas as pd

from core.filters import FilterError
from plugins.analysis.frames.columns import (ENRICHMENT_COLUMNS, IDENTIFICATION_COLUMNS, MEDIA_COLUMNS, SPECIES_ID,
                                             field_dtype, field_types, field_value, observations_frame,
                                             typed_frame)
from plugins.analysis.frames.taxa import Lineage, lineage_of, taxon_columns

PAGE = 200
FILTER_CODES = {"invalid_filter_value", "unknown_filter", "unknown_field", "unknown_parameter", "invalid_bbox",
                "invalid_request"}
RETRY_STATUSES = {429, 500, 502, 503, 504}


class RemoteError(Exception):
    """The engine refused a request (not a filter): its status, code and message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message


class RemoteSource:
    """Reads frames from an engine's API as ``token``'s account sees them (anonymous when None)."""

    def __init__(self, url: str, token: str | None = None, *, progress: bool | None = None, timeout: float = 60.0,
                 retries: int = 6, transport: httpx.BaseTransport | None = None) -> None:
        self.url = url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.client = httpx.Client(base_url=self.url, headers=headers, timeout=timeout, transport=transport)
        self.token_hint = (token or "")[:12]
        self.progress = sys.stderr.isatty() if progress is None else progress
        self.retries = retries
        self.requests = 0
        """Requests sent (retries included): what a refresh costs."""

    def describe(self) -> str:
        return f"{self.url}, {'token ' + self.token_hint + '...' if self.token_hint else 'anonymous'}"

    def cache_key(self) -> str:
        import hashlib

        who = hashlib.sha256(self.client.headers.get("Authorization", "").encode()).hexdigest()[:16]
        return f"remote|{self.url}|{who}"

    # --- HTTP ------------------------------------------------------------------------------

    def get(self, path: str, params: Mapping[str, Any] | None = None, *, missing_ok: bool = False) -> Any:
        """The JSON of ``GET path``, retried; FilterError for a refused filter, RemoteError for
        another refusal (None for a 404/409 when ``missing_ok``)."""
        for attempt in range(self.retries + 1):
            self.requests += 1
            try:
                response = self.client.get(path, params=params)
            except httpx.TransportError as exc:
                if attempt == self.retries:
                    raise RemoteError(0, "unreachable", f"{self.url}{path}: {exc}") from None
                time.sleep(_backoff(attempt))
                continue
            if response.status_code in RETRY_STATUSES and attempt < self.retries:
                time.sleep(_retry_after(response) or _backoff(attempt))
                continue
            if response.status_code < 400:
                return response.json()
            if missing_ok and response.status_code in (404, 409):
                return None
            code, message = _error(response)
            if response.status_code == 422 and code in FILTER_CODES:
                raise FilterError(message, code)
            raise RemoteError(response.status_code, code, message)
        raise AssertionError("unreachable")

    # --- frames ----------------------------------------------------------------------------

    def observations(self, project: str, params: Mapping[str, str]) -> pd.DataFrame:
        info = self.get(f"/api/v1/projects/{project}")
        types = field_types({name: kind.get("schema") for name, kind in info["kinds"].items()})
        dtypes = {name: field_dtype(t) for name, t in types.items()}
        services = set(info["services"])
        items = list(self._pages(project, params))
        comments = self._comment_counts(project) if items else None
        known: dict[int, Lineage] = {}
        gathered: dict[str, list[Any]] = {}
        for start in range(0, len(items), PAGE):
            page = items[start:start + PAGE]
            taxa = self._taxa(page) if "identification" in services else {}
            columns = _columns(page, info, types, services, taxa, comments)
            columns.update(taxon_columns(columns["taxon_id"], self._lineages, known))
            for name, values in columns.items():
                gathered.setdefault(name, []).extend(values)
        if not gathered:
            gathered = {"id": [], **{n: [] for n in types}}
            if SPECIES_ID in services:
                gathered.update({n: [] for n in ENRICHMENT_COLUMNS[SPECIES_ID]})
        return observations_frame(gathered, dtypes)  # one frame built at the end: far cheaper than one a page

    def media(self, project: str, params: Mapping[str, str]) -> pd.DataFrame:
        """The media of the observations the list gives; a medium's attribution from the public
        map's details of its observation (published observations of public projects only)."""
        info = self.get(f"/api/v1/projects/{project}")
        columns: dict[str, list[Any]] = {name: [] for name in MEDIA_COLUMNS}
        for item in self._pages(project, params):
            media = item.get("media") or []
            holder = None
            if media and info["public"] and item["status"] == "published":
                details = self.get(f"/map/{project}/observations/{item['id']}", missing_ok=True)
                holder = (details or {}).get("rights_holder")
            for medium in media:
                columns["observation_id"].append(item["id"])
                columns["media_id"].append(medium["id"])
                columns["url"].append(medium.get("url"))
                columns["content_type"].append(medium["content_type"])
                columns["licence"].append(item.get("licence") or info["licence"])
                columns["attribution"].append(holder)
        return typed_frame(columns, MEDIA_COLUMNS, ["observation_id"])

    def identifications(self, project: str, params: Mapping[str, str]) -> pd.DataFrame:
        """Every identification of the observations the list gives: for an anonymous reader from
        the iNaturalist-compatible API a page of 200 at a time, else (and for observations it does
        not serve) from the identification API's list of each observation, which alone gives staff
        the identifier's account id."""
        info = self.get(f"/api/v1/projects/{project}")
        columns: dict[str, list[Any]] = {name: [] for name in IDENTIFICATION_COLUMNS}
        if "identification" not in info["services"]:
            return typed_frame(columns, IDENTIFICATION_COLUMNS, ["observation_id"])
        anonymous = "Authorization" not in self.client.headers
        page: list[int] = []

        def add(obs_id: int, ident: Mapping[str, Any], taxon_name: Any, identifier: Any) -> None:
            for name, value in (("observation_id", obs_id), ("identification_id", ident["id"]),
                                ("taxon_id", ident["taxon"]["id"]), ("taxon_name", taxon_name),
                                ("category", ident.get("category")), ("current", ident["current"]),
                                ("created_at", ident["created_at"]), ("identifier_id", identifier)):
                columns[name].append(value)

        def flush() -> None:
            served: dict[int, list[Any]] = {}
            if anonymous:
                body = self.get(f"/inat/v1/observations/{','.join(map(str, page))}", missing_ok=True) or {}
                served = {int(r["id"]): r.get("identifications") or [] for r in body.get("results", [])}
            for obs_id in page:
                if obs_id in served:
                    for ident in served[obs_id]:
                        add(obs_id, ident, ident["taxon"].get("name"), None)
                    continue
                listed = self.get(f"/api/v1/observations/{obs_id}/identifications", missing_ok=True) or {}
                for ident in listed.get("items", []):
                    add(obs_id, ident, ident["taxon"].get("name"), ident.get("author_id"))
            page.clear()

        for item in self._pages(project, params):
            page.append(item["id"])
            if len(page) == PAGE:
                flush()
        if page:
            flush()
        return typed_frame(columns, IDENTIFICATION_COLUMNS, ["observation_id"])

    def visible_ids(self, project: str, params: Mapping[str, str]) -> list[int] | None:
        """None: the API has no list of ids alone, so a refresh cannot learn of observations that
        left the caller's view (staff see status changes as changed rows)."""
        return None

    def timezone(self, project: str) -> str:
        """The project's time zone (its local days)."""
        return str(self.get(f"/api/v1/projects/{project}")["timezone"])

    def display_names(self, project: str) -> dict[int, str] | None:
        return None

    def _pages(self, project: str, params: Mapping[str, str]) -> Iterator[dict[str, Any]]:
        bar = None
        if self.progress:
            from tqdm import tqdm

            bar = tqdm(unit=" obs", desc=project, file=sys.stderr)
        cursor = None
        try:
            while True:
                page = self.get(f"/api/v1/projects/{project}/observations",
                                {**params, "limit": PAGE, **({"cursor": cursor} if cursor else {})})
                if bar is not None:
                    bar.update(len(page["items"]))
                yield from page["items"]
                cursor = page.get("next_cursor")
                if not cursor:
                    return
        finally:
            if bar is not None:
                bar.close()

    def _taxa(self, page: list[dict[str, Any]]) -> dict[int, int | None]:
        ids = [item["id"] for item in page]
        found: dict[int, int | None] = {}
        body = self.get(f"/inat/v1/observations/{','.join(map(str, ids))}", missing_ok=True)
        for result in (body or {}).get("results", []):
            taxon = result.get("taxon")
            found[int(result["id"])] = int(taxon["id"]) if taxon else None
        for obs_id in ids:
            if obs_id not in found:  # not served publicly: the observation's own identification summary
                summary = (self.get(f"/api/v1/observations/{obs_id}/identifications", missing_ok=True) or {}).get("summary")
                taxon = (summary or {}).get("taxon")
                found[obs_id] = int(taxon["id"]) if taxon else None
        return found

    def _comment_counts(self, project: str) -> Counter[int] | None:
        """Visible comments per observation (the project's feed, staff only); None for others."""
        counts: Counter[int] = Counter()
        cursor = None
        while True:
            try:
                page = self.get(f"/api/v1/projects/{project}/comments",
                                {"state": "visible", **({"cursor": cursor} if cursor else {})})
            except RemoteError as exc:
                if exc.status in (401, 403):
                    return None
                raise
            counts.update(int(c["observation_id"]) for c in page["items"])
            cursor = page.get("next_cursor")
            if not cursor:
                return counts

    def _lineages(self, ids: list[int]) -> dict[int, Lineage]:
        out = {}
        for taxon_id in ids:
            body = self.get(f"/api/v1/taxa/{taxon_id}", missing_ok=True)
            if body:
                out[taxon_id] = lineage_of(body["name"], body["rank"], [(a["name"], a["rank"]) for a in body["ancestors"]])
        return out


def _columns(items: list[dict[str, Any]], info: Mapping[str, Any], types: Mapping[str, str], services: set[str],
             taxa: Mapping[int, int | None], comments: Counter[int] | None) -> dict[str, list[Any]]:
    def best(item: dict[str, Any]) -> dict[str, Any]:
        entry = (item.get("enrichments") or {}).get(SPECIES_ID) or {}
        value = (entry.get("result") or {}).get("best") if entry.get("status") == "done" else None
        return value if isinstance(value, dict) else {}

    bests = [best(i) for i in items]
    places = [i.get("location") or {} for i in items]
    columns: dict[str, list[Any]] = {
        "id": [i["id"] for i in items],
        "project": [i["project"] for i in items],
        "kind": [i["kind"] for i in items],
        "status": [i["status"] for i in items],
        "contributor_id": [i.get("contributor_id") for i in items],
        "observed_at": [i["observed_at"] for i in items],
        "created_at": [i["created_at"] for i in items],
        "updated_at": [i["updated_at"] for i in items],
        "lat": [p.get("lat") for p in places],
        "lon": [p.get("lon") for p in places],
        "location_privacy": [i.get("location_privacy") or "open" for i in items],
        "grade": [i.get("grade") for i in items],
        "licence": [i.get("licence") or info["licence"] for i in items],
        "flags": [",".join(f["code"] for f in i.get("flags") or []) for i in items],
        "n_media": [len(i.get("media") or []) for i in items],
        "n_comments": [comments.get(i["id"], 0) for i in items] if comments is not None else [None] * len(items),
        "category": [_category(i.get("fields")) for i in items],
    }
    columns["taxon_id"] = [taxa.get(i["id"]) or _int(b.get("taxon_id")) for i, b in zip(items, bests)]
    if SPECIES_ID in services:
        columns["species_id.top_label"] = [b.get("scientific_name") for b in bests]
        columns["species_id.top_score"] = [b.get("score") for b in bests]
        columns["species_id.top_taxon_id"] = [_int(b.get("taxon_id")) for b in bests]
    for name, json_type in types.items():
        key = name[len("field."):]
        columns[name] = [field_value((i.get("fields") or {}).get(key), json_type) for i in items]
    return columns


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _category(fields: Any) -> str | None:
    value = fields.get("category") if isinstance(fields, dict) else None
    return str(value) if value is not None and not isinstance(value, (dict, list)) else None


def _backoff(attempt: int) -> float:
    return min(30.0, 0.5 * 2**attempt)


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    try:
        return min(120.0, max(0.0, float(value)))
    except ValueError:
        return None


def _error(response: httpx.Response) -> tuple[str, str]:
    try:
        error = response.json().get("error") or {}
    except ValueError:
        error = {}
    if isinstance(error, dict):
        return str(error.get("code") or "error"), str(error.get("message") or response.text[:200])
    return "error", str(error)
