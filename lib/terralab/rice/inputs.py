"""What a rice model reads: band selection and spectral indices, cloud masking and the masked normalisation,
the network inputs of a raw block, and the checks that name a stack or label problem before any training.

The network input of a raw ``(band, h, w)`` block (:func:`model_inputs`) is the same at training and at
inference: standardised bands, set to the band mean where their optical season is cloudy, shadowed or nodata,
then one 0/1 ``valid_<group>`` channel per masked season.

Example
-------
Points give their band columns; spectral indices are computed from the RGBN columns:

>>> import pandas as pd
>>> points = pd.DataFrame(
...     {"red_before": [0.1, 0.2], "green_before": [0.1, 0.1], "blue_before": [0.1, 0.1],
...      "nir_before": [0.5, 0.2]}
... )
>>> point_bands(points.assign(**{"class": [1, 0]}), None)
['red_before', 'green_before', 'blue_before', 'nir_before']
>>> X = point_matrix(points, ["nir_before", "ndvi_before"])
>>> X.shape, X.dtype, round(float(X[0, 1]), 3)  # NDVI = (0.5 − 0.1) / (0.5 + 0.1)
((2, 2), dtype('float32'), 0.667)
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import xarray as xr

from ..errors import InvalidInputError
from .clouds import CloudTest, band_group, is_optical, validity_array
from .features import INDICES, Normalisation, band_names, fit_normalisation, index_values
from .labels import ACES_CLASSES

__all__ = [
    "POINT_META_COLUMNS",
    "count_classes",
    "fit_masked_normalisation",
    "group_validity",
    "masking_config",
    "model_inputs",
    "pad_to",
    "point_bands",
    "point_matrix",
    "refuse_all_cloudy",
    "refuse_empty_bands",
    "resolve_class_names",
    "select_features",
    "warn_single_class",
]

#: Columns of a points table that are never features.
POINT_META_COLUMNS = ("class", "class_name", "split", "row", "col", "x", "y", "lon", "lat", "geometry", "id")

#: Validity per masked group, as :func:`terralab.rice.clouds.validity_array` returns it:
#: (group names, bool (group, y, x) array).
GroupValidity = tuple[Sequence[str], np.ndarray]


def resolve_class_names(
    n_classes: int, given: Sequence[str] | dict | None, attrs_names: Sequence[str] | None = None
) -> list[str]:
    """Names of class ids 0…n_classes−1: as given, else the labels' attrs, else ACES's, else ``class_<k>``."""
    if given is not None:
        names = [given[k] for k in sorted(given)] if isinstance(given, dict) else list(given)
    elif attrs_names is not None:
        names = list(attrs_names)
    elif n_classes <= len(ACES_CLASSES):
        names = [ACES_CLASSES[k] for k in range(n_classes)]
    else:
        names = [f"class_{k}" for k in range(n_classes)]
    if len(names) < n_classes:
        raise InvalidInputError(f"{len(names)} class names for {n_classes} classes (ids 0…{n_classes - 1})")
    return [str(n) for n in names]


def count_classes(*ys: np.ndarray | None) -> int:
    """One more than the largest class id in any of the label arrays (None ones are skipped)."""
    top = max(int(np.max(y)) for y in ys if y is not None and np.size(y))
    return top + 1


def point_bands(points: pd.DataFrame, bands: str | Sequence[str] | None) -> list[str]:
    """The band names a points model reads: ``bands`` resolved, else every numeric non-meta column."""
    if bands is None:
        names = [
            c
            for c in points.columns
            if c not in POINT_META_COLUMNS and pd.api.types.is_numeric_dtype(points[c])
        ]
    else:
        names = band_names(bands)
    return names


def point_matrix(points: pd.DataFrame, names: Sequence[str]) -> np.ndarray:
    """(n, bands) float32 values of ``names`` at the points, computing spectral indices from RGBN columns."""
    missing = [n for n in names if n not in points.columns and n.split("_")[0] not in INDICES]
    if missing:
        raise InvalidInputError(
            f"the points lack columns {missing}; they hold {list(points.columns)}. Choose a band set they "
            "have"
        )
    cols = []
    for name in names:
        if name in points.columns:
            cols.append(points[name].to_numpy(dtype=np.float32))
            continue
        index, season = name.split("_", 1)
        need = {b: f"{b}_{season}" for b in ("red", "green", "blue", "nir")}
        lacking = [v for v in need.values() if v not in points.columns]
        if lacking:
            raise InvalidInputError(f"cannot compute {name}: the points lack {lacking}")
        v = index_values(index, *(points[c].to_numpy(dtype=np.float64) for c in need.values()))
        cols.append(np.where(np.isfinite(v), v, np.nan).astype(np.float32))
    return np.column_stack(cols) if cols else np.zeros((len(points), 0), np.float32)


def refuse_empty_bands(chosen: xr.DataArray) -> None:
    """An all-NaN band is a stack problem, not a label problem: name it."""
    values = chosen.values
    empty = [str(b) for b, v in zip(chosen["band"].values, values) if not np.isfinite(v).any()]
    if empty:
        raise InvalidInputError(
            f"band(s) {empty} hold no value (NaN everywhere): fix the stack, or leave them out with "
            "bands=[...] (or a smaller band set)"
        )


def warn_single_class(lab: np.ndarray) -> None:
    """Warn when the labels (−1 = none) hold a single class: the model could only ever predict it."""
    present = np.unique(lab[lab >= 0])
    if present.size == 1:
        warnings.warn(
            f"the training labels hold a single class ({int(present[0])}): the model can only ever predict "
            "it. Label pixels of the other classes too",
            UserWarning,
            stacklevel=3,
        )


def masking_config(
    names: Sequence[str], available: Sequence[str], *, enabled: bool, test: CloudTest
) -> dict | None:
    """The masking config a model records: the optical groups of ``names`` it masks, or None (no masking)."""
    groups = [g for g in dict.fromkeys(band_group(b) for b in names) if is_optical(g)]
    if not enabled or not groups:
        return None
    return {"groups": groups, "test": test.to_dict(), "detect": True}


def select_features(names: Sequence[str], raw: np.ndarray, band_list: Sequence[str]) -> np.ndarray:
    """The model's bands (in order) from a raw (band, …) block, computing spectral indices it needs."""
    index = {str(b): i for i, b in enumerate(band_list)}
    if all(n in index for n in names):
        if [index[n] for n in names] == list(range(len(names))) and len(names) == raw.shape[0]:
            return raw.astype(np.float32, copy=False)
        return raw[[index[n] for n in names]].astype(np.float32, copy=False)
    out = np.empty((len(names), *raw.shape[1:]), np.float32)
    for j, n in enumerate(names):
        if n in index:
            out[j] = raw[index[n]]
            continue
        idx, season = n.split("_", 1)
        need = [f"{b}_{season}" for b in ("red", "green", "blue", "nir")]
        missing = [b for b in need if b not in index]
        if idx not in INDICES or missing:
            raise InvalidInputError(f"cannot make band {n!r}: the data lacks {missing or [n]}")
        v = index_values(idx, *(raw[index[b]].astype(np.float64) for b in need))
        out[j] = np.where(np.isfinite(v), v, np.nan)
    return out


