"""Figures of the dengue notebook: case curves, forecasts against observations, cloud tiles. matplotlib
only.

Examples
--------
>>> import matplotlib.pyplot as plt
>>> from terralab.dengue.synthetic import synthetic_cases
>>> fig = plot_cases(synthetic_cases(60, 2, seed=0), highlight=("2012-10-06", "2012-12-29"))
>>> len(fig.axes[0].lines)  # one curve per location
2
>>> plt.close(fig)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import xarray as xr

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def _names(cases_or_attrs) -> dict:
    attrs = getattr(cases_or_attrs, "attrs", cases_or_attrs) or {}
    return attrs.get("location_names", {}) or {}


def plot_cases(cases: pd.DataFrame, *, highlight: tuple | None = None, ax: Axes | None = None) -> Figure:
    """Weekly case curves, one line per location; ``highlight`` = (start, end) shades a window (e.g. the
    test)."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(11, 3.5))
    names = _names(cases)
    for col in cases.columns:
        ax.plot(cases.index, cases[col], lw=0.9, label=f"{names.get(col, col)} ({col})")
    if highlight is not None:
        ax.axvspan(
            pd.Timestamp(highlight[0]), pd.Timestamp(highlight[1]), color="0.85", zorder=0, label="test weeks"
        )
    ax.set_ylabel("cases / week")
    ax.legend(fontsize=8, ncol=3)
    ax.set_title(f"weekly dengue cases ({cases.attrs.get('source', 'cases')})")
    return ax.figure


