"""Charts of an observations frame (the columns of ``Observatory.observations``): counts over
time, by hour and by weekday in the project's time zone, by taxon or category, and
contributions per person (a sorted table and a Lorenz curve).

Each ``*_counts`` / table function returns pandas data, and each ``plot_*`` function a
matplotlib :class:`~matplotlib.figure.Figure` drawn on the Agg canvas (no display, no pyplot
state: safe in a server or a notebook). ``png_bytes(figure)`` writes one as PNG.

    from plugins.analysis import Observatory, plots
    frame = Observatory.local().observations("demo")
    plots.plot_by_hour(frame, timezone="Europe/Madrid").savefig("hours.png")

Contributors appear by their pseudonymous ids (``contributor_id``), never by name.
"""

from __future__ import annotations

import base64
import io
from typing import Literal

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
RANKS = ("kingdom", "phylum", "class", "order", "family", "genus", "species")
FREQUENCIES = {"day": "D", "week": "W-SUN", "month": "M"}
Frequency = Literal["auto", "day", "week", "month"]
COLOUR = "#2f6f4e"
FIGSIZE = (8.0, 4.0)


class PlotError(ValueError):
    """The frame cannot give this chart (no rows, a column missing, no contributor ids)."""


# --------------------------------------------------------------------------- helpers


def new_figure(figsize: tuple[float, float] = FIGSIZE) -> Figure:
    """A figure on the Agg canvas (headless)."""
    figure = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def png_bytes(figure: Figure, dpi: int = 100) -> bytes:
    """The figure as PNG bytes."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def data_uri(figure: Figure, dpi: int = 100) -> str:
    """The figure as a ``data:image/png;base64,...`` URI (for self-contained HTML)."""
    return "data:image/png;base64," + base64.b64encode(png_bytes(figure, dpi)).decode("ascii")


def require(frame: pd.DataFrame, *columns: str) -> None:
    """Raise :class:`PlotError` naming the first column ``frame`` lacks, or when it has no rows."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise PlotError(f"the frame has no column {missing[0]!r} (columns: {', '.join(map(str, frame.columns))})")
    if frame.empty:
        raise PlotError("no observations to draw")


def local_times(frame: pd.DataFrame, timezone: str, column: str = "observed_at") -> pd.Series:
    """``column`` (tz-aware, or naive UTC) in ``timezone``, rows without a time left out."""
    require(frame, column)
    times = pd.to_datetime(frame[column], utc=True).dropna()
    if times.empty:
        raise PlotError(f"no observation has {column}")
    return times.dt.tz_convert(timezone)


# --------------------------------------------------------------------------- over time


def auto_frequency(start: pd.Timestamp, end: pd.Timestamp) -> Literal["day", "week", "month"]:
    """Day for spans up to about two months, week up to about two years, month beyond."""
    days = (end - start) / pd.Timedelta(days=1)
    if days <= 62:
        return "day"
    if days <= 730:
        return "week"
    return "month"


def counts_over_time(frame: pd.DataFrame, *, freq: Frequency = "auto", timezone: str = "UTC",
                     column: str = "observed_at", what: Literal["observations", "contributors"] = "observations",
                     ) -> pd.Series:
    """Observations (or distinct contributors) per local day, week or month, every period from the
    first to the last present (zeros included); indexed by the period's first day (naive local date)."""
    times = local_times(frame, timezone, column)
    chosen = auto_frequency(times.min(), times.max()) if freq == "auto" else freq
    if chosen not in FREQUENCIES:
        raise PlotError(f"unknown frequency {freq!r} (auto, day, week, month)")
    periods = times.dt.tz_localize(None).dt.to_period(FREQUENCIES[chosen])
    if what == "contributors":
        contributor_ids(frame)  # PlotError when the caller may see none
        ids = frame.loc[periods.index, "contributor_id"]
        counts = ids.groupby(periods).nunique()
    else:
        counts = periods.value_counts()
    full = pd.period_range(periods.min(), periods.max(), freq=FREQUENCIES[chosen])
    series = counts.reindex(full, fill_value=0).astype("int64")
    series.index = full.start_time
    series.index.name = chosen
    series.name = what
    return series


