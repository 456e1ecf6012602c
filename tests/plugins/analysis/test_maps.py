"""Maps of an observations frame: the static points and heat map count what was planted, and the
interactive folium map holds no CDN address (parsed), only the tile URL it was given, loads the
engine's own Leaflet (inlined, or from a running engine's /assets), and shows every point in a
real browser even without tiles."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from plugins.analysis import maps
from plugins.analysis.plots import PlotError, png_bytes
from tests.support.browser import LiveServer

URL = re.compile(r"https?://[^\s\"'<>)\\]+")
TILES = "https://tiles.example.org/{z}/{x}/{y}.png"


def frame_of(n: int = 60, *, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    lat = list(41.38 + rng.normal(0, 0.02, n)) + [None]  # one without a place (private to this caller)
    lon = list(2.17 + rng.normal(0, 0.02, n)) + [None]
    return pd.DataFrame({
        "id": pd.array(range(1, n + 2), dtype="Int64"),
        "observed_at": pd.date_range("2024-05-01", periods=n + 1, freq="h", tz="UTC"),
        "lat": pd.array(lat, dtype="Float64"),
        "lon": pd.array(lon, dtype="Float64"),
        "taxon_name": pd.array(["Parus major"] * (n + 1), dtype="string"),
        "contributor_id": pd.array([5] * (n + 1), dtype="Int64"),
        "display_name": ["Alice Hidden"] * (n + 1),
    })


class Loads(HTMLParser):
    """What a page asks for: src/href of its tags, and the text of its inline scripts."""

    def __init__(self) -> None:
        super().__init__()
        self.addresses: list[str] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.addresses += [v for k, v in attrs if k in ("src", "href") and v]
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts.append(data)


def parse(page: str) -> Loads:
    loads = Loads()
    loads.feed(page)
    return loads


LIBRARIES = [maps.asset_path(folder, name).read_text() for folder, name in maps.ASSET_FILES.values()
             if name.endswith(".js")]


def test_static_maps_draw_every_located_point() -> None:
    frame = frame_of(60)
    figure = maps.plot_points(frame)
    offsets = figure.axes[0].collections[0].get_offsets()
    assert len(offsets) == 60  # the row without a place is left out
    assert png_bytes(figure).startswith(b"\x89PNG")
    counts, lon_edges, lat_edges = maps.heat_grid(frame, bins=10)
    assert counts.sum() == 60 and counts.shape == (10, 10)
    assert lon_edges[0] < frame["lon"].min() and lat_edges[-1] > frame["lat"].max()
    heat = maps.plot_heatmap(frame, bins=10)
    assert "60 observations" in heat.axes[0].get_title()
    with pytest.raises(PlotError, match="no observation has a place"):
        maps.plot_points(frame.loc[frame["lat"].isna()])


def test_the_html_map_has_no_cdn_and_only_the_settings_tile_url() -> None:
    page = maps.map_html(frame_of(30), tile_url=TILES, attribution="© the tiles' makers")
    loads = parse(page)
    outside = [a for a in loads.addresses if URL.match(a)]
    assert not outside, f"the map page loads {outside}"
    assert not any(cdn in page for cdn in ("cdn.jsdelivr", "cdnjs", "code.jquery", "bootstrapcdn", "unpkg"))
    own = [s for s in loads.scripts if s.strip() and s not in LIBRARIES]
    assert len(own) < len(loads.scripts)  # Leaflet and marker clustering are inlined
    addresses = {u for script in own for u in URL.findall(script)}
    assert addresses == {TILES}
    assert "Alice Hidden" not in page  # no person: popups hold id, taxon and date
    assert "Parus major" in page


def test_the_html_map_can_link_a_running_engines_assets(client: Any) -> None:
    page = maps.map_html(frame_of(5), tile_url="", assets="http://127.0.0.1:8000/")
    addresses = parse(page).addresses
    engine_assets = [a for a in addresses if a.startswith("http://127.0.0.1:8000/assets/")]
    assert len(engine_assets) == 5 and all(URL.match(a) is None or a in engine_assets for a in addresses)
    for address in engine_assets:  # the engine serves each of them
        assert client.get(address.removeprefix("http://127.0.0.1:8000")).status_code == 200
    assert {u for s in parse(page).scripts for u in URL.findall(s)} == set()  # no tiles


def shown_points(browser_page: Any) -> int:
    """Points on the map as a person sees them: single markers plus the numbers on clusters."""
    browser_page.wait_for_selector(".marker-cluster, path.leaflet-interactive")

    def count() -> int:
        clusters = sum(int(t) for t in browser_page.locator(".marker-cluster span").all_inner_texts())
        return clusters + browser_page.locator("path.leaflet-interactive").count()

    # while the map zooms to the points, old and new clusters are both on it: wait until it settles
    seen = [count()]
    for _ in range(20):
        browser_page.wait_for_timeout(250)
        seen.append(count())
        if seen[-1] == seen[-2] and browser_page.locator(".leaflet-zoom-anim").count() == 0:
            break
    return seen[-1]


@pytest.mark.slow  # a browser walk: once in CI
def test_the_map_shows_every_point_in_a_browser_without_tiles(browser: Any, tmp_path: Path, app: Any) -> None:
    frame = frame_of(40)
    inline = maps.save_map_html(frame, tmp_path / "map.html", tile_url="")
    page = browser.new_page()
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(inline.as_uri())
    assert shown_points(page) == 40
    assert all(r.startswith(("file:", "data:")) for r in requests), requests

    server = LiveServer(app)  # linked assets from a running engine; tiles that never come
    server.start()
    try:
        requests.clear()
        linked = maps.save_map_html(frame, tmp_path / "linked.html", assets=server.base,
                                    tile_url=server.base + "/no-tiles/{z}/{x}/{y}.png")
        page.goto(linked.as_uri())
        assert shown_points(page) == 40
        assert any("/assets/leaflet/leaflet.js" in r for r in requests)
        assert all(r.startswith(("file:", "data:", server.base)) for r in requests), requests
    finally:
        page.close()
        server.stop()
