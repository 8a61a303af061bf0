"""DengueNet's cloud and shadow tiles (Kuo et al. 2024): flag tiles by brightness, replace them by clear
weeks.

The image is cut into a grid of ``n_tiles`` × ``n_tiles`` tiles; a tile is cloud when at least half of its
pixels are brighter than the 70th percentile of the training weeks, shadow when at least half are darker than
the 10th percentile; such a tile is replaced by the average of that tile over the clear training weeks
(:func:`cloud_shadow_tiles`, :func:`replace_cloud_tiles`). Brightness is the mean of B02–B04.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import pandas as pd
import xarray as xr

from ..errors import InvalidInputError
from . import weeks as _weeks

CLEAR, CLOUD, SHADOW = 0, 1, 2


def time_dim(cube: xr.DataArray) -> str:
    for d in ("week", "time"):
        if d in cube.dims:
            return d
    raise InvalidInputError(f"cube needs a 'week' (or 'time') dim, has {cube.dims}")


def check_cube(cube: xr.DataArray) -> str:
    if not isinstance(cube, xr.DataArray):
        raise InvalidInputError(f"expected an xarray DataArray (week, band, y, x), got {type(cube).__name__}")
    t = time_dim(cube)
    if set(cube.dims) != {t, "band", "y", "x"}:
        raise InvalidInputError(f"cube dims must be ({t}, band, y, x), got {cube.dims}")
    return t


def tile_edges(n_pixels: int, n_tiles: int) -> list[tuple[int, int]]:
    """(start, stop) pixel ranges of ``n_tiles`` nearly equal tiles along an axis of ``n_pixels``.

    >>> tile_edges(10, 3)
    [(0, 3), (3, 7), (7, 10)]
    """
    if not 1 <= n_tiles <= n_pixels:
        raise InvalidInputError(f"cannot cut {n_pixels} pixels into {n_tiles} tiles")
    cuts = np.linspace(0, n_pixels, n_tiles + 1).round().astype(int).tolist()
    return list(itertools.pairwise(cuts))


def _train_mask(cube: xr.DataArray, t: str, train) -> np.ndarray:
    n = cube.sizes[t]
    if train is None:
        return np.ones(n, bool)
    if isinstance(train, (str, pd.Timestamp, np.datetime64)) or hasattr(train, "year"):
        end = _weeks.week_end(train) if isinstance(train, str) else pd.Timestamp(train)
        m = pd.DatetimeIndex(cube[t].to_numpy()) <= end
    else:
        m = np.asarray(train, dtype=bool)
        if m.shape != (n,):
            raise InvalidInputError(f"train mask has shape {m.shape}, cube has {n} {t}s")
    if not m.any():
        raise InvalidInputError("no training weeks: the cube has no week at or before the training end")
    return m


def _brightness(cube: xr.DataArray, t: str, reference_bands: Sequence[str]) -> np.ndarray:
    missing = [b for b in reference_bands if b not in cube["band"].to_numpy().tolist()]
    if missing:
        raise InvalidInputError(
            f"cube lacks reference bands {missing}; it has {cube['band'].to_numpy().tolist()}"
        )
    return (
        cube.sel(band=list(reference_bands))
        .transpose(t, "band", "y", "x")
        .to_numpy()
        .astype(float)
        .mean(axis=1)
    )


def cloud_shadow_tiles(
    cube: xr.DataArray,
    train: _weeks.WeekLike | Sequence[bool] | np.ndarray | None = None,
    *,
    n_tiles: int = 16,
    cloud_percentile: float = 70.0,
    shadow_percentile: float = 10.0,
    min_fraction: float = 0.5,
    reference_bands: Sequence[str] = ("B02", "B03", "B04"),
    mask: xr.DataArray | None = None,
) -> xr.DataArray:
    """Classify every tile of every week as clear (0), cloud (1) or shadow (2), DengueNet's rule.

    Parameters
    ----------
    cube : DataArray (week, band, y, x)
    train : last training week (label or date), boolean mask over weeks, or None (all weeks)
        The percentiles come from these weeks only.
    n_tiles : int
        Tiles per side (grid ``n_tiles`` × ``n_tiles``).
    cloud_percentile, shadow_percentile : float
        Brightness percentiles (of all training pixels) above / below which a pixel counts as cloud / shadow.
    min_fraction : float
        Fraction of a tile's pixels that must be cloud (or shadow) for the tile to be replaced.
    mask : DataArray (week, y, x) of bool, optional
        A given cloud mask (e.g. s2cloudless ``CLM``) used instead of the brightness rule: tiles with at least
        ``min_fraction`` masked pixels are cloud.

    Returns
    -------
    DataArray (week, tile_y, tile_x) of int8 classes; ``attrs`` hold the thresholds.
    """
    t = check_cube(cube) if mask is None or "band" in cube.dims else time_dim(cube)
    ny, nx = cube.sizes["y"], cube.sizes["x"]
    ey, ex = tile_edges(ny, n_tiles), tile_edges(nx, n_tiles)
    nt = cube.sizes[t]
    if not 0 < min_fraction <= 1:
        raise InvalidInputError(f"min_fraction must be in (0, 1], got {min_fraction}")
    attrs: dict = {"classes": "0 clear, 1 cloud, 2 shadow", "n_tiles": n_tiles, "min_fraction": min_fraction}
    if mask is not None:
        m = mask.transpose(time_dim(mask), "y", "x").to_numpy().astype(bool)
        if m.shape != (nt, ny, nx):
            raise InvalidInputError(f"mask shape {m.shape} differs from the cube's ({nt}, {ny}, {nx})")
        hi_px, lo_px = m, np.zeros_like(m)
        attrs["rule"] = "given mask"
    else:
        train_m = _train_mask(cube, t, train)
        bright = _brightness(cube, t, reference_bands)
        ref = bright[train_m]
        ref = ref[np.isfinite(ref)]
        if ref.size == 0:
            raise InvalidInputError("training weeks hold no finite pixels")
        hi, lo = np.percentile(ref, cloud_percentile), np.percentile(ref, shadow_percentile)
        with np.errstate(invalid="ignore"):
            hi_px, lo_px = bright > hi, bright < lo
        attrs.update(
            {
                "rule": f"brightness > p{cloud_percentile:g} (cloud) / < p{shadow_percentile:g} (shadow)",
                "cloud_threshold": float(hi),
                "shadow_threshold": float(lo),
                "reference_bands": list(reference_bands),
            }
        )
    flags = np.zeros((nt, n_tiles, n_tiles), dtype=np.int8)
    for i, (y0, y1) in enumerate(ey):
        for j, (x0, x1) in enumerate(ex):
            cloud_frac = hi_px[:, y0:y1, x0:x1].mean(axis=(1, 2))
            shadow_frac = lo_px[:, y0:y1, x0:x1].mean(axis=(1, 2))
            flags[:, i, j] = np.where(
                cloud_frac >= min_fraction, CLOUD, np.where(shadow_frac >= min_fraction, SHADOW, CLEAR)
            )
    return xr.DataArray(
        flags,
        dims=(t, "tile_y", "tile_x"),
        coords={t: cube[t].to_numpy(), "tile_y": np.arange(n_tiles), "tile_x": np.arange(n_tiles)},
        attrs=attrs,
    )


def replace_cloud_tiles(
    cube: xr.DataArray,
    flags: xr.DataArray,
    train: _weeks.WeekLike | Sequence[bool] | np.ndarray | None = None,
) -> xr.DataArray:
    """Replace every cloud or shadow tile by that tile's average over the clear training weeks.

    Where a tile is never clear in the training weeks, its average over all training weeks is used. NaN pixels
    (weeks without an image) are treated like clouds: the whole week is replaced.

    Parameters
    ----------
    cube : DataArray (week, band, y, x) or (week, y, x)
    flags : DataArray (week, tile_y, tile_x) from :func:`cloud_shadow_tiles`
    train : as in :func:`cloud_shadow_tiles`
    """
    t = time_dim(cube)
    if "band" not in cube.dims:
        return replace_cloud_tiles(cube.expand_dims(band=["_"], axis=1), flags, train).isel(band=0, drop=True)
    check_cube(cube)
    order = (t, "band", "y", "x")
    data = cube.transpose(*order).to_numpy().astype(np.float32).copy()
    f = flags.to_numpy()
    n_tiles = f.shape[1]
    if f.shape[0] != data.shape[0] or f.shape[1] != f.shape[2]:
        raise InvalidInputError(f"flags shape {f.shape} does not match the cube's {data.shape[0]} {t}s")
    train_m = _train_mask(cube, t, train)
    empty_week = ~np.isfinite(data).all(axis=(1, 2, 3))
    ey, ex = tile_edges(data.shape[2], n_tiles), tile_edges(data.shape[3], n_tiles)
    replaced = 0
    for i, (y0, y1) in enumerate(ey):
        for j, (x0, x1) in enumerate(ex):
            tile = data[:, :, y0:y1, x0:x1]
            finite = np.isfinite(tile).all(axis=(1, 2, 3))
            bad = (f[:, i, j] != CLEAR) | ~finite
            good_train = train_m & ~bad
            pool = good_train if good_train.any() else train_m & finite
            if not pool.any():
                continue
            mean_tile = tile[pool].mean(axis=0)
            tile[bad] = mean_tile
            replaced += int(bad.sum())
    out = xr.DataArray(
        data,
        dims=order,
        coords={k: v for k, v in cube.coords.items()},
        attrs=dict(cube.attrs, cloud_tiles_replaced=replaced, empty_weeks=int(empty_week.sum())),
    )
    return out.transpose(*cube.dims)