def plot_over_time(frame: pd.DataFrame, *, freq: Frequency = "auto", timezone: str = "UTC",
                   what: Literal["observations", "contributors"] = "observations", title: str | None = None,
                   ) -> Figure:
    """Bars of :func:`counts_over_time`."""
    series = counts_over_time(frame, freq=freq, timezone=timezone, what=what)
    figure = new_figure()
    axes = figure.subplots()
    width = {"day": 0.8, "week": 5.6, "month": 24.0}[str(series.index.name)]
    axes.bar(series.index, series.to_numpy(), width=width, color=COLOUR, align="edge")
    axes.set_ylabel(f"{what} per {series.index.name}")
    axes.set_title(title or f"{what.capitalize()} per {series.index.name} ({timezone})")
    figure.autofmt_xdate()
    return figure


# --------------------------------------------------------------------------- hour and weekday


def counts_by_hour(frame: pd.DataFrame, *, timezone: str = "UTC", column: str = "observed_at") -> pd.Series:
    """Observations per local hour of the day (0..23, every hour present)."""
    hours = local_times(frame, timezone, column).dt.hour
    series = hours.value_counts().reindex(range(24), fill_value=0).astype("int64")
    series.index.name, series.name = "hour", "observations"
    return series


def counts_by_weekday(frame: pd.DataFrame, *, timezone: str = "UTC", column: str = "observed_at") -> pd.Series:
    """Observations per local weekday, Monday first (every day present)."""
    days = local_times(frame, timezone, column).dt.day_of_week
    series = days.value_counts().reindex(range(7), fill_value=0).astype("int64")
    series.index = pd.Index(WEEKDAYS, name="weekday")
    series.name = "observations"
    return series


def _bars(labels: list[str], values: np.ndarray, *, title: str, xlabel: str, ylabel: str,
          horizontal: bool = False) -> Figure:
    figure = new_figure()
    axes = figure.subplots()
    if horizontal:
        axes.barh(labels[::-1], values[::-1], color=COLOUR)
        axes.set_xlabel(ylabel)
    else:
        axes.bar(labels, values, color=COLOUR)
        axes.set_xlabel(xlabel)
        axes.set_ylabel(ylabel)
    axes.set_title(title)
    return figure


def plot_by_hour(frame: pd.DataFrame, *, timezone: str = "UTC", title: str | None = None) -> Figure:
    """Bars of :func:`counts_by_hour`."""
    series = counts_by_hour(frame, timezone=timezone)
    return _bars([str(h) for h in series.index], series.to_numpy(), xlabel=f"hour ({timezone})",
                 ylabel="observations", title=title or f"Observations by hour of the day ({timezone})")


def plot_by_weekday(frame: pd.DataFrame, *, timezone: str = "UTC", title: str | None = None) -> Figure:
    """Bars of :func:`counts_by_weekday`."""
    series = counts_by_weekday(frame, timezone=timezone)
    return _bars([d[:3] for d in series.index], series.to_numpy(), xlabel=f"weekday ({timezone})",
                 ylabel="observations", title=title or f"Observations by weekday ({timezone})")


# --------------------------------------------------------------------------- taxa and categories


def label_column(frame: pd.DataFrame, by: str = "auto") -> str:
    """The column to count by: ``by`` itself, or (auto) ``taxon_name`` where any row has one, else
    ``category``."""
    if by != "auto":
        require(frame, by)
        return by
    for column in ("taxon_name", "category"):
        if column in frame.columns and frame[column].notna().any():
            return column
    raise PlotError("no observation has a taxon or a category to count by")


def top_labels(frame: pd.DataFrame, *, by: str = "auto", n: int = 10) -> pd.Series:
    """The ``n`` commonest values of ``by`` (``taxon_name``, a rank such as ``family``, or
    ``category``; auto: taxa if any, else categories), most first, ties by name; rows without one
    are left out."""
    column = label_column(frame, by)
    if n < 1:
        raise PlotError("n must be at least 1")
    values = frame[column].dropna().astype(str)
    counts = values.value_counts()
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:n]
    series = pd.Series([c for _, c in ordered], index=pd.Index([k for k, _ in ordered], name=column),
                       name="observations", dtype="int64")
    return series


