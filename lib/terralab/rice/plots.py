"""Figures of the rice workflow: RGB composites, NDVI, class maps, training curves, confusion matrices.

Each function returns the matplotlib Figure (matplotlib is imported inside).

Example
-------
>>> import matplotlib.pyplot as plt
>>> from terralab import rice
>>> stack, truth = rice.synthetic.scene(height_px=32, width_px=32, seed=0)
>>> fig = maps(stack, {"truth": truth})
>>> [ax.get_title() for ax in fig.axes[:5]]
['RGB before (Mar–May)', 'RGB during (Jul–Sep)', 'NDVI before', 'NDVI during', 'truth']
>>> plt.close(fig)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import xarray as xr

from .features import add_indices

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "CLASS_COLOURS",
    "area",
    "cloud_overlay",
    "confidence",
    "confusion",
    "maps",
    "reliability",
    "rgb",
    "training_curves",
]

#: Colours of the five classes (cropland, rice, forest, urban, water/other).
CLASS_COLOURS = ("#d9b36c", "#4cd94c", "#1f6b2e", "#c0392b", "#2e86de")


def rgb(stack: xr.DataArray, season: str = "before", *, stretch_percent: float = 2.0) -> np.ndarray:
    """True-colour (y, x, 3) composite of one season, percent-stretched; NaN pixels are white."""
    bands = [f"{c}_{season}" for c in ("red", "green", "blue")]
    data = stack.sel(band=bands).values.astype(np.float64)
    lo, hi = np.nanpercentile(data, [stretch_percent, 100 - stretch_percent])
    out = np.clip((data - lo) / max(hi - lo, 1e-9), 0, 1)
    out = np.where(np.isnan(out), 1.0, out)
    return np.moveaxis(out, 0, -1)


def _class_cmap(n: int):
    from matplotlib.colors import BoundaryNorm, ListedColormap

    cmap = ListedColormap(list(CLASS_COLOURS[:n])).with_extremes(bad="white")
    return cmap, BoundaryNorm(np.arange(-0.5, n + 0.5), n)


def maps(
    stack: xr.DataArray,
    class_maps: dict[str, xr.DataArray] | None = None,
    *,
    class_names: Sequence[str] = ("cropland_etc", "rice", "forest", "urban", "others_water_etc"),
    title: str | None = None,
) -> Figure:
    """RGB before, RGB during, NDVI before and during, then each class map (−1 shown white)."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    class_maps = dict(class_maps or {})
    ndvi = add_indices(stack, ["ndvi"]) if "ndvi_before" not in stack["band"].values else stack
    n = 4 + len(class_maps)
    cols = min(n, 4)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 3.4 * rows), squeeze=False)
    axes = axes.ravel()
    axes[0].imshow(rgb(stack, "before"))
    axes[0].set_title("RGB before (Mar–May)")
    axes[1].imshow(rgb(stack, "during"))
    axes[1].set_title("RGB during (Jul–Sep)")
    for ax, season in zip(axes[2:4], ("before", "during")):
        im = ax.imshow(ndvi.sel(band=f"ndvi_{season}").values, cmap="RdYlGn", vmin=-0.2, vmax=0.9)
        ax.set_title(f"NDVI {season}")
    fig.colorbar(im, ax=axes[3], fraction=0.046)
    cmap, norm = _class_cmap(len(class_names))
    for ax, (name, cmap_da) in zip(axes[4:], class_maps.items()):
        values = np.ma.masked_less(cmap_da.transpose("y", "x").values, 0)
        ax.imshow(values, cmap=cmap, norm=norm, interpolation="nearest")
        ax.set_title(name)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axes[n:]:
        ax.set_visible(False)
    if class_maps:
        fig.legend(
            handles=[Patch(color=c, label=l) for c, l in zip(CLASS_COLOURS, class_names)],
            loc="lower center",
            ncol=len(class_names),
            frameon=False,
        )
    if title:
        fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.05 if class_maps else 0, 1, 1))
    return fig


