"""Feature stacks for rice mapping: band sets, spectral indices, per-band normalisation, GeoTIFF I/O.

A *stack* is an ``xr.DataArray (band, y, x)`` whose ``band`` coordinate holds feature names following
ACES (SERVIR's rice-mapping code): ``red_before, green_before, blue_before, nir_before`` (NICFI median of
the season before planting, Mar–May), the same four ``*_during`` (Jul–Sep), ``elevation`` (m) and
``slope`` (degrees), and Sentinel-1 backscatter (dB) ``vv_asc_before, vh_asc_before, vv_asc_during,
vh_asc_during, vv_desc_before, vh_desc_before, vv_desc_during, vh_desc_during``. The CRS and transform
travel with the stack through rioxarray.

Band sets are named as in the paper: ``RGBN`` (8 bands), ``RGBNE`` (10), ``RGBNS`` (16), ``RGBNES`` (18).
Spectral indices can be appended with ``+``: ``"RGBN+NDVI"`` adds ``ndvi_before`` and ``ndvi_during``.

Example
-------
>>> from terralab.rice import features, synthetic
>>> stack, truth = synthetic.scene(height_px=64, width_px=64)
>>> features.select_bands(stack, "RGBNE").sizes["band"]
10
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import xarray as xr

from ..errors import FileFormatError, InvalidInputError
from ..files import atomic_path

if TYPE_CHECKING:
    from affine import Affine
    from pyproj import CRS

#: Reflectance (0–1) as an array or a DataArray.
Reflectance = np.ndarray | xr.DataArray

__all__ = [
    "BAND_SETS",
    "ELEVATION",
    "INDICES",
    "RGBN",
    "SEASONS",
    "SENTINEL1",
    "Normalisation",
    "add_indices",
    "band_names",
    "check_stack",
    "fit_normalisation",
    "index_values",
    "make_stack",
    "read_stack",
    "select_bands",
    "write_stack",
]

SEASONS = ("before", "during")
RGBN = [f"{b}_{s}" for s in SEASONS for b in ("red", "green", "blue", "nir")]
ELEVATION = ["elevation", "slope"]
SENTINEL1 = [f"{pol}_{orbit}_{s}" for orbit in ("asc", "desc") for s in SEASONS for pol in ("vv", "vh")]
BAND_SETS: dict[str, list[str]] = {
    "RGBN": RGBN,
    "RGBNE": RGBN + ELEVATION,
    "RGBNS": RGBN + SENTINEL1,
    "RGBNES": RGBN + ELEVATION + SENTINEL1,
}
INDICES = ("ndvi", "evi", "ndwi")

_UNITS = {"elevation": "m", "slope": "degree"}


def _unit(name: str) -> str:
    if name in _UNITS:
        return _UNITS[name]
    if name.startswith(("vv_", "vh_")):
        return "dB"
    return "1"  # reflectance and indices are dimensionless


def band_names(bands: str | Sequence[str]) -> list[str]:
    """Resolve a band-set spec to a list of band names.

    Parameters
    ----------
    bands
        A set name (``"RGBN"``, ``"RGBNE"``, ``"RGBNS"``, ``"RGBNES"``), optionally with indices appended
        (``"RGBNE+NDVI+EVI"``), or an explicit list of band names.

    Example
    -------
    >>> band_names("RGBN+NDVI")[-2:]
    ['ndvi_before', 'ndvi_during']
    """
    if not isinstance(bands, str):
        names = [str(b) for b in bands]
        if not names:
            raise InvalidInputError("the band list is empty: name at least one band, or a set like 'RGBN'")
        return names
    head, *extras = [p.strip() for p in bands.split("+")]
    key = head.upper()
    if key not in BAND_SETS:
        raise InvalidInputError(
            f"unknown band set {head!r}: use one of {sorted(BAND_SETS)} (optionally '+NDVI', '+EVI', "
            "'+NDWI'), or a list of band names"
        )
    names = list(BAND_SETS[key])
    for extra in extras:
        index = extra.lower()
        if index not in INDICES:
            raise InvalidInputError(
                f"unknown index {extra!r} in {bands!r}: use {', '.join(i.upper() for i in INDICES)}"
            )
        names += [f"{index}_{s}" for s in SEASONS]
    return names


def check_stack(stack: xr.DataArray, name: str = "stack") -> xr.DataArray:
    """Check that ``stack`` is a (band, y, x) DataArray with unique band names; return it (y, x last)."""
    if not isinstance(stack, xr.DataArray):
        raise InvalidInputError(f"{name} must be an xr.DataArray (band, y, x), got {type(stack).__name__}")
    if set(stack.dims) != {"band", "y", "x"}:
        raise InvalidInputError(f"{name} must have dims (band, y, x), got {stack.dims}")
    if "band" not in stack.coords:
        raise InvalidInputError(
            f"{name} has no 'band' coordinate: give each band its name (e.g. 'red_before')"
        )
    names = [str(b) for b in stack["band"].values]
    if len(set(names)) != len(names):
        raise InvalidInputError(f"{name} has duplicate band names: {names}")
    return stack.transpose("band", "y", "x")


def index_values(
    index: str, red: Reflectance, green: Reflectance, blue: Reflectance, nir: Reflectance
) -> Reflectance:
    """One of :data:`INDICES` from reflectance (0–1) arrays or DataArrays; zero denominators give inf/NaN."""
    with np.errstate(divide="ignore", invalid="ignore"):
        if index == "ndvi":
            return (nir - red) / (nir + red)
        if index == "ndwi":  # McFeeters: green vs NIR, high over open water
            return (green - nir) / (green + nir)
        # EVI with the MODIS coefficients
        return 2.5 * (nir - red) / (nir + 6 * red - 7.5 * blue + 1)


def _index(stack: xr.DataArray, index: str, season: str) -> xr.DataArray:
    red, green, blue, nir = (
        stack.sel(band=f"{b}_{season}", drop=True).astype(np.float32) for b in ("red", "green", "blue", "nir")
    )
    out = index_values(index, red, green, blue, nir)
    return out.where(np.isfinite(out))


def add_indices(
    stack: xr.DataArray, indices: Sequence[str] = INDICES, seasons: Sequence[str] = SEASONS
) -> xr.DataArray:
    """Append spectral indices (NDVI, EVI, NDWI) per season as extra bands ``<index>_<season>``.

    Parameters
    ----------
    stack
        (band, y, x) with the RGBN bands of each season (reflectance 0–1).
    indices
        Any of ``"ndvi"``, ``"evi"``, ``"ndwi"``.
    seasons
        Any of ``"before"``, ``"during"``.
    """
    stack = check_stack(stack)
    have = [str(b) for b in stack["band"].values]
    new = []
    for index in indices:
        index = index.lower()
        if index not in INDICES:
            raise InvalidInputError(f"unknown index {index!r}: use one of {INDICES}")
        for season in seasons:
            name = f"{index}_{season}"
            if name in have:
                continue
            needed = [f"{b}_{season}" for b in ("red", "green", "blue", "nir")]
            missing = [b for b in needed if b not in have]
            if missing:
                raise InvalidInputError(f"cannot compute {name}: the stack lacks {missing}")
            new.append(_index(stack, index, season).expand_dims(band=[name]))
    if not new:
        return stack
    out = xr.concat([stack] + new, dim="band", coords="minimal", compat="override", combine_attrs="override")
    return _restore_geo(out.astype(stack.dtype if stack.dtype.kind == "f" else np.float32), stack)


def _restore_geo(out: xr.DataArray, like: xr.DataArray) -> xr.DataArray:
    import rioxarray  # noqa: F401

    crs = like.rio.crs
    if crs is not None:
        out = out.rio.write_crs(crs)
        if like.sizes.get("x", 0) > 1 and like.sizes.get("y", 0) > 1:  # a transform needs a regular 2-D grid
            out = out.rio.write_transform(like.rio.transform())
    return out


def select_bands(stack: xr.DataArray, bands: str | Sequence[str] | None = None) -> xr.DataArray:
    """Select a band set (by name or list) from a stack, computing requested indices on the way.

    Parameters
    ----------
    stack
        (band, y, x) feature stack.
    bands
        ``None`` keeps every band; otherwise see :func:`band_names`.

    Raises
    ------
    InvalidInputError
        A band of the requested set is missing; the message lists which and what the stack holds.
    """
    stack = check_stack(stack)
    if bands is None:
        return stack
    names = band_names(bands)
    have = [str(b) for b in stack["band"].values]
    wanted_indices = sorted({n.split("_")[0] for n in names if n not in have and n.split("_")[0] in INDICES})
    if wanted_indices:
        stack = add_indices(stack, wanted_indices)
        have = [str(b) for b in stack["band"].values]
    missing = [n for n in names if n not in have]
    if missing:
        raise InvalidInputError(
            f"the stack lacks {missing} needed for band set {bands!r}; it holds {have}. "
            "Acquire them (terralab.rice.acquire) or choose a smaller set, e.g. 'RGBN'"
        )
    return _restore_geo(stack.sel(band=names), stack)


@dataclass
class Normalisation:
    """Per-band standardisation (x − mean) / std, stored with a trained model.

    ``bands``, ``mean`` and ``std`` are parallel lists; statistics ignore NaN (nodata) pixels.
    """

    bands: list[str]
    mean: list[float]
    std: list[float]
    extra: dict = field(default_factory=dict)

    def apply(self, values: np.ndarray, axis: int = 0) -> np.ndarray:
        """Standardise a numpy array whose ``axis`` runs over ``self.bands``; NaN stays NaN."""
        shape = [1] * values.ndim
        shape[axis] = len(self.bands)
        mean = np.asarray(self.mean, dtype=np.float32).reshape(shape)
        std = np.asarray(self.std, dtype=np.float32).reshape(shape)
        return ((values.astype(np.float32) - mean) / std).astype(np.float32)

    def to_dict(self) -> dict:
        return {
            "bands": list(self.bands),
            "mean": list(self.mean),
            "std": list(self.std),
            "extra": dict(self.extra),
        }

    @classmethod
    def from_dict(cls, d: dict) -> Normalisation:
        return cls(
            list(d["bands"]),
            [float(v) for v in d["mean"]],
            [float(v) for v in d["std"]],
            dict(d.get("extra", {})),
        )

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame({"mean": self.mean, "std": self.std}, index=pd.Index(self.bands, name="band"))


def fit_normalisation(data: xr.DataArray | pd.DataFrame, bands: Sequence[str] | None = None) -> Normalisation:
    """Per-band mean and standard deviation of a stack or of point samples, ignoring NaN.

    A constant band gets std 1 so that it maps to 0 instead of dividing by zero.
    """
    if isinstance(data, pd.DataFrame):
        names = (
            list(bands)
            if bands is not None
            else [c for c in data.columns if c not in ("class", "class_name")]
        )
        values = data[names].to_numpy(dtype=np.float64).T
    else:
        data = check_stack(data)
        names = [str(b) for b in data["band"].values] if bands is None else list(bands)
        values = data.sel(band=names).values.reshape(len(names), -1).astype(np.float64)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN bands are reported below
        mean = np.nanmean(values, axis=1)
        std = np.nanstd(values, axis=1)
    if np.isnan(mean).any():
        empty = [n for n, m in zip(names, mean) if np.isnan(m)]
        raise InvalidInputError(f"bands {empty} hold no valid (non-NaN) value: nothing to normalise with")
    std = np.where(std > 1e-12, std, 1.0)
    return Normalisation(names, [float(v) for v in mean], [float(v) for v in std])


def make_stack(
    data: np.ndarray,
    bands: Sequence[str],
    *,
    transform: Affine | None = None,
    crs: str | CRS | None = None,
    x: np.ndarray | None = None,
    y: np.ndarray | None = None,
    attrs: dict | None = None,
) -> xr.DataArray:
    """Wrap a (band, y, x) numpy array as a stack with band names, pixel-centre coordinates and CRS.

    Give either an affine ``transform`` (rasterio/affine) or the ``x``/``y`` coordinate vectors.
    """
    import rioxarray  # noqa: F401

    data = np.asarray(data)
    if data.ndim != 3 or data.shape[0] != len(bands):
        raise InvalidInputError(f"data of shape {data.shape} does not match {len(bands)} band names")
    if transform is not None:
        x = transform.c + transform.a * (np.arange(data.shape[2]) + 0.5)
        y = transform.f + transform.e * (np.arange(data.shape[1]) + 0.5)
    elif x is None or y is None:
        x, y = np.arange(data.shape[2]) + 0.5, np.arange(data.shape[1]) + 0.5
    out = xr.DataArray(
        data,
        dims=("band", "y", "x"),
        coords={"band": list(bands), "y": y, "x": x},
        name="features",
        attrs=dict(attrs or {}),
    )
    out.attrs.setdefault("units", {b: _unit(b) for b in bands})
    if crs is not None:
        out = out.rio.write_crs(crs)
    if transform is not None:
        out = out.rio.write_transform(transform)
    return out


def read_stack(path: str | Path, *, bands: str | Sequence[str] | None = None) -> xr.DataArray:
    """Read a multi-band GeoTIFF into a stack; band names come from the band descriptions.

    Raises
    ------
    FileFormatError
        The file is not a readable raster (corrupt, truncated, not a GeoTIFF).
    """
    import rasterio
    from rasterio.errors import RasterioError

    path = Path(path)
    if not path.exists():
        from ..errors import DataNotAvailableError

        raise DataNotAvailableError(f"{path} does not exist")
    try:
        with rasterio.open(path) as src:
            data = src.read(masked=False).astype(np.float32)
            nodata = src.nodata
            names = [d or f"band_{i + 1}" for i, d in enumerate(src.descriptions)]
            transform, crs = src.transform, src.crs
    except RasterioError as err:
        raise FileFormatError(
            f"{path} is not a readable GeoTIFF ({err}); the file is corrupt or truncated"
        ) from err
    if nodata is not None and not np.isnan(nodata):
        data[data == nodata] = np.nan
    stack = make_stack(data, names, transform=transform, crs=crs, attrs={"source": str(path)})
    return select_bands(stack, bands) if bands is not None else stack


def write_stack(stack: xr.DataArray, path: str | Path, *, compress: str = "deflate") -> Path:
    """Write a stack to a tiled float32 GeoTIFF (band descriptions = band names, NaN = nodata), atomically."""
    import rasterio

    stack = check_stack(stack)
    path = Path(path)
    profile = {
        "driver": "GTiff",
        "dtype": "float32",
        "count": stack.sizes["band"],
        "height": stack.sizes["y"],
        "width": stack.sizes["x"],
        "crs": stack.rio.crs,
        "transform": stack.rio.transform(),
        "nodata": np.nan,
        "compress": compress,
        "tiled": True,
        "blockxsize": 256,
        "blockysize": 256,
    }
    with atomic_path(path) as tmp, rasterio.open(tmp, "w", **profile) as dst:
        dst.write(stack.values.astype(np.float32))
        for i, name in enumerate(stack["band"].values, start=1):
            dst.set_band_description(i, str(name))
    return path