def plot_top_labels(frame: pd.DataFrame, *, by: str = "auto", n: int = 10, title: str | None = None) -> Figure:
    """Horizontal bars of :func:`top_labels`, the commonest on top."""
    series = top_labels(frame, by=by, n=n)
    if series.empty:
        raise PlotError(f"no observation has a {label_column(frame, by)}")
    return _bars(list(series.index), series.to_numpy(), xlabel=str(series.index.name), ylabel="observations",
                 title=title or f"Top {len(series)} by {series.index.name}", horizontal=True)


# --------------------------------------------------------------------------- contributions


def contributor_ids(frame: pd.DataFrame) -> pd.Series:
    """The frame's contributor ids; :class:`PlotError` when the caller may see none."""
    require(frame, "contributor_id")
    ids = frame["contributor_id"].dropna()
    if ids.empty:
        raise PlotError("no contributor ids in this frame (the public sees none: load it as staff or locally)")
    return ids


def contributions(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per contributor, most observations first (ties by id): ``rank``, ``contributor_id``,
    ``n_observations``, ``share`` and ``cumulative_share`` of the observations with a contributor id."""
    counts = contributor_ids(frame).astype("int64").value_counts()
    table = pd.DataFrame({"contributor_id": counts.index.astype("int64"), "n_observations": counts.to_numpy()})
    table = table.sort_values(["n_observations", "contributor_id"], ascending=[False, True], ignore_index=True)
    total = table["n_observations"].sum()
    table["share"] = table["n_observations"] / total
    table["cumulative_share"] = table["n_observations"].cumsum() / total
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    return table


def lorenz_curve(frame: pd.DataFrame) -> pd.DataFrame:
    """The Lorenz curve of observations per contributor: ``contributors`` (cumulative share of
    contributors, fewest observations first) against ``observations`` (their cumulative share of
    the observations), from (0, 0) to (1, 1)."""
    counts = np.sort(contributor_ids(frame).astype("int64").value_counts().to_numpy())
    x = np.arange(len(counts) + 1) / len(counts)
    y = np.concatenate([[0.0], np.cumsum(counts) / counts.sum()])
    return pd.DataFrame({"contributors": x, "observations": y})


def lorenz_area(curve: pd.DataFrame) -> float:
    """The area under a Lorenz curve (0.5 when everyone contributes alike); the Gini coefficient
    of the same counts is 1 - 2 x area."""
    return float(np.trapezoid(curve["observations"], curve["contributors"]))


def plot_lorenz(frame: pd.DataFrame, *, title: str | None = None) -> Figure:
    """The Lorenz curve with the line of equality and the Gini coefficient."""
    from plugins.analysis.participation import gini as gini_of

    curve = lorenz_curve(frame)
    gini = gini_of(contributor_ids(frame).astype("int64").value_counts().to_numpy())
    figure = new_figure((5.0, 5.0))
    axes = figure.subplots()
    axes.plot([0, 1], [0, 1], color="#999999", linestyle="--", label="equal contributions")
    axes.plot(curve["contributors"], curve["observations"], color=COLOUR, label=f"Lorenz curve (Gini {gini:.2f})")
    axes.fill_between(curve["contributors"], curve["observations"], curve["contributors"], color=COLOUR, alpha=0.15)
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1)
    axes.set_aspect("equal")
    axes.set_xlabel("share of contributors (fewest observations first)")
    axes.set_ylabel("share of observations")
    axes.set_title(title or f"Contributions of {len(curve) - 1} contributors")
    axes.legend(loc="upper left")
    return figure


def plot_contributions(frame: pd.DataFrame, *, n: int = 20, title: str | None = None) -> Figure:
    """Bars of the ``n`` largest contributors' observations, labelled by pseudonymous id."""
    table = contributions(frame).head(n)
    return _bars([f"#{i}" for i in table["contributor_id"]], table["n_observations"].to_numpy(),
                 xlabel="contributor id", ylabel="observations", horizontal=True,
                 title=title or f"Top {len(table)} contributors (pseudonymous ids)")
