"""Figures for DAS traffic: waterfall with tracks, vehicle summary, streaming latency, modal spectrum.

Examples
--------
Counts by direction and class of the named highway scene's truth (a detection table works the same way):

>>> from terralab.das import plot, synthetic
>>> _, truth = synthetic.highway_bridge(duration_s=60, n_channels=100, seed=1)
>>> table = plot.counts(truth)
>>> int(table.loc["total", "total"]) == len(truth)
True
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .params import KMH

if TYPE_CHECKING:
    import pandas as pd
    import xarray as xr
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from .params import DetectParams

__all__ = [
    "counts",
    "modal_spectrum",
    "stream_latency",
    "summary",
    "throughput",
    "traffic_over_time",
    "waterfall",
]


def _track_lines(vehicles, section):
    """(t_start, x_start) -> (t_end, x_end) of each vehicle over the section (times as datetime64)."""
    lines = []
    for row in vehicles.itertuples(index=False):
        x_in, x_out = (section[0], section[1]) if row.direction > 0 else (section[1], section[0])
        lines.append((np.datetime64(row.t_start, "ns"), x_in, np.datetime64(row.t_end, "ns"), x_out))
    return lines


def waterfall(
    data: xr.DataArray,
    vehicles: pd.DataFrame | None = None,
    truth: pd.DataFrame | None = None,
    *,
    ax: Axes | None = None,
    clip_percentile: float = 99.0,
    params: DetectParams | None = None,
    **kwargs: Any,
) -> Axes:
    """Waterfall (distance across, time down) of the detector's decimated image with tracks overlaid.

    Parameters
    ----------
    data : xarray.DataArray
        Raw record ``(time, distance)``; it is shown after :func:`terralab.das.preprocess` (low-passed,
        integrated, channel-binned), which is what the detector sees.
    vehicles : pandas.DataFrame, optional
        Detections (solid lines: green towards increasing distance, orange the other way).
    truth : pandas.DataFrame, optional
        True vehicles (dashed black lines).
    """
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    from .detect import preprocess

    img = preprocess(data, params=params, **kwargs)
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 7))
    vals = img.values
    lim = np.nanpercentile(np.abs(vals), clip_percentile) or 1.0
    t = img["time"].values
    x = img["distance"].values
    ax.imshow(
        vals,
        aspect="auto",
        cmap="RdBu_r",
        vmin=-lim,
        vmax=lim,
        interpolation="nearest",
        extent=[x[0], x[-1], mdates.date2num(t[-1]), mdates.date2num(t[0])],
    )
    section = (float(data["distance"].values.min()), float(data["distance"].values.max()))
    if truth is not None and len(truth):
        for row in truth.itertuples(index=False):
            v = row.speed_kmh * KMH
            xs = np.array(section)
            tm = np.datetime64(row.time, "ns")
            mid = 0.5 * (section[0] + section[1])
            ts = tm + ((xs - mid) / (v * row.direction) * 1e9).astype("timedelta64[ns]")
            ax.plot(xs, mdates.date2num(ts), "k--", lw=0.8, alpha=0.7)
    if vehicles is not None and len(vehicles):
        for (ta, xa, tb, xb), d in zip(_track_lines(vehicles, section), vehicles["direction"]):
            ax.plot(
                [xa, xb],
                mdates.date2num(np.array([ta, tb])),
                "-",
                lw=1.6,
                color="tab:green" if d > 0 else "tab:orange",
            )
    ax.set_ylim(mdates.date2num(t[-1]), mdates.date2num(t[0]))
    ax.yaxis_date()
    ax.yaxis.set_major_formatter(mdates.DateFormatter("%H:%M:%S"))
    ax.set_xlabel("distance (m)")
    ax.set_ylabel("time (UTC)")
    ax.set_title("DAS waterfall (low-passed strain) with detected tracks")
    return ax


def counts(vehicles: pd.DataFrame) -> pd.DataFrame:
    """Vehicle counts by direction and class (pandas DataFrame, with totals)."""
    import pandas as pd

    if len(vehicles) == 0:
        return pd.DataFrame(
            {"car": [0], "truck": [0], "total": [0]}, index=pd.Index(["total"], name="direction")
        )
    tab = pd.crosstab(
        vehicles["direction"].map({1: "+1 (increasing distance)", -1: "-1 (decreasing distance)"}),
        vehicles["vehicle_class"],
        margins=True,
        margins_name="total",
    )
    tab.index.name = "direction"
    return tab


def traffic_over_time(vehicles: pd.DataFrame, *, bin_s: float = 60.0) -> pd.DataFrame:
    """Vehicles per ``bin_s`` seconds by direction (pandas DataFrame indexed by time)."""
    import pandas as pd

    if len(vehicles) == 0:
        return pd.DataFrame(columns=[1, -1])
    g = vehicles.set_index("time").groupby("direction").resample(f"{int(bin_s * 1000)}ms").size()
    return g.unstack(level=0).fillna(0).astype(int)


def summary(vehicles: pd.DataFrame, *, truth: pd.DataFrame | None = None, bin_s: float = 60.0) -> Figure:
    """Figure with the speed histogram, counts by direction and class, and traffic over time."""
    import matplotlib.pyplot as plt

    fig, axs = plt.subplots(1, 3, figsize=(15, 4))
    bins = np.linspace(0, max(40.0, float(vehicles["speed_kmh"].max()) * 1.1 if len(vehicles) else 160.0), 25)
    for d, c in ((1, "tab:green"), (-1, "tab:orange")):
        sel = vehicles["direction"] == d
        axs[0].hist(vehicles.loc[sel, "speed_kmh"], bins=bins, alpha=0.6, color=c, label=f"direction {d:+d}")
    if truth is not None and len(truth):
        axs[0].hist(truth["speed_kmh"], bins=bins, histtype="step", color="k", label="truth")
    axs[0].set_xlabel("speed (km/h)")
    axs[0].set_ylabel("vehicles")
    axs[0].legend()
    tab = counts(vehicles).drop(index="total", errors="ignore").drop(columns="total", errors="ignore")
    if len(tab):
        tab.plot.bar(ax=axs[1], rot=0)
    axs[1].set_title("counts by direction and class")
    tr = traffic_over_time(vehicles, bin_s=bin_s)
    if len(tr):
        tr.plot(ax=axs[2], drawstyle="steps-post")
    axs[2].set_title(f"vehicles per {bin_s:g} s")
    fig.tight_layout()
    return fig


def stream_latency(batches: pd.DataFrame) -> Figure:
    """Bar chart of per-batch compute time and latency from :func:`terralab.das.streaming.collect`."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3))
    idx = np.arange(len(batches))
    ax.bar(idx - 0.2, batches["compute_s"], width=0.4, label="compute (s)")
    ax.bar(idx + 0.2, batches["latency_s"], width=0.4, label="latency (s)")
    ax.set_xlabel("batch")
    ax.set_ylabel("seconds")
    ax.legend()
    ax.set_title("streaming: time per batch")
    fig.tight_layout()
    return fig