def training_curves(history: pd.DataFrame, *, title: str = "training") -> Figure:
    """Training and validation loss, and validation accuracy, per epoch (one line per ensemble member)."""
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.2))
    groups = history.groupby("member") if "member" in history.columns else [(0, history)]
    for member, h in groups:
        label = f" #{member}" if "member" in history.columns and history["member"].nunique() > 1 else ""
        a.plot(h["epoch"], h["train_loss"], label=f"train{label}")
        a.plot(h["epoch"], h["val_loss"], "--", label=f"validation{label}")
        b.plot(h["epoch"], h["val_accuracy"], label=f"validation{label}")
    a.set_xlabel("epoch")
    a.set_ylabel("cross-entropy")
    a.legend(frameon=False)
    b.set_xlabel("epoch")
    b.set_ylabel("pixel accuracy")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def confusion(scores: pd.DataFrame, *, title: str = "confusion matrix (rows: truth)") -> Figure:
    """Row-normalised confusion matrix with counts, of a :func:`terralab.rice.evaluate.scores` table (or of a
    confusion matrix DataFrame, true classes as rows)."""
    import matplotlib.pyplot as plt

    from .evaluate import score_confusion

    cm = score_confusion(scores) if "confusion" in scores.attrs else scores
    frac = cm.div(cm.sum(axis=1).replace(0, np.nan), axis=0).fillna(0).to_numpy()
    fig, ax = plt.subplots(figsize=(4.8, 4.2))
    ax.imshow(frac, cmap="Blues", vmin=0, vmax=1)
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            ax.text(
                j,
                i,
                f"{cm.iat[i, j]}",
                ha="center",
                va="center",
                color="white" if frac[i, j] > 0.5 else "black",
                fontsize=8,
            )
    ax.set_xticks(range(cm.shape[1]), cm.columns, rotation=40, ha="right")
    ax.set_yticks(range(cm.shape[0]), cm.index)
    ax.set_xlabel("predicted")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def cloud_overlay(
    stack: xr.DataArray,
    class_map: xr.DataArray,
    valid: xr.DataArray,
    *,
    class_names: Sequence[str] = ("cropland_etc", "rice", "forest", "urban", "others_water_etc"),
    season: str = "during",
    title: str | None = None,
) -> Figure:
    """RGB of ``season`` with its masked pixels outlined, and the class map with the pixels predicted without
    that season's optical data hatched (``valid`` from :func:`terralab.rice.clouds.validity`)."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    group = f"optical_{season}"
    masked = (
        ~valid.sel(group=group).values if group in valid["group"].values else np.zeros(class_map.shape, bool)
    )
    fig, (a, b) = plt.subplots(1, 2, figsize=(9.5, 4.4))
    a.imshow(rgb(stack, season))
    a.contour(masked.astype(float), levels=[0.5], colors="magenta", linewidths=0.8)
    a.set_title(f"RGB {season}: cloud/shadow mask ({masked.mean():.0%}) outlined")
    cmap, norm = _class_cmap(len(class_names))
    b.imshow(
        np.ma.masked_less(class_map.transpose("y", "x").values, 0),
        cmap=cmap,
        norm=norm,
        interpolation="nearest",
    )
    b.contourf(masked.astype(float), levels=[0.5, 1.5], colors="none", hatches=["////"])
    b.contour(masked.astype(float), levels=[0.5], colors="black", linewidths=0.5)
    b.set_title(f"class map; hatched: no {season} optical data used")
    for ax in (a, b):
        ax.set_xticks([])
        ax.set_yticks([])
    fig.legend(
        handles=[Patch(color=c, label=l) for c, l in zip(CLASS_COLOURS, class_names)],
        loc="lower center",
        ncol=len(class_names),
        frameon=False,
    )
    if title:
        fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return fig


def confidence(
    prediction: xr.Dataset | xr.DataArray, *, title: str = "probability of the predicted class"
) -> Figure:
    """Map of the calibrated probability of the predicted class (``rice.predict(..., return_proba=True)``)."""
    import matplotlib.pyplot as plt

    conf = prediction["confidence"] if isinstance(prediction, xr.Dataset) else prediction
    fig, ax = plt.subplots(figsize=(5.2, 4.4))
    im = ax.imshow(conf.transpose("y", "x").values, cmap="viridis", vmin=0.2, vmax=1.0)
    fig.colorbar(im, ax=ax, fraction=0.046, label="probability")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title)
    fig.tight_layout()
    return fig


def reliability(calibrations: Mapping[str, pd.DataFrame], *, title: str = "reliability diagram") -> Figure:
    """Accuracy against mean confidence per bin (the diagonal is perfect calibration), one line per
    reliability table of :func:`terralab.rice.evaluate.calibration`; pixel counts per bin below."""
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(2, 1, figsize=(4.8, 5.4), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    a.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--", label="perfectly calibrated")
    for name, cal in calibrations.items():
        t = cal[cal["count"] > 0]
        a.plot(t["mean_confidence"], t["accuracy"], "o-", ms=3, label=f"{name} (ECE {cal.attrs['ece']:.3f})")
        b.bar(
            (t["bin_lower"] + t["bin_upper"]) / 2,
            t["count"],
            width=(t["bin_upper"] - t["bin_lower"]) * 0.9,
            alpha=0.5,
            label=name,
        )
    a.set_ylabel("accuracy")
    a.legend(frameon=False, fontsize=8)
    a.set_title(title)
    b.set_xlabel("probability of the predicted class")
    b.set_ylabel("pixels")
    b.set_yscale("log")
    fig.tight_layout()
    return fig


def area(table: pd.DataFrame, *, truth_ha: dict | None = None, title: str = "area by class") -> Figure:
    """Mapped area beside the error-adjusted area with its 95 % confidence interval
    (:func:`terralab.rice.area_estimate`), and the true area where known."""
    import matplotlib.pyplot as plt

    names = table["class_name"].tolist()
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    ax.bar(x - 0.2, table["mapped_ha"], width=0.4, color="#bbbbbb", label="mapped (pixel count)")
    ax.bar(
        x + 0.2,
        table["adjusted_ha"],
        width=0.4,
        yerr=table["ci95_ha"],
        capsize=3,
        color="#4c72b0",
        label="adjusted ± 95 % CI",
    )
    if truth_ha:
        ax.scatter(
            x + 0.2,
            [truth_ha.get(c, np.nan) for c in table.index],
            color="black",
            marker="_",
            s=300,
            zorder=3,
            label="true (synthetic)",
        )
    ax.set_xticks(x, names, rotation=20, ha="right")
    ax.set_ylabel("ha")
    ax.legend(frameon=False, fontsize=8)
    ax.set_title(title)
    fig.tight_layout()
    return fig
