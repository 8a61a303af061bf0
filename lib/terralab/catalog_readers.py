"""Readers: how the catalog turns a fetched file into its natural object, by the entry's ``format``.

Tables become pandas objects, rasters and arrays xarray objects, vectors geopandas, waveforms ObsPy Streams.
Workflows add their own formats through the entry-point group ``terralab.readers`` (see pyproject.toml),
loaded the first time such a format is opened, or with :func:`register_reader`. Each reader is called as
``reader(path, **read_kwargs)``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .errors import FileFormatError, MissingDependencyError

__all__ = ["READER_GROUP", "Reader", "get_reader", "register_reader"]

READER_GROUP = "terralab.readers"
Reader = Callable[..., Any]
_READERS: dict[str, Reader] = {}
_ENTRY_POINTS: dict[str, Any] | None = None


def register_reader(fmt: str, *aliases: str) -> Callable[[Reader], Reader]:
    """Decorator registering ``reader(path, **read_kwargs)`` for catalog entries of ``format: fmt``.

    Workflows usually register through the entry-point group ``terralab.readers`` instead (loaded lazily
    the first time an unknown format is opened); a reader registered here wins over an entry point.

    Examples
    --------
    >>> @register_reader("my-format")
    ... def read_mine(path, **kwargs):
    ...     return path.read_text()
    """

    def deco(func: Reader) -> Reader:
        for f in (fmt, *aliases):
            _READERS[f] = func
        return func

    return deco


def _entry_points() -> dict[str, Any]:
    """The workflows' readers declared in the entry-point group ``terralab.readers``, by format name."""
    global _ENTRY_POINTS
    if _ENTRY_POINTS is None:
        from importlib.metadata import entry_points

        _ENTRY_POINTS = {ep.name: ep for ep in entry_points(group=READER_GROUP)}
    return _ENTRY_POINTS


def get_reader(fmt: str) -> Reader:
    """The reader for a format: registered ones first, then the ``terralab.readers`` entry points."""
    if fmt in _READERS:
        return _READERS[fmt]
    ep = _entry_points().get(fmt)
    if ep is None:
        known = sorted(set(_READERS) | set(_entry_points()))
        raise FileFormatError(
            f"no reader for format {fmt!r}. Known formats: {', '.join(known)}. Register one with "
            f"@terralab.catalog.register_reader({fmt!r}) or an entry point in the group {READER_GROUP!r}."
        )
    try:
        func = ep.load()
    except ImportError as exc:
        raise MissingDependencyError(
            f"the reader for format {fmt!r} (entry point {ep.value}) cannot be imported: {exc}. "
            "Reinstall terralab (pip install -e .) so its workflow modules and their dependencies are "
            "present."
        ) from exc
    _READERS[fmt] = func
    return func


def _dims_for(shape: tuple[int, ...], dims: Any, var: str) -> list[str]:
    if dims is None:
        return [f"dim_{i}" for i in range(len(shape))]
    dims = list(dims)
    if len(dims) != len(shape):
        raise FileFormatError(f"dims {dims} for {var!r} do not match its {len(shape)}-d shape {shape}")
    return dims


@register_reader("csv")
def _read_csv(path: Path, **kwargs: Any) -> Any:
    import pandas as pd

    return pd.read_csv(path, **kwargs)


@register_reader("tsv")
def _read_tsv(path: Path, **kwargs: Any) -> Any:
    import pandas as pd

    kwargs.setdefault("sep", "\t")
    return pd.read_csv(path, **kwargs)


@register_reader("parquet")
def _read_parquet(path: Path, **kwargs: Any) -> Any:
    import pandas as pd

    try:
        return pd.read_parquet(path, **kwargs)
    except ImportError as exc:
        raise MissingDependencyError(f"reading parquet needs pyarrow: pip install pyarrow ({exc})") from exc


@register_reader("json")
def _read_json(path: Path, **kwargs: Any) -> Any:
    with Path(path).open(encoding=kwargs.pop("encoding", "utf-8")) as fh:
        return json.load(fh, **kwargs)


@register_reader("geojson", "vector", "gpkg", "shapefile")
def _read_vector(path: Path, **kwargs: Any) -> Any:
    import geopandas as gpd

    return gpd.read_file(path, **kwargs)