def modal_spectrum(
    spectrum: xr.Dataset, modes: pd.DataFrame | None = None, *, ax: Axes | None = None
) -> Axes:
    """First singular value spectrum of the quiet intervals with the picked modal frequencies."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3))
    s = spectrum["spectrum"] if hasattr(spectrum, "data_vars") else spectrum
    ax.semilogy(s["frequency"].values, s.values)
    if modes is not None:
        for f in modes["freq_hz"]:
            ax.axvline(f, color="tab:red", ls="--", lw=0.8)
    ax.set_xlabel("frequency (Hz)")
    ax.set_ylabel("first singular value")
    ax.set_title("bridge response in quiet intervals (FDD)")
    return ax


def throughput(
    data: xr.DataArray, vehicles: pd.DataFrame, batches: pd.DataFrame | None = None, *, ax: Axes | None = None
) -> Axes:
    """Bar chart: record length against processing time, one batch and (optionally) streamed.

    Labels give the real-time factor (seconds of data per second of computing).
    """
    import matplotlib.pyplot as plt

    from . import io

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3))
    duration = data.sizes["time"] / io.sampling_rate_hz(data)
    labels, secs = ["record"], [duration]
    if "processing_s" in vehicles.attrs:
        labels.append("detect (one batch)")
        secs.append(vehicles.attrs["processing_s"])
    if batches is not None and len(batches):
        labels.append("stream (sum of batches)")
        secs.append(float(batches["compute_s"].sum()))
    bars = ax.barh(labels, secs, color=["0.6"] + ["tab:blue"] * (len(secs) - 1))
    for bar, s in zip(bars[1:], secs[1:]):
        ax.text(
            bar.get_width(),
            bar.get_y() + bar.get_height() / 2,
            f"  {duration / max(s, 1e-9):.0f}x real time",
            va="center",
        )
    ax.set_xscale("log")
    ax.set_xlabel("seconds")
    ax.set_title("throughput")
    return ax
