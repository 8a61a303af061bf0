"""Readers of the small real Sentinel-2 samples: eo-learn's reference scenes and EOPatch folders."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from ..errors import DataNotAvailableError, FileFormatError


def read_reference_scenes(path: str | Path | None = None) -> xr.DataArray:
    """eo-learn's five real Sentinel-2 L1C scenes as ``(time, band, y, x)`` reflectance with the 13 L1C bands.

    Parameters
    ----------
    path : path of ``REFERENCE_SCENES.npy``; default: catalog ``dengue_s2_slovenia_reference_scenes``.
    """
    from .imagery import S2_BANDS_L1C  # the band constants live with the request paths

    if path is None:
        from .. import catalog

        path = catalog.fetch("dengue_s2_slovenia_reference_scenes", progress=False)
    arr = np.load(Path(path))
    if arr.ndim != 4 or arr.shape[-1] != 13:
        raise FileFormatError(f"{path}: expected (time, y, x, 13) reflectance, got shape {arr.shape}")
    da = xr.DataArray(
        np.moveaxis(arr, -1, 1).astype(np.float32),
        dims=("time", "band", "y", "x"),
        coords={"time": np.arange(arr.shape[0]), "band": list(S2_BANDS_L1C)},
        attrs={"units": "reflectance", "source": "eo-learn REFERENCE_SCENES (Sentinel-2 L1C)"},
    )
    return da


def _eopatch_array(path: Path) -> np.ndarray:
    if path.suffix == ".gz":
        import gzip

        with gzip.open(path, "rb") as fh:
            return np.load(fh)
    return np.load(path)


def _eopatch_times(root: Path) -> pd.DatetimeIndex | None:
    """Dates of ``timestamps.json``, or None when the patch has none."""
    ts_file = root / "timestamps.json"
    times = None
    if ts_file.is_file():
        try:
            times = pd.DatetimeIndex(pd.to_datetime(json.loads(ts_file.read_text())))
        except (ValueError, json.JSONDecodeError) as exc:
            raise FileFormatError(f"{ts_file}: cannot read timestamps: {exc}") from exc
    return times


def _eopatch_variables(
    root: Path, times: pd.DatetimeIndex | None
) -> tuple[dict[str, xr.DataArray], tuple[int, ...] | None]:
    """Every feature of the four groups as a DataArray, checked against one (y, x) grid and the dates."""
    variables: dict[str, xr.DataArray] = {}
    shape_yx = None
    for group, temporal in (
        ("data", True),
        ("mask", True),
        ("data_timeless", False),
        ("mask_timeless", False),
    ):
        gdir = root / group
        if not gdir.is_dir():
            continue
        for f in sorted(gdir.iterdir()):
            if not (f.name.endswith(".npy") or f.name.endswith(".npy.gz")):
                continue
            name = f.name.split(".npy")[0]
            arr = _eopatch_array(f)
            want = 4 if temporal else 3
            if arr.ndim != want:
                raise FileFormatError(
                    f"{f}: expected {want} dims ({'time, ' if temporal else ''}y, x, channels), "
                    f"got shape {arr.shape}"
                )
            if shape_yx is None:
                shape_yx = arr.shape[-3:-1]
            elif arr.shape[-3:-1] != shape_yx:
                raise FileFormatError(f"{f}: grid {arr.shape[-3:-1]} differs from {shape_yx}")
            dims = (("time",) if temporal else ()) + ("y", "x")
            if arr.shape[-1] == 1:
                data = arr[..., 0]
            else:
                axis = 1 if temporal else 0
                data = np.moveaxis(arr, -1, axis)
                dims = dims[:axis] + (f"{name}_channel",) + dims[axis:]
            if temporal and times is not None and data.shape[0] != len(times):
                raise FileFormatError(f"{f}: {data.shape[0]} dates but timestamps.json lists {len(times)}")
            variables[name] = xr.DataArray(data, dims=dims, attrs={"group": group})
    return variables, shape_yx


def _eopatch_grid(bbox_file: Path, shape_yx: tuple[int, ...]) -> tuple[dict, dict]:
    """Pixel-centre coordinates x, y and the crs / bbox / resolution attrs from ``bbox.geojson``."""
    coords: dict = {}
    try:
        gj = json.loads(bbox_file.read_text())
        ring = np.asarray(gj["coordinates"][0], dtype=float)
        crs_name = gj.get("crs", {}).get("properties", {}).get("name", "")
    except (KeyError, ValueError, json.JSONDecodeError) as exc:
        raise FileFormatError(f"{bbox_file}: not a polygon GeoJSON: {exc}") from exc
    xmin, ymin = ring.min(axis=0)
    xmax, ymax = ring.max(axis=0)
    ny, nx = shape_yx
    dx, dy = (xmax - xmin) / nx, (ymax - ymin) / ny
    coords["x"] = ("x", xmin + dx * (np.arange(nx) + 0.5), {"units": "m"})
    coords["y"] = ("y", ymax - dy * (np.arange(ny) + 0.5), {"units": "m"})
    epsg = crs_name.rsplit(":", 1)[-1] if crs_name else ""
    attrs = {
        "crs": f"EPSG:{epsg}" if epsg.isdigit() else crs_name,
        "bbox": [float(xmin), float(ymin), float(xmax), float(ymax)],
        "resolution_m": [float(dx), float(dy)],
    }
    return coords, attrs


def read_eopatch(path: str | Path) -> xr.Dataset:
    """Read an eo-learn EOPatch directory (numpy features) into an ``xarray.Dataset``.

    Temporal features (``data/``, ``mask/``; arrays (time, y, x, channels)) become variables on (time, y, x),
    timeless ones (``data_timeless/``, ``mask_timeless/``) on (y, x); several channels add a
    ``<name>_channel`` dim. Coordinates x, y are pixel centres in the CRS of ``bbox.geojson``
    (``attrs["crs"]``), time from ``timestamps.json``. This is the catalog reader of format ``eopatch``.

    Examples
    --------
    >>> path = "shared/data/dengue/sentinel2_samples/slovenia_eolearn/TestEOPatch"  # the shared data
    >>> ds = read_eopatch(path)  # doctest: +SKIP
    >>> ds["NDVI"].dims                                                                      # doctest: +SKIP
    ('time', 'y', 'x')

    A patch of one feature, written here to a temporary folder:

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     (Path(tmp) / "data").mkdir()
    ...     np.save(Path(tmp) / "data" / "NDVI.npy", np.zeros((2, 3, 4, 1)))  # time, y, x, channels
    ...     read_eopatch(tmp)["NDVI"].dims
    ('time', 'y', 'x')
    """
    root = Path(path)
    if not root.is_dir():
        raise DataNotAvailableError(f"EOPatch directory {root} does not exist")
    times = _eopatch_times(root)
    variables, shape_yx = _eopatch_variables(root, times)
    if not variables:
        raise FileFormatError(f"{root} holds no EOPatch features (data/, mask/, *_timeless/ .npy files)")
    coords: dict = {}
    attrs: dict = {"source": str(root)}
    bbox_file = root / "bbox.geojson"
    if bbox_file.is_file() and shape_yx is not None:
        grid_coords, grid_attrs = _eopatch_grid(bbox_file, shape_yx)
        coords.update(grid_coords)
        attrs.update(grid_attrs)
    if times is not None:
        coords["time"] = times
    ds = xr.Dataset(variables, coords=coords, attrs=attrs)
    units = {"NDVI": "1", "CLP": "probability", "CLM": "1 = cloud", "DEM": "m", "LULC": "class"}
    for name, u in units.items():
        if name in ds:
            ds[name].attrs["units"] = u
    return ds
