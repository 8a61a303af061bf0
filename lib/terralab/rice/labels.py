"""Labels and splits: weak labels from a land-cover raster, stratified point samples, random and spatially
blocked train/validation/test splits, class weights.

ACES split 12,157 points at random 70/20/10; with patches that overlap, or points a few pixels apart, the same
field lands in training and test and the scores flatter the model (the paper's validation F1 0.85 fell to
0.59–0.66 on independent points). :func:`split` with ``kind="blocked"`` assigns whole square blocks to one
split, so no block — and, with ``gap_px``, no neighbourhood — is shared between training and test.

Example
-------
>>> from terralab.rice import labels, synthetic
>>> stack, truth = synthetic.scene(height_px=96, width_px=96)
>>> parts = labels.split(truth, kind="blocked", block_size_px=32, seed=0)
>>> sorted(parts)
['test', 'train', 'val']
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import xarray as xr

from ..errors import InvalidInputError

__all__ = [
    "ACES_CLASSES",
    "NODATA",
    "align_labels",
    "block_ids",
    "check_labels",
    "class_weights",
    "remap_classes",
    "sample_points",
    "split",
    "split_points",
    "weak_labels",
]

#: The five classes of the ACES Paro points, by id.
ACES_CLASSES = {0: "cropland_etc", 1: "rice", 2: "forest", 3: "urban", 4: "others_water_etc"}
#: Label value of unlabelled pixels.
NODATA = -1


def check_labels(labels: xr.DataArray, name: str = "labels") -> xr.DataArray:
    """Check a (y, x) integer label raster (−1 = unlabelled); return it as int16 with dims (y, x)."""
    if not isinstance(labels, xr.DataArray):
        raise InvalidInputError(
            f"{name} must be an xr.DataArray (y, x) of class ids, got {type(labels).__name__}"
        )
    if set(labels.dims) != {"y", "x"}:
        raise InvalidInputError(f"{name} must have dims (y, x), got {labels.dims}")
    values = labels.values
    if values.dtype.kind == "f":
        if np.isnan(values).any():
            values = np.where(np.isnan(values), NODATA, values)
        if not np.all(values == np.round(values)):
            raise InvalidInputError(
                f"{name} holds non-integer values: give class ids (int), −1 where unlabelled"
            )
    out = labels.copy(data=values.astype(np.int16)).transpose("y", "x")
    if (out.values < NODATA).any():
        raise InvalidInputError(
            f"{name} holds negative ids other than −1 (unlabelled): {np.unique(out.values[out.values < -1])}"
        )
    return out


def align_labels(labels: xr.DataArray, stack: xr.DataArray, *, reproject: bool = False) -> xr.DataArray:
    """Make sure ``labels`` lie on the grid of ``stack``; reproject (nearest) only when asked.

    Raises
    ------
    InvalidInputError
        CRS or grid differ and ``reproject`` is False; the message says how to fix it.
    """
    import rioxarray  # noqa: F401
    from rasterio.enums import Resampling

    labels = check_labels(labels)
    crs_s, crs_l = stack.rio.crs, labels.rio.crs
    same_crs = crs_s is None or crs_l is None or crs_s == crs_l
    same_grid = (
        labels.sizes["y"] == stack.sizes["y"]
        and labels.sizes["x"] == stack.sizes["x"]
        and np.allclose(labels["x"].values, stack["x"].values, rtol=0, atol=1e-6 * _pixel(stack, "x"))
        and np.allclose(labels["y"].values, stack["y"].values, rtol=0, atol=1e-6 * _pixel(stack, "y"))
    )
    if same_crs and same_grid:
        return labels.assign_coords(x=stack["x"].values, y=stack["y"].values)
    if not reproject:
        what = (
            f"CRS {crs_l} vs {crs_s}"
            if not same_crs
            else (
                f"grid {labels.sizes['y']}×{labels.sizes['x']} at x0={float(labels['x'][0]):.6g}, "
                f"y0={float(labels['y'][0]):.6g}"
                f" vs {stack.sizes['y']}×{stack.sizes['x']} at x0={float(stack['x'][0]):.6g}, "
                f"y0={float(stack['y'][0]):.6g}"
            )
        )
        raise InvalidInputError(
            f"labels and stack are not on the same grid ({what}); pass reproject=True to resample the labels "
            "(nearest neighbour) onto the stack's grid, or reproject them yourself with rioxarray's "
            "reproject_match"
        )
    if crs_l is None or crs_s is None:
        raise InvalidInputError("cannot reproject labels: both labels and stack need a CRS (rio.write_crs)")
    src = labels.astype(np.int16).rio.write_nodata(NODATA)
    out = src.rio.reproject_match(stack, resampling=Resampling.nearest)
    out = out.assign_coords(x=stack["x"].values, y=stack["y"].values)
    return check_labels(out)


def _pixel(da: xr.DataArray, dim: str) -> float:
    coord = da[dim].values
    return float(abs(coord[1] - coord[0])) if coord.size > 1 else 1.0


def remap_classes(
    landcover: xr.DataArray,
    table: Mapping[int, int] | pd.DataFrame | pd.Series,
    *,
    nodata: int | None = None,
    unknown: str = "raise",
) -> xr.DataArray:
    """Weak labels: map the codes of a land-cover raster to class ids through a table.

    Parameters
    ----------
    landcover
        (y, x) raster of land-cover codes.
    table
        ``{code: class id}``; or a DataFrame with columns ``code`` and ``class``; or a Series indexed by code.
        A class id of −1 drops the code (unlabelled).
    nodata
        Code of the land-cover raster's nodata (becomes −1). NaN always becomes −1.
    unknown
        ``"raise"`` (default): codes missing from the table are an error; ``"drop"``: they become −1.

    Raises
    ------
    InvalidInputError
        Codes outside the table (listing them), when ``unknown="raise"``.
    """
    if isinstance(table, pd.DataFrame):
        if not {"code", "class"} <= set(table.columns):
            raise InvalidInputError("a remapping DataFrame needs columns 'code' and 'class'")
        mapping = dict(zip(table["code"].astype(int), table["class"].astype(int)))
    elif isinstance(table, pd.Series):
        mapping = {int(k): int(v) for k, v in table.items()}
    else:
        mapping = {int(k): int(v) for k, v in dict(table).items()}
    if unknown not in ("raise", "drop"):
        raise InvalidInputError("unknown must be 'raise' or 'drop'")
    values = landcover.values
    valid = ~np.isnan(values) if values.dtype.kind == "f" else np.ones(values.shape, bool)
    if nodata is not None:
        valid &= values != nodata
    codes = values[valid].astype(np.int64)
    present = np.unique(codes)
    missing = [int(c) for c in present if int(c) not in mapping]
    if missing and unknown == "raise":
        raise InvalidInputError(
            f"land-cover codes {missing} are not in the remapping table (it covers {sorted(mapping)}); add "
            "them (map to −1 to drop), or pass unknown='drop'"
        )
    out = np.full(values.shape, NODATA, dtype=np.int16)
    lut_keys = np.array(sorted(mapping), dtype=np.int64)
    lut_vals = np.array([mapping[k] for k in lut_keys], dtype=np.int16)
    pos = np.searchsorted(lut_keys, codes)
    pos = np.clip(pos, 0, len(lut_keys) - 1)
    hit = lut_keys[pos] == codes
    mapped = np.where(hit, lut_vals[pos], NODATA)
    out[valid] = mapped
    result = landcover.copy(data=out)
    result.name = "class"
    result.attrs = {
        "long_name": "weak labels",
        "units": "1",
        "remapping": {int(k): int(v) for k, v in mapping.items()},
    }
    return result


def weak_labels(
    landcover: xr.DataArray,
    table: Mapping[int, int] | pd.DataFrame | pd.Series,
    *,
    stack: xr.DataArray | None = None,
    rice_class: int = 1,
    min_ndvi_gain: float | None = 0.15,
    nodata: int | None = None,
    unknown: str = "raise",
) -> xr.DataArray:
    """Weak labels from land cover, optionally cleaned with the rice phenology rule.

    After :func:`remap_classes`, when ``stack`` is given and ``min_ndvi_gain`` is not None, pixels labelled
    rice whose NDVI does not rise by at least ``min_ndvi_gain`` from before to during the season (bare/flooded
    → canopy) are set to −1: a coarse regional product marks whole paddy areas, not every pixel in them is
    rice.
    """
    out = remap_classes(landcover, table, nodata=nodata, unknown=unknown)
    if stack is not None and min_ndvi_gain is not None:
        from .features import select_bands

        out = align_labels(out, stack)
        ndvi = select_bands(stack, ["ndvi_before", "ndvi_during"]).values
        gain = ndvi[1] - ndvi[0]
        drop = (out.values == rice_class) & ~(gain >= min_ndvi_gain)
        out = out.copy(data=np.where(drop, NODATA, out.values).astype(np.int16))
        out.attrs["rice_rule"] = f"NDVI during − before ≥ {min_ndvi_gain}"
    return out


def sample_points(
    stack: xr.DataArray,
    labels: xr.DataArray,
    n_per_class: int | Mapping[int, int],
    *,
    seed: int = 0,
    mask: xr.DataArray | None = None,
) -> pd.DataFrame:
    """Stratified random sample of labelled pixels: ``n_per_class`` per class (fewer if a class is smaller).

    Pixels with NaN in any band are skipped. Returns one row per point with every band, ``class``, the pixel
    ``row``/``col`` and coordinates ``x``/``y`` (CRS units, in ``attrs["crs"]``).
    """
    from .features import check_stack

    stack = check_stack(stack)
    labels = align_labels(labels, stack)
    lab = labels.values.astype(np.int64)
    valid = (lab >= 0) & ~np.isnan(stack.values).any(axis=0)
    if mask is not None:
        valid &= np.asarray(mask.values, dtype=bool)
    rng = np.random.default_rng(seed)
    classes = np.unique(lab[valid])
    wanted = (
        dict(n_per_class) if isinstance(n_per_class, Mapping) else {int(c): int(n_per_class) for c in classes}
    )
    picks = []
    for c in classes:
        idx = np.flatnonzero(valid.ravel() & (lab.ravel() == c))
        n = min(int(wanted.get(int(c), 0)), idx.size)
        if n:
            picks.append(rng.choice(idx, n, replace=False))
    if not picks:
        raise InvalidInputError(
            "no labelled, valid pixel to sample: check the labels (−1 = unlabelled) and NaNs"
        )
    flat = np.sort(np.concatenate(picks))
    rows, cols = np.unravel_index(flat, lab.shape)
    values = stack.values.reshape(stack.sizes["band"], -1)[:, flat].T
    frame = pd.DataFrame(values, columns=[str(b) for b in stack["band"].values])
    frame["class"] = lab.ravel()[flat]
    frame["row"], frame["col"] = rows, cols
    frame["x"], frame["y"] = stack["x"].values[cols], stack["y"].values[rows]
    frame.attrs["crs"] = str(stack.rio.crs) if stack.rio.crs else None
    return frame


def block_ids(shape: tuple[int, int], block_size_px: int) -> np.ndarray:
    """Id of the square block (``block_size_px`` side) each pixel of a (rows, cols) grid falls in."""
    if block_size_px < 1:
        raise InvalidInputError("block_size_px must be ≥ 1")
    rows, cols = shape
    n_bc = -(-cols // block_size_px)
    r = np.arange(rows)[:, None] // block_size_px
    c = np.arange(cols)[None, :] // block_size_px
    return (r * n_bc + c).astype(np.int64)


_NAMES = ("train", "val", "test")


def _fractions(fractions: Sequence[float]) -> np.ndarray:
    f = np.asarray(fractions, dtype=float)
    if f.shape != (3,) or (f < 0).any() or f.sum() <= 0:
        raise InvalidInputError("fractions must be three non-negative numbers (train, val, test)")
    return f / f.sum()


def _assign_units(
    n_units: int, fractions: np.ndarray, rng: np.random.Generator, weights: np.ndarray | None = None
) -> np.ndarray:
    """Assign ``n_units`` units to splits 0/1/2 at random, filling each split to its share of the weight."""
    order = rng.permutation(n_units)
    weights = np.ones(n_units) if weights is None else np.asarray(weights, dtype=float)
    total = weights.sum()
    bounds = np.cumsum(fractions) * total
    cum = np.cumsum(weights[order]) - weights[order] / 2  # a unit goes where its midpoint falls
    part = np.searchsorted(bounds, cum, side="right").clip(0, 2)
    out = np.empty(n_units, dtype=np.int64)
    out[order] = part
    return out


def split(
    labels: xr.DataArray,
    *,
    kind: str = "blocked",
    fractions: Sequence[float] = (0.7, 0.2, 0.1),
    block_size_px: int = 64,
    gap_px: int = 0,
    axis: str = "y",
    seed: int = 0,
) -> dict[str, xr.DataArray]:
    """Split a label raster into train / val / test label rasters (−1 outside each split).

    Parameters
    ----------
    labels
        (y, x) class ids, −1 unlabelled.
    kind
        ``"random"`` (pixel by pixel, as ACES), ``"blocked"`` (whole ``block_size_px`` squares per split,
        no block shared) or ``"half"`` (first half along ``axis`` for training, the second half split into
        val and test by ``fractions``, i.e. train on one half and score on the other).
    fractions
        Train, val, test shares (of labelled pixels for random, of blocks for blocked).
    block_size_px
        Side of a block in pixels (blocked).
    gap_px
        Unlabel this many pixels on each side of every boundary between different splits (blocked/half), so
        that a patch model's receptive field straddling a boundary sees fewer pixels of the other split.
    axis
        ``"y"`` or ``"x"`` (half).
    seed
        Random seed.

    Returns
    -------
    dict
        ``{"train": DataArray, "val": DataArray, "test": DataArray}``, each on the labels' grid with the
        labels of its own pixels and −1 elsewhere.
    """
    labels = check_labels(labels)
    lab = labels.values
    f = _fractions(fractions)
    rng = np.random.default_rng(seed)
    shape = lab.shape
    if kind == "random":
        part = np.full(shape, -1, dtype=np.int64)
        idx = np.flatnonzero(lab.ravel() >= 0)
        part.ravel()[idx] = _assign_units(idx.size, f, rng)
    elif kind == "blocked":
        part = _blocked_parts(lab, f, rng, block_size_px)
    elif kind == "half":
        part = _half_parts(shape, f, axis)
    else:
        raise InvalidInputError(f"unknown split kind {kind!r}: use 'random', 'blocked' or 'half'")
    if gap_px > 0 and kind != "random":
        part = _unlabel_borders(part, gap_px)
    out = {}
    for i, name in enumerate(_NAMES):
        da = labels.copy(data=np.where((part == i) & (lab >= 0), lab, -1).astype(np.int16))
        da.attrs = dict(labels.attrs, split=name, split_kind=kind)
        out[name] = da
    for name in _NAMES:
        if not (out[name].values >= 0).any() and f[_NAMES.index(name)] > 0:
            raise InvalidInputError(
                f"the {name} split holds no labelled pixel ({kind} split): use more labels, a smaller "
                "block_size_px, or other fractions"
            )
    return out


def _blocked_parts(
    lab: np.ndarray, f: np.ndarray, rng: np.random.Generator, block_size_px: int
) -> np.ndarray:
    """Split id (0/1/2) per pixel, whole ``block_size_px`` blocks at a time, weighted by their labels."""
    blocks = block_ids(lab.shape, block_size_px)
    n_blocks = int(blocks.max()) + 1
    labelled = np.bincount(blocks.ravel(), weights=(lab.ravel() >= 0), minlength=n_blocks)
    if (labelled > 0).sum() < 3:
        raise InvalidInputError(
            f"only {(labelled > 0).sum()} block(s) of {block_size_px} px hold labels: use a smaller "
            "block_size_px so each split gets at least one block"
        )
    assign = _assign_units(n_blocks, f, rng, weights=labelled)
    return assign[blocks]


def _half_parts(shape: tuple[int, int], f: np.ndarray, axis: str) -> np.ndarray:
    """Split id per pixel: the first half along ``axis`` trains, the second is cut into val and test."""
    if axis not in ("x", "y"):
        raise InvalidInputError("axis must be 'x' or 'y'")
    ax = 0 if axis == "y" else 1
    n = shape[ax]
    pos = np.arange(n)
    first = pos < n // 2
    rest = f[1:] / f[1:].sum() if f[1:].sum() > 0 else np.array([0.0, 1.0])
    second = np.where(pos < n // 2 + round(rest[0] * (n - n // 2)), 1, 2)
    line = np.where(first, 0, second)
    return np.broadcast_to(line[:, None] if ax == 0 else line[None, :], shape).copy()


def _unlabel_borders(part: np.ndarray, gap_px: int) -> np.ndarray:
    """−1 within ``gap_px`` of every boundary between different splits."""
    from scipy.ndimage import maximum_filter, minimum_filter

    size = 2 * gap_px + 1
    border = maximum_filter(part, size=size, mode="nearest") != minimum_filter(
        part, size=size, mode="nearest"
    )
    return np.where(border, -1, part)


def split_points(
    points: pd.DataFrame,
    *,
    kind: str = "random",
    fractions: Sequence[float] = (0.7, 0.2, 0.1),
    block_size: float | None = None,
    seed: int = 0,
) -> pd.Series:
    """Assign labelled points to ``"train"``/``"val"``/``"test"``, at random or by spatial block.

    Blocked splits need ``x`` and ``y`` columns and ``block_size`` in their units (e.g. metres): all points in
    the same square block go to the same split.
    """
    f = _fractions(fractions)
    rng = np.random.default_rng(seed)
    if kind == "random":
        assign = _assign_units(len(points), f, rng)
    elif kind == "blocked":
        if not {"x", "y"} <= set(points.columns) or block_size is None:
            raise InvalidInputError(
                "a blocked point split needs 'x' and 'y' columns and block_size (CRS units)"
            )
        bx = np.floor(points["x"].to_numpy() / block_size).astype(np.int64)
        by = np.floor(points["y"].to_numpy() / block_size).astype(np.int64)
        keys, inverse, counts = np.unique(
            np.column_stack([bx, by]), axis=0, return_inverse=True, return_counts=True
        )
        assign = _assign_units(len(keys), f, rng, weights=counts)[inverse.ravel()]
    else:
        raise InvalidInputError(f"unknown split kind {kind!r}: use 'random' or 'blocked'")
    return pd.Series(np.asarray(_NAMES)[assign], index=points.index, name="split")


def class_weights(
    labels: xr.DataArray | pd.Series | np.ndarray, n_classes: int | None = None, *, method: str = "balanced"
) -> pd.Series:
    """Class weights for a weighted loss: ``"balanced"`` = n / (k · count_c) (sklearn's), or ``"none"``.

    Classes absent from the labels get weight 0 (they cannot be learnt from these labels).
    """
    values = labels.values if hasattr(labels, "values") else np.asarray(labels)
    values = np.asarray(values).ravel()
    values = values[values >= 0].astype(np.int64)
    if values.size == 0:
        raise InvalidInputError(
            "no labelled sample: cannot compute class weights (the training split is empty)"
        )
    k = int(n_classes) if n_classes is not None else int(values.max()) + 1
    counts = np.bincount(values, minlength=k)[:k].astype(float)
    if method == "none":
        w = (counts > 0).astype(float)
    elif method == "balanced":
        present = counts > 0
        w = np.zeros(k)
        w[present] = values.size / (present.sum() * counts[present])
    else:
        raise InvalidInputError("method must be 'balanced' or 'none'")
    return pd.Series(w, index=pd.RangeIndex(k, name="class"), name="weight")