def group_validity(masking: dict, valid: GroupValidity, shape: tuple[int, ...]) -> np.ndarray:
    """(masked group, …) validity from validity_array's (groups, valid); a group the data lacks is invalid."""
    groups, v = valid
    where = {g: i for i, g in enumerate(groups)}
    return np.stack([v[where[g]] if g in where else np.zeros(shape, bool) for g in masking["groups"]])


def fit_masked_normalisation(
    names: Sequence[str], feats: np.ndarray, masking: dict | None, valid: GroupValidity | None
) -> Normalisation:
    """Per-band mean/std over the pixels where the band is valid (clouds would shift optical statistics)."""
    if masking is None:
        return fit_normalisation(xr.DataArray(feats, dims=("band", "y", "x"), coords={"band": list(names)}))
    gvalid = group_validity(masking, valid, feats.shape[1:])
    clean = feats.copy()
    for j, n in enumerate(names):
        g = band_group(n)
        if g in masking["groups"]:
            clean[j][~gvalid[masking["groups"].index(g)]] = np.nan
    empty = [n for n, v in zip(names, clean) if not np.isfinite(v).any()]
    if empty:
        raise InvalidInputError(
            f"band(s) {empty} are cloudy, shadowed or nodata at every pixel (all pixels cloudy): nothing to "
            "learn them from. Leave that season out (bands=[...]) or pass a clearer image"
        )
    return fit_normalisation(xr.DataArray(clean, dims=("band", "y", "x"), coords={"band": list(names)}))


