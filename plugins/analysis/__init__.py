"""The analysis service: a project's data in pandas, plots and maps, a report for funders,
participation analytics (as CS Track studies them) and a datathon kit (as MECODA's datathons
need), for datathon participants, organisers and observatories.

    from plugins.analysis import Observatory

    local = Observatory.local()                                  # this engine's database
    remote = Observatory("https://observatory.example.org", token="obs_...")  # any engine's API
    frame = local.observations("demo", kind="photo")

Needs the ``analysis`` extra (``pip install 'observatory-engine[analysis]'``: pandas, pyarrow,
matplotlib, folium). See docs/analysis.md.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Observatory"]


def __getattr__(name: str) -> Any:
    # imported on first use: the engine starts without pandas being loaded
    if name == "Observatory":
        from plugins.analysis.frames import Observatory

        return Observatory
    raise AttributeError(name)