@register_reader("geotiff", "jp2", "raster", "cog")
def _read_raster(path: Path, masked: bool = False, **kwargs: Any) -> Any:
    """A raster as ``xarray.DataArray (band, y, x)``; band coordinate = band descriptions when present."""
    import rioxarray

    da = rioxarray.open_rasterio(path, masked=masked, **kwargs)
    if hasattr(da, "dims") and "band" in da.dims:
        names = da.attrs.get("long_name")
        if isinstance(names, (list, tuple)) and len(names) == da.sizes["band"] and all(names):
            da = da.assign_coords(band=list(names))
    da.attrs.setdefault("source", str(path))
    return da


@register_reader("netcdf", "nc")
def _read_netcdf(path: Path, **kwargs: Any) -> Any:
    import xarray as xr

    return xr.open_dataset(path, **kwargs)


@register_reader("zarr")
def _read_zarr(path: Path, **kwargs: Any) -> Any:
    import xarray as xr

    return xr.open_zarr(path, **kwargs)


@register_reader("npy")
def _read_npy(
    path: Path,
    dims: Any = None,
    attrs: Mapping[str, Any] | None = None,
    name: str | None = None,
    mmap: bool = False,
) -> Any:
    """A ``.npy`` array as ``xarray.DataArray``; ``dims`` names its axes (default ``dim_0 ...``)."""
    import numpy as np
    import xarray as xr

    arr = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    da = xr.DataArray(
        arr, dims=_dims_for(arr.shape, dims, name or Path(path).stem), name=name or Path(path).stem
    )
    da.attrs.update(dict(attrs or {}))
    da.attrs.setdefault("source", str(path))
    return da


@register_reader("npz")
def _read_npz(
    path: Path,
    dims: Mapping[str, Any] | None = None,
    attrs: Mapping[str, Any] | None = None,
    as_dataset: bool | None = None,
) -> Any:
    """An ``.npz`` archive as ``xarray.Dataset`` when its arrays fit one (``dims`` per variable, or all
    arrays of one shape), else a ``dict`` of numpy arrays (e.g. a weights file)."""
    import numpy as np
    import xarray as xr

    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    same_shape = len({a.shape for a in arrays.values()}) == 1
    if as_dataset is False or (as_dataset is None and dims is None and not same_shape):
        return arrays
    dims = dict(dims or {})
    variables = {k: (_dims_for(a.shape, dims.get(k), k), a) for k, a in arrays.items()}
    try:
        ds = xr.Dataset(variables)
    except ValueError as exc:
        raise FileFormatError(
            f"{path}: arrays do not fit one Dataset ({exc}); give read_kwargs dims"
        ) from exc
    ds.attrs.update(dict(attrs or {}))
    ds.attrs.setdefault("source", str(path))
    return ds


@register_reader("hdf5", "h5")
def _read_hdf5(path: Path, **kwargs: Any) -> Any:
    import h5py

    kwargs.setdefault("mode", "r")
    return h5py.File(path, **kwargs)


@register_reader("png", "image", "jpeg")
def _read_image(path: Path, **kwargs: Any) -> Any:
    """An image as ``xarray.DataArray (y, x, channel)`` (``(y, x)`` for single-channel images)."""
    import numpy as np
    import xarray as xr
    from PIL import Image

    with Image.open(path) as im:
        arr = np.asarray(im)
        mode = im.mode
    dims = ("y", "x", "channel") if arr.ndim == 3 else ("y", "x")
    coords = {"channel": list(mode)} if arr.ndim == 3 and len(mode) == arr.shape[2] else {}
    return xr.DataArray(arr, dims=dims, coords=coords, attrs={"source": str(path), "mode": mode})


@register_reader("mseed", "sac", "obspy")
def _read_obspy(path: Path, **kwargs: Any) -> Any:
    try:
        import obspy
    except ImportError as exc:
        raise MissingDependencyError(f"reading waveforms needs obspy: pip install obspy ({exc})") from exc
    return obspy.read(str(path), **kwargs)


@register_reader("text", "txt")
def _read_text(path: Path, encoding: str = "utf-8", errors: str = "strict") -> str:
    return Path(path).read_text(encoding=encoding, errors=errors)
