"""Maps of an observations frame: points and a heat map as static figures (matplotlib, lon/lat
axes in an equirectangular projection, no tiles), and an interactive HTML map (folium) that
loads nothing from a CDN: Leaflet and its marker clustering are the engine's own
(``xstatic`` packages, served at ``/assets/leaflet`` and ``/assets/markercluster``), either
inlined into the file (``assets="inline"``, the default: the file works anywhere, offline) or
linked from an engine's address (``assets="https://observatory.example.org"``). The only
address the page itself reaches for is the tile URL of the settings (``map_tile_url``); with
none, the points show over a plain background.

The places are those of the frame: a frame loaded as the public holds the public places
(coarsened or obscured by ``core.privacy``, private ones empty), so the maps show no more.
"""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from plugins.analysis.plots import COLOUR, PlotError, new_figure, require

POINT_LIMIT = 50_000


def places(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows with a place, as float ``lat`` and ``lon`` (:class:`PlotError` when none has one)."""
    require(frame, "lat", "lon")
    located = frame.loc[frame["lat"].notna() & frame["lon"].notna()]
    if located.empty:
        raise PlotError("no observation has a place the caller may see")
    out = located.copy()
    out["lat"] = out["lat"].astype("float64")
    out["lon"] = out["lon"].astype("float64")
    return out


def _geographic_axes(figure: Figure, lat: np.ndarray) -> object:
    axes = figure.subplots()
    # equirectangular: a degree of longitude is cos(latitude) of a degree of latitude
    axes.set_aspect(1 / max(np.cos(np.radians(float(np.nanmean(lat)))), 0.05), adjustable="datalim")
    axes.set_xlabel("longitude (°)")
    axes.set_ylabel("latitude (°)")
    axes.grid(True, color="#dddddd", linewidth=0.5)
    return axes


def plot_points(frame: pd.DataFrame, *, title: str | None = None, colour_by: str | None = None) -> Figure:
    """Every located observation as a dot on lon/lat axes (coloured by ``colour_by``'s top values
    when given, e.g. ``"category"``)."""
    located = places(frame)
    figure = new_figure((7.0, 6.0))
    axes = _geographic_axes(figure, located["lat"].to_numpy())
    if colour_by and colour_by in located.columns and located[colour_by].notna().any():
        labels = located[colour_by].astype("string").fillna("other")
        top = labels.value_counts().index[:8]
        labels = labels.where(labels.isin(top), "other")
        for label in sorted(labels.unique()):
            part = located.loc[labels == label]
            axes.scatter(part["lon"], part["lat"], s=10, alpha=0.7, label=str(label))
        axes.legend(loc="best", fontsize="small")
    else:
        axes.scatter(located["lon"], located["lat"], s=10, alpha=0.7, color=COLOUR)
    axes.set_title(title or f"{len(located):,} located observations")
    return figure


def heat_grid(frame: pd.DataFrame, *, bins: int = 40) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Observations counted on a ``bins`` x ``bins`` lon/lat grid over their extent: (counts
    [lat, lon], lon edges, lat edges)."""
    located = places(frame)
    lon, lat = located["lon"].to_numpy(), located["lat"].to_numpy()
    pad = 1e-4
    counts, lat_edges, lon_edges = np.histogram2d(
        lat, lon, bins=bins, range=[[lat.min() - pad, lat.max() + pad], [lon.min() - pad, lon.max() + pad]])
    return counts.astype("int64"), lon_edges, lat_edges


def plot_heatmap(frame: pd.DataFrame, *, bins: int = 40, title: str | None = None) -> Figure:
    """Observations per cell of a lon/lat grid (empty cells blank), with a colour bar."""
    counts, lon_edges, lat_edges = heat_grid(frame, bins=bins)
    figure = new_figure((7.0, 6.0))
    axes = _geographic_axes(figure, (lat_edges[:-1] + lat_edges[1:]) / 2)
    shown = np.ma.masked_equal(counts, 0)
    mesh = axes.pcolormesh(lon_edges, lat_edges, shown, cmap="YlOrRd", shading="flat")
    figure.colorbar(mesh, ax=axes, label="observations per cell")
    axes.set_title(title or f"Heat map of {int(counts.sum()):,} observations")
    return figure


# --------------------------------------------------------------------------- interactive (folium)

ASSET_FILES = {
    "leaflet_js": ("leaflet", "leaflet.js"),
    "leaflet_css": ("leaflet", "leaflet.css"),
    "markercluster_js": ("markercluster", "leaflet.markercluster.js"),
    "markercluster_css": ("markercluster", "MarkerCluster.css"),
    "markercluster_default_css": ("markercluster", "MarkerCluster.Default.css"),
}


def asset_path(folder: str, name: str) -> Path:
    """A file of the engine's map assets (the folders ``/assets/<folder>`` serves)."""
    from core.web.assets import FOLDERS

    return FOLDERS[folder] / name


def _inline_css(text: str, folder: str) -> str:
    """CSS with its relative ``url(images/x.png)`` made data URIs, so that nothing is fetched."""
    def replace(match: re.Match[str]) -> str:
        target = match.group(1).strip("'\"")
        path = asset_path(folder, target)
        if target.startswith(("data:", "#")) or not path.is_file():
            return match.group(0)
        mime = "image/svg+xml" if path.suffix == ".svg" else f"image/{path.suffix.lstrip('.')}"
        return f"url(data:{mime};base64,{base64.b64encode(path.read_bytes()).decode('ascii')})"
    return re.sub(r"url\(([^)]+)\)", replace, text)


def asset_tags(assets: str = "inline") -> str:
    """The ``<link>``/``<script>`` (or inline ``<style>``/``<script>``) tags of the engine's Leaflet
    and marker clustering: ``inline``, or the base URL of an engine that serves ``/assets``."""
    tags = []
    for key, (folder, name) in ASSET_FILES.items():
        if assets == "inline":
            text = asset_path(folder, name).read_text(encoding="utf-8")
            if key.endswith("_css"):
                tags.append(f"<style>{_inline_css(text, folder)}</style>")
            else:
                tags.append("<script>" + text.replace("</script", "<\\/script") + "</script>")
        else:
            url = html.escape(f"{assets.rstrip('/')}/assets/{folder}/{name}", quote=True)
            tags.append(f'<link rel="stylesheet" href="{url}">' if key.endswith("_css")
                        else f'<script src="{url}"></script>')
    return "\n".join(tags)


def _no_cdn(element: object) -> None:
    """Drop every element's own CDN links (folium's defaults), recursively."""
    for attribute in ("default_js", "default_css"):
        if hasattr(element, attribute):
            setattr(element, attribute, [])
    for child in getattr(element, "_children", {}).values():
        _no_cdn(child)


def popup_text(row: pd.Series) -> str:
    """A point's popup (plain text): its id, label (taxon or category) and date; no person."""
    parts = [f"#{row['id']}"] if "id" in row and pd.notna(row["id"]) else []
    for column in ("taxon_name", "category"):
        if column in row and pd.notna(row[column]):
            parts.append(str(row[column]))
            break
    if "observed_at" in row and pd.notna(row["observed_at"]):
        parts.append(pd.Timestamp(row["observed_at"]).strftime("%Y-%m-%d"))
    return " · ".join(parts)


# each row is [lat, lon, popup text]; the text goes in as text (never as HTML), and nothing
# needs jQuery or the awesome-markers icons that folium's defaults load from CDNs
MARKER_CALLBACK = f"""function (row) {{
    var marker = L.circleMarker(new L.LatLng(row[0], row[1]),
        {{radius: 6, color: "{COLOUR}", weight: 1, fill: true, fillOpacity: 0.8}});
    var text = document.createElement("div");
    text.textContent = row[2];
    marker.bindPopup(text);
    return marker;
}}"""


def map_html(frame: pd.DataFrame, *, tile_url: str | None = None, attribution: str = "",
             assets: str = "inline", title: str | None = None, limit: int = POINT_LIMIT) -> str:
    """An interactive map of the located observations as a whole HTML page (folium): clustered
    circle markers, each with a popup (id, taxon or category, date). ``tile_url`` is a Leaflet
    URL template (the engine's ``map_tile_url``); None or "" draws no tiles. ``assets`` is
    ``inline`` or the base URL of an engine serving ``/assets``. At most ``limit`` points (the
    highest ids), as a browser slows beyond."""
    import folium
    from branca.element import Element
    from folium.plugins import FastMarkerCluster

    located = places(frame)
    if len(located) > limit:
        located = located.sort_values("id").tail(limit) if "id" in located.columns else located.tail(limit)
    lat, lon = located["lat"].to_numpy(), located["lon"].to_numpy()
    fmap = folium.Map(location=[float(lat.mean()), float(lon.mean())], tiles=None, control_scale=True,
                      zoom_start=10)
    fmap.options["maxZoom"] = 19  # marker clustering needs it, and without tiles the map has none
    if tile_url:
        folium.TileLayer(tiles=tile_url, attr=attribution or " ", name="tiles").add_to(fmap)
    rows = [[float(y), float(x), popup_text(row)]
            for (_, row), y, x in zip(located.iterrows(), lat, lon, strict=True)]
    FastMarkerCluster(rows, callback=MARKER_CALLBACK, name="observations").add_to(fmap)
    fmap.fit_bounds([[float(lat.min()), float(lon.min())], [float(lat.max()), float(lon.max())]], max_zoom=15)
    _no_cdn(fmap)
    root = fmap.get_root()
    root.header.add_child(Element(asset_tags(assets)), name="engine_map_assets", index=0)
    root.header.add_child(Element(f"<title>{html.escape(title or f'{len(located):,} observations')}</title>"),
                          name="page_title")
    return root.render()


def save_map_html(frame: pd.DataFrame, path: str | Path, **options: object) -> Path:
    """Write :func:`map_html` to ``path``; the path."""
    target = Path(path)
    target.write_text(map_html(frame, **options), encoding="utf-8")  # type: ignore[arg-type]
    return target