def refuse_all_cloudy(masking: dict | None, valid: GroupValidity | None, labelled: np.ndarray) -> None:
    """Refuse labels whose pixels are all cloudy in one masked group: nothing to learn those bands from."""
    if masking is None or not labelled.any():  # no label at all is reported as an empty training split
        return
    gvalid = group_validity(masking, valid, labelled.shape)
    for g, v in zip(masking["groups"], gvalid):
        if not (v & labelled).any():
            raise InvalidInputError(
                f"every labelled pixel is cloudy, shadowed or nodata in {g} (all pixels cloudy): the model "
                "cannot "
                f"learn what those bands mean. Leave the {g.split('_', 1)[1]} season out (bands=[...]), "
                "label clear pixels too, or pass mask_clouds=False if the mask is wrong"
            )


def model_inputs(
    names: Sequence[str],
    norm: Normalisation,
    masking: dict | None,
    raw: np.ndarray,
    band_list: Sequence[str],
    *,
    cloud_mask: Mapping[str, np.ndarray] | None = None,
    valid: GroupValidity | None = None,
    feats: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Network input of a raw (band, h, w) block: ``(x (inputs, h, w), nodata (h, w), quality (h, w) int8)``.

    Bands of a masked group are standardised and set to 0 (the band mean) where the group is invalid, and one
    0/1 channel per masked group says where it is valid. A pixel is nodata when a band outside the masked
    groups is NaN, or when no optical group and no radar band is valid. Quality: 0 every optical season valid,
    1 some masked, 2 none (predicted from radar / terrain only), −1 nodata.
    """
    if feats is None:
        feats = select_features(names, raw, band_list)
    shape = feats.shape[1:]
    if masking is None:
        nodata = np.isnan(feats).any(axis=0)
        x = np.nan_to_num(norm.apply(feats), nan=0.0)
        return x, nodata, np.where(nodata, -1, 0).astype(np.int8)
    if valid is None:
        valid = validity_array(
            raw,
            band_list,
            test=CloudTest.from_dict(masking["test"]),
            cloud_mask=cloud_mask,
            detect=masking["detect"],
        )
    groups = masking["groups"]
    gvalid = group_validity(masking, valid, shape)
    z = norm.apply(feats)
    in_group = np.array([band_group(n) in groups for n in names])
    for j, n in enumerate(names):
        if in_group[j]:
            z[j][~gvalid[groups.index(band_group(n))]] = 0.0
    other = np.flatnonzero(~in_group)
    nodata = np.isnan(feats[other]).any(axis=0) if other.size else np.zeros(shape, bool)
    observed = gvalid.any(axis=0)
    radar = [j for j in other if band_group(names[j]).startswith("radar_")]
    if radar:
        observed |= np.isfinite(feats[radar]).all(axis=0)
    nodata |= ~observed
    n_valid = gvalid.sum(axis=0)
    quality = np.where(nodata, -1, np.where(n_valid == len(groups), 0, np.where(n_valid == 0, 2, 1))).astype(
        np.int8
    )
    x = np.concatenate([np.nan_to_num(z, nan=0.0), gvalid.astype(np.float32)])
    return x.astype(np.float32, copy=False), nodata, quality


def pad_to(arr: np.ndarray, h: int, w: int, value: float) -> np.ndarray:
    """``arr`` padded at the bottom and right with ``value`` to at least ``h`` × ``w`` (last two dims)."""
    ph, pw = h - arr.shape[-2], w - arr.shape[-1]
    if ph <= 0 and pw <= 0:
        return arr
    pad = [(0, 0)] * (arr.ndim - 2) + [(0, max(ph, 0)), (0, max(pw, 0))]
    return np.pad(arr, pad, constant_values=value)
