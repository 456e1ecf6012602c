"""The project report on a generated frame of a few thousand rows: the planted counts are in
it, the HTML holds no external address (every image is inline), it is made in seconds, the
participation section appears with the planted figures, and a PDF without WeasyPrint says so."""

from __future__ import annotations

import re
import time
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from plugins.analysis import report

TAXA = {"Parus major": 1500, "Erithacus rubecula": 900, "Apis mellifera": 450, "Vulpes vulpes": 150}
N = sum(TAXA.values())  # 3,000


def generated(seed: int = 11) -> pd.DataFrame:
    """3,000 observations in 2024: planted taxa; 10 heavy contributors with 200 each and 1,000
    contributors with one each; 300 flagged 'blurry' (30 of them also 'duplicate'); grades 2,000
    research / 1,000 needs_id; 2,700 CC-BY-4.0 and 300 CC0-1.0."""
    rng = np.random.default_rng(seed)
    names = [name for name, n in TAXA.items() for _ in range(n)]
    contributors = [i for i in range(1, 11) for _ in range(200)] + list(range(100, 1100))
    flags = ["blurry"] * 270 + ["blurry,duplicate"] * 30 + [""] * (N - 300)
    grades = ["research"] * 2000 + ["needs_id"] * 1000
    licences = ["CC-BY-4.0"] * 2700 + ["CC0-1.0"] * 300
    order = rng.permutation(N)
    seconds = rng.integers(0, 365 * 86400, N)
    return pd.DataFrame({
        "id": pd.array(range(1, N + 1), dtype="Int64"),
        "status": pd.Categorical(["published"] * N),
        "contributor_id": pd.array(np.array(contributors)[order], dtype="Int64"),
        "observed_at": pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(np.sort(seconds), unit="s"),
        "lat": pd.array(41.4 + rng.normal(0, 0.1, N), dtype="Float64"),
        "lon": pd.array(2.2 + rng.normal(0, 0.1, N), dtype="Float64"),
        "taxon_id": pd.array(np.arange(N) % 4 + 1, dtype="Int64"),
        "taxon_name": pd.array(np.array(names)[order], dtype="string"),
        "grade": pd.Categorical(np.array(grades)[order]),
        "licence": pd.Categorical(np.array(licences)[order]),
        "flags": pd.array(np.array(flags)[order], dtype="string"),
        "n_media": pd.array(np.where(np.arange(N) < 2400, 1, 0)[order], dtype="Int64"),
        "display_name": ["Private Person"] * N,
    })


class Parts(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.addresses: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.addresses += [v for k, v in attrs if k in ("src", "href") and v]

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_the_report_holds_the_planted_counts_and_nothing_external(tmp_path: Path) -> None:
    frame = generated()
    started = time.monotonic()
    html = report.render_report(frame, name="Garden Birds", licence="CC-BY-4.0", timezone="Europe/Madrid",
                                description="Birds <and> bees", map_public=True)
    elapsed = time.monotonic() - started
    assert elapsed < 10, f"the report took {elapsed:.1f} s on {N} rows"
    parts = Parts()
    parts.feed(html)
    text = re.sub(r"\s+", " ", " ".join(parts.text))
    # every image inline, no address outside the page
    assert parts.addresses and all(a.startswith("data:image/png;base64,") for a in parts.addresses)
    assert not re.search(r"https?://", html)
    assert "Garden Birds" in text and "Birds <and> bees" in text and "<and>" not in html  # escaped
    assert "3,000 Observations" in text and "1,010 Contributors" in text and "4 Taxa" in text
    assert "Parus major 1,500 50%" in text and "Vulpes vulpes 150 5%" in text
    assert "research 2,000 67%" in text and "needs_id 1,000 33%" in text
    assert "blurry 300 10%" in text and "duplicate 30 1%" in text
    assert "With media 80%" in text
    assert "CC-BY-4.0 2,700 90%" in text and "CC0-1.0 300 10%" in text
    # participation (plugins.analysis.participation): 1,000 of 1,010 came on one day only
    assert "One-day contributors 99%" in text
    assert "Top 10% share" in text and "Gini coefficient" in text
    assert "Private Person" not in html
    assert "as the public sees them" in text
    assert len(parts.addresses) == 3  # over time, contributors over time, map


def test_without_contributor_ids_the_participation_section_is_left_out() -> None:
    frame = generated().assign(contributor_id=pd.array([None] * N, dtype="Int64"))
    html = report.render_report(frame, name="Public", licence="CC0-1.0", timezone="UTC")
    assert "Participation" not in html and "Contributors over time" in html
    assert "no contributor ids" in html  # the chart says why it is missing


def test_an_empty_frame_or_a_pdf_without_weasyprint_is_refused(tmp_path: Path) -> None:
    with pytest.raises(report.ReportError, match="no observations in Empty"):
        report.render_report(generated().iloc[:0], name="Empty", licence="CC0-1.0")
    if report.weasyprint_available():
        pytest.skip("WeasyPrint is installed here")
    with pytest.raises(report.ReportError, match="WeasyPrint, which is not installed"):
        report.write_report("<html></html>", tmp_path / "r.pdf")
    assert not (tmp_path / "r.pdf").exists()