def plot_forecasts(
    results: Mapping[str, pd.DataFrame],
    *,
    names: Mapping | None = None,
    history: pd.DataFrame | None = None,
    history_weeks: int = 20,
    ncols: int = 3,
) -> Figure:
    """Forecast against observed per location, one panel per location, one line per model."""
    import matplotlib.pyplot as plt

    first = next(iter(results.values()))
    locs = list(dict.fromkeys(first["location"]))
    names = dict(names or {})
    nrows = int(np.ceil(len(locs) / ncols))
    fig, axes = plt.subplots(
        nrows,
        min(ncols, len(locs)),
        figsize=(4.2 * min(ncols, len(locs)), 3.0 * nrows),
        squeeze=False,
        sharex=True,
    )
    for ax, loc in zip(axes.ravel(), locs):
        obs = first[first["location"] == loc]
        if history is not None:
            start = obs["week"].min() - pd.Timedelta(weeks=history_weeks)
            past = history.loc[start : obs["week"].min() - pd.Timedelta(weeks=1), loc]
            ax.plot(past.index, past.to_numpy(), color="0.6", lw=1)
        ax.plot(obs["week"], obs["observed"], "k.-", lw=1.5, label="observed")
        for name, fc in results.items():
            sub = fc[fc["location"] == loc]
            ax.plot(sub["week"], sub["forecast"], lw=1, label=name)
        ax.set_title(f"{names.get(loc, loc)} ({loc})", fontsize=9)
        ax.tick_params(axis="x", labelrotation=45, labelsize=7)
    for ax in axes.ravel()[len(locs) :]:
        ax.axis("off")
    axes[0, 0].set_ylabel("cases / week")
    axes.ravel()[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_cloud_tiles(
    cube: xr.DataArray,
    cleaned: xr.DataArray,
    flags: xr.DataArray,
    *,
    n_weeks: int = 4,
    rgb: Sequence[str] = ("B04", "B03", "B02"),
) -> Figure:
    """True-colour weeks before and after DengueNet's tile replacement, cloud tiles outlined red, shadows
    blue."""
    import matplotlib.pyplot as plt

    t = "week" if "week" in cube.dims else "time"
    cloudy = np.argsort(-(flags != 0).sum(dim=("tile_y", "tile_x")).to_numpy(), kind="stable")[:n_weeks]
    fig, axes = plt.subplots(2, len(cloudy), figsize=(2.6 * len(cloudy), 5.4), squeeze=False)
    vmax = float(np.nanpercentile(cube.sel(band=list(rgb)).to_numpy(), 99)) or 1.0
    ny, nx = cube.sizes["y"], cube.sizes["x"]
    n_tiles = flags.sizes["tile_y"]
    edges_y = np.linspace(0, ny, n_tiles + 1)
    edges_x = np.linspace(0, nx, n_tiles + 1)
    for k, w in enumerate(cloudy):
        for row, data in enumerate((cube, cleaned)):
            img = data.isel({t: w}).sel(band=list(rgb)).transpose("y", "x", "band").to_numpy()
            ax = axes[row, k]
            ax.imshow(np.clip(np.nan_to_num(img / vmax), 0, 1))
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                label = pd.Timestamp(cube[t].values[w]).date() if t == "week" else cube[t].values[w]
                ax.set_title(str(label), fontsize=8)
                f = flags.isel({t: w}).to_numpy()
                for i in range(n_tiles):
                    for j in range(n_tiles):
                        if f[i, j]:
                            ax.add_patch(
                                plt.Rectangle(
                                    (edges_x[j] - 0.5, edges_y[i] - 0.5),
                                    edges_x[j + 1] - edges_x[j],
                                    edges_y[i + 1] - edges_y[i],
                                    fill=False,
                                    lw=1,
                                    ec="red" if f[i, j] == 1 else "blue",
                                )
                            )
    axes[0, 0].set_ylabel("as acquired")
    axes[1, 0].set_ylabel("tiles replaced")
    fig.tight_layout()
    return fig


def plot_covariates(
    covariates: pd.DataFrame | None,
    *,
    start: str | pd.Timestamp | None = None,
    end: str | pd.Timestamp | None = None,
) -> Figure | None:
    """One panel per covariate variable, one line per location; nothing (None) when there are no
    covariates."""
    import matplotlib.pyplot as plt

    if covariates is None:
        return None
    variables = list(dict.fromkeys(covariates.columns.get_level_values(0)))
    fig, axes = plt.subplots(
        len(variables), 1, figsize=(11, 1.8 * len(variables)), sharex=True, squeeze=False
    )
    units = covariates.attrs.get("units", {})
    for ax, var in zip(axes[:, 0], variables):
        frame = covariates[var].loc[start:end]
        ax.plot(frame.index, frame.to_numpy(), lw=0.8)
        ax.set_ylabel(var, fontsize=8)
        ax.set_title(f"{var} [{units.get(var, '')}]", fontsize=8, loc="left")
    axes[0, 0].legend([str(c) for c in covariates[variables[0]].columns], fontsize=7, ncol=5)
    fig.tight_layout()
    return fig


def plot_fan(
    forecasts: pd.DataFrame,
    model: str,
    *,
    horizon: int = 1,
    names: Mapping | None = None,
    history: pd.DataFrame | None = None,
    ncols: int = 3,
) -> Figure:
    """Fan chart per location: observed counts, the model's median and its 50 % and 90 % central intervals.

    ``forecasts`` is the long frame of :func:`terralab.dengue.rolling_backtest`; one horizon is drawn.
    """
    import matplotlib.pyplot as plt

    sub = forecasts[(forecasts["model"] == model) & (forecasts["horizon"] == horizon)]
    if sub.empty:
        raise ValueError(f"no forecasts of model {model!r} at horizon {horizon}")
    locs = list(dict.fromkeys(sub["location"]))
    names = dict(names or {})
    ncols = min(ncols, len(locs))
    nrows = int(np.ceil(len(locs) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.6 * ncols, 2.9 * nrows), squeeze=False, sharex=True)
    for ax, loc in zip(axes.ravel(), locs):
        s = sub[sub["location"] == loc].sort_values("week")
        ax.fill_between(s["week"], s["q0.05"], s["q0.95"], color="tab:blue", alpha=0.18, lw=0, label="90 %")
        ax.fill_between(s["week"], s["q0.25"], s["q0.75"], color="tab:blue", alpha=0.35, lw=0, label="50 %")
        ax.plot(s["week"], s["q0.5"], color="tab:blue", lw=1.2, label="median")
        ax.plot(s["week"], s["observed"], "k.", ms=2.5, label="observed")
        ax.set_title(f"{names.get(loc, loc)} ({loc})", fontsize=9)
        ax.tick_params(axis="x", labelrotation=45, labelsize=7)
    for ax in axes.ravel()[len(locs) :]:
        ax.axis("off")
    axes[0, 0].set_ylabel("cases / week")
    axes[0, 0].legend(fontsize=7, loc="upper left")
    fig.suptitle(f"{model}: {horizon} week(s) ahead, rolling origins", fontsize=10)
    fig.tight_layout()
    return fig


def plot_coverage(curve: pd.DataFrame, ax: Axes | None = None) -> Figure:
    """Calibration plot: empirical against nominal coverage of the central intervals, one line per model."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(4.8, 4.4))
    ax.plot([0, 1], [0, 1], color="0.6", lw=1, ls="--", label="calibrated")
    for col in curve.columns:
        ax.plot(curve.index, curve[col], marker=".", lw=1.2, label=str(col))
    ax.set_xlabel("nominal coverage of the central interval")
    ax.set_ylabel("share of observations inside")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7)
    ax.set_title("interval coverage (calibration)", fontsize=9)
    return ax.figure


def plot_pit(
    forecasts: pd.DataFrame, models: Sequence[str] | None = None, *, bins: int = 10, seed: int = 0
) -> Figure:
    """PIT histograms (one panel per model); a calibrated forecaster is flat at 1."""
    import matplotlib.pyplot as plt

    from .probabilistic import pit_values

    models = list(models or dict.fromkeys(forecasts["model"]))
    fig, axes = plt.subplots(1, len(models), figsize=(2.6 * len(models), 2.4), squeeze=False, sharey=True)
    for ax, m in zip(axes[0], models):
        pit = pit_values(forecasts[forecasts["model"] == m], seed=seed)
        ax.hist(pit, bins=bins, range=(0, 1), density=True, color="tab:blue", alpha=0.7)
        ax.axhline(1.0, color="k", lw=0.8, ls="--")
        ax.set_title(m, fontsize=9)
        ax.set_xlabel("PIT")
    axes[0, 0].set_ylabel("density")
    fig.tight_layout()
    return fig
