"""Read DAS records into ``xr.DataArray (time, distance)``.

Vendor formats (ASN OptoDAS HDF5, Silixa TDMS, Febus, Terra15, PRODML, ...) are read through DASCore;
npz arrays (``data``, ``t``, ``x``) and NetCDF / Zarr files written by xarray are read directly. Several files
join on time; gaps and overlaps between them are detected, warned about and listed in ``attrs["gaps"]``
(see :func:`gap_table`).

Every array returned has

* dims ``("time", "distance")``, ``time`` as datetime64[ns], ``distance`` in metres;
* ``attrs``: ``units`` (``"1/s"`` strain rate, ``"1"`` strain, ``"rad"`` phase, ...), ``measurand``
  (``strain_rate``, ``strain``, ``phase``, ``phase_rate`` or ``unknown``), ``sampling_rate_hz``,
  ``channel_spacing_m``, ``gauge_length_m`` when known, ``source_files`` and ``format``.

Examples
--------
>>> from terralab.das import io
>>> da = io.read("decimated_optodas.hdf5")                     # doctest: +SKIP
>>> da.dims, da.attrs["units"]                                  # doctest: +SKIP
(('time', 'distance'), '1/s')
"""

from __future__ import annotations

import glob
import json
import logging
import os
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import FileFormatError, InvalidInputError, MissingDependencyError
from ..files import atomic_path
from .formats import (
    DASCORE_SUFFIXES,
    MEASURAND_UNITS,
    NPZ_SUFFIXES,
    SUPPORTED_SUFFIXES,
    XARRAY_SUFFIXES,
    is_data_file,
    is_zarr,
    read_dascore,
    read_npz,
    read_xarray,
)

if TYPE_CHECKING:
    import pandas as pd
    import xarray as xr

__all__ = [
    "DASCORE_SUFFIXES",
    "NPZ_SUFFIXES",
    "XARRAY_SUFFIXES",
    "DASGapWarning",
    "channel_spacing_m",
    "check",
    "gap_table",
    "list_files",
    "open_dataset",
    "read",
    "read_file",
    "sampling_rate_hz",
    "time_range",
    "write_files",
]

logger = logging.getLogger(__name__)


class DASGapWarning(UserWarning):
    """Consecutive DAS files are not contiguous in time (a gap or an overlap was found and handled)."""


# --------------------------------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------------------------------
def read(
    path_or_paths: str | os.PathLike | Sequence[str | os.PathLike],
    *,
    measurand: str | None = None,
    units: str | None = None,
    gauge_length_m: float | None = None,
    start_time: Any = None,
    variable: str | None = None,
    gaps: str = "fill",
    max_gap_fill_s: float = 60.0,
    dtype: Any = np.float32,
    **kwargs: Any,
) -> xr.DataArray:
    """Read one or several DAS files into one ``xr.DataArray (time, distance)``.

    Parameters
    ----------
    path_or_paths : path, glob pattern, directory, or a sequence of paths
        A directory reads every file in it with a supported suffix, in time order.
    measurand, units : str, optional
        Override what the file says (or does not say), e.g. ``measurand="strain_rate", units="1/s"``.
    gauge_length_m : float, optional
        Gauge length in metres, for formats that do not store it.
    start_time : datetime-like, optional
        Start time for npz files whose time axis is in seconds.
    variable : str, optional
        Variable name in a NetCDF / Zarr dataset holding several arrays.
    gaps : {"fill", "raise"}
        Files that do not join seamlessly: ``"fill"`` (default) pads gaps up to ``max_gap_fill_s`` with NaN
        (the detector masks NaN) and drops duplicated samples of overlaps, warning with
        :class:`DASGapWarning` and listing each in ``attrs["gaps"]``; ``"raise"`` raises
        :class:`~terralab.errors.InvalidInputError` instead.
    max_gap_fill_s : float
        Longest gap in seconds that is filled with NaN; longer gaps raise (use :func:`terralab.das.stream`,
        which restarts its filters at a gap, for records with long interruptions).
    dtype : numpy dtype or None
        Data type of the values (float32 by default; ``None`` keeps the file's type).
    **kwargs
        Passed to the format reader (DASCore's ``select`` arguments such as ``time=(t0, t1)`` or
        ``distance=(d0, d1)`` for vendor files).

    Returns
    -------
    xarray.DataArray
        dims ``("time", "distance")``, see the module docstring for coordinates and attributes.

    Raises
    ------
    FileFormatError
        Empty, corrupt or unsupported files.
    DataNotAvailableError
        A path that does not exist.
    """

    if gaps not in ("fill", "raise"):
        raise InvalidInputError(f"gaps must be 'fill' or 'raise', got {gaps!r}")
    files = list_files(path_or_paths)
    pieces: list[xr.DataArray] = []
    for f in files:
        pieces.extend(
            read_file(
                f,
                measurand=measurand,
                units=units,
                gauge_length_m=gauge_length_m,
                start_time=start_time,
                variable=variable,
                dtype=dtype,
                **kwargs,
            )
        )
    if not pieces:
        raise FileFormatError(f"{path_or_paths}: no DAS data found in {len(files)} file(s)")
    if len(pieces) == 1:
        out = pieces[0]
        out.attrs["gaps"] = "[]"
        return out
    return _join(pieces, gaps=gaps, max_gap_fill_s=max_gap_fill_s)


def list_files(path_or_paths: str | os.PathLike | Sequence[str | os.PathLike]) -> list[Path]:
    """Expand a path, a glob pattern, a directory or a list of those into the data files they name."""
    from ..errors import DataNotAvailableError

    if isinstance(path_or_paths, (str, os.PathLike)):
        items: Iterable[str | os.PathLike] = [path_or_paths]
    else:
        items = list(path_or_paths)
    out: list[Path] = []
    for item in items:
        s = os.fspath(item)
        if any(ch in s for ch in "*?["):
            hits = sorted(Path(p) for p in glob.glob(s))
            if not hits:
                raise DataNotAvailableError(f"no file matches {s!r}")
            out.extend(h for h in hits if is_data_file(h))
            continue
        p = Path(s)
        if not p.exists():
            raise DataNotAvailableError(
                f"{p}: no such file or directory; check the path (or use terralab.catalog)"
            )
        if p.is_dir() and not is_zarr(p):
            hits = sorted(h for h in p.rglob("*") if is_data_file(h))
            if not hits:
                raise FileFormatError(
                    f"{p}: directory holds no DAS file with a supported suffix {SUPPORTED_SUFFIXES}"
                )
            out.extend(hits)
        else:
            out.append(p)
    if not out:
        raise DataNotAvailableError(f"{path_or_paths}: no DAS files found")
    return out


def read_file(
    path: str | os.PathLike,
    *,
    measurand: str | None = None,
    units: str | None = None,
    gauge_length_m: float | None = None,
    start_time: Any = None,
    variable: str | None = None,
    dtype: Any = np.float32,
    **kwargs: Any,
) -> list:
    """Read one file into a list of contiguous ``xr.DataArray (time, distance)`` pieces (usually one)."""
    path = Path(path)
    if path.is_file() and path.stat().st_size == 0:
        raise FileFormatError(f"{path}: the file is empty (0 bytes); re-copy or re-download it")
    suffix = path.suffix.lower()
    try:
        if suffix in NPZ_SUFFIXES:
            pieces = [read_npz(path, start_time=start_time)]
        elif suffix in XARRAY_SUFFIXES or is_zarr(path):
            pieces = [read_xarray(path, variable=variable)]
        else:
            pieces = read_dascore(path, **kwargs)
    except (FileFormatError, InvalidInputError, MissingDependencyError):
        raise
    except Exception as exc:
        raise FileFormatError(
            f"{path}: cannot be read as DAS data ({type(exc).__name__}: {exc}); the file may be corrupt or "
            f"truncated, or its format is not supported (npz, NetCDF/Zarr, or a DASCore format)"
        ) from exc
    out = []
    for da in pieces:
        da = _standardise(da, path)
        if dtype is not None and da.dtype != np.dtype(dtype):
            da = da.astype(dtype)
        if measurand is not None:
            da.attrs["measurand"] = measurand
            da.attrs["units"] = units or MEASURAND_UNITS.get(measurand, da.attrs.get("units", ""))
        elif units is not None:
            da.attrs["units"] = units
        if gauge_length_m is not None:
            da.attrs["gauge_length_m"] = float(gauge_length_m)
        out.append(da)
    return out


def check(data: xr.DataArray, *, min_channels: int = 2) -> xr.DataArray:
    """Validate a DAS array and return it with dims ``("time", "distance")``.

    A ``(distance, time)`` array is transposed (documented handling, no copy of the values).

    Raises
    ------
    InvalidInputError
        Not a DataArray, dims other than time and distance, missing coordinates, times that are not strictly
        increasing or not evenly sampled, distances that are not strictly monotonic, fewer than
        ``min_channels`` channels, or fewer than two samples.
    """
    import xarray as xr

    if not isinstance(data, xr.DataArray):
        raise InvalidInputError(
            f"expected an xarray.DataArray with dims ('time', 'distance'), got {type(data).__name__}; "
            "read files with terralab.das.read"
        )
    if set(data.dims) != {"time", "distance"}:
        raise InvalidInputError(
            f"DAS data must have dims ('time', 'distance'), got {data.dims}; rename them, e.g. "
            "da.rename({'channel': 'distance'})"
        )
    if data.dims != ("time", "distance"):
        data = data.transpose("time", "distance")
    for name in ("time", "distance"):
        if name not in data.coords:
            raise InvalidInputError(
                f"DAS data has no {name!r} coordinate; assign one, e.g. da.assign_coords({name}=...)"
            )
    t = data["time"].values
    if not np.issubdtype(t.dtype, np.datetime64):
        raise InvalidInputError(f"the time coordinate must be datetime64, got {t.dtype}")
    if data.sizes["time"] < 2:
        raise InvalidInputError("DAS data needs at least 2 time samples")
    if data.sizes["distance"] < min_channels:
        raise InvalidInputError(
            f"DAS data has {data.sizes['distance']} channel(s); at least {min_channels} are needed to "
            "measure a moveout (speed and direction)"
        )
    dt = np.diff(t.astype("datetime64[ns]").astype(np.int64))
    if np.any(dt == 0):
        n = int(np.sum(dt == 0))
        raise InvalidInputError(
            f"the time coordinate has {n} duplicated value(s); drop them first, e.g. "
            "da.drop_duplicates('time')"
        )
    if np.any(dt < 0):
        raise InvalidInputError(
            "the time coordinate is not increasing; sort it first, e.g. da.sortby('time')"
        )
    med = float(np.median(dt))
    if np.any(np.abs(dt - med) > 0.01 * med):
        raise InvalidInputError(
            "the time coordinate is not evenly sampled (gaps or jitter > 1 % of a sample); read files with "
            "terralab.das.read, which fills gaps with NaN, or process them with terralab.das.stream"
        )
    x = np.asarray(data["distance"].values, dtype=float)
    if not np.all(np.isfinite(x)):
        raise InvalidInputError("the distance coordinate holds NaN or inf")
    dx = np.diff(x)
    if not (np.all(dx > 0) or np.all(dx < 0)):
        raise InvalidInputError(
            "the distance coordinate must be strictly monotonic (no repeated channels); "
            "sort or select channels"
        )
    return data


def sampling_rate_hz(data: xr.DataArray) -> float:
    """Sampling rate in Hz from the (evenly sampled) time coordinate."""
    t = data["time"].values.astype("datetime64[ns]").astype(np.int64)
    return float(1e9 / np.median(np.diff(t)))


def channel_spacing_m(data: xr.DataArray) -> float:
    """Median channel spacing in metres (positive)."""
    return float(np.median(np.abs(np.diff(np.asarray(data["distance"].values, dtype=float)))))


def gap_table(data: xr.DataArray) -> pd.DataFrame:
    """The gaps and overlaps :func:`read` found between files, as a ``pandas.DataFrame``.

    Columns: ``kind`` ("gap" or "overlap"), ``start``, ``end`` (datetime64), ``duration_s``, ``file_before``,
    ``file_after``, ``handling``.
    """
    import pandas as pd

    rows = json.loads(data.attrs.get("gaps", "[]") or "[]")
    cols = ["kind", "start", "end", "duration_s", "file_before", "file_after", "handling"]
    df = pd.DataFrame(rows, columns=cols)
    for c in ("start", "end"):
        df[c] = pd.to_datetime(df[c])
    return df


def _standardise(da, path: Path):
    """Dims (time, distance), datetime64[ns] time, float metres distance, the common attrs."""
    if set(da.dims) != {"time", "distance"}:
        raise FileFormatError(f"{path}: array has dims {da.dims}; expected time and distance")
    if da.dims != ("time", "distance"):
        da = da.transpose("time", "distance")
    for name in ("time", "distance"):
        if name not in da.coords:
            raise FileFormatError(f"{path}: no {name!r} coordinate")
    da = da.assign_coords(
        time=da["time"].values.astype("datetime64[ns]"),
        distance=np.asarray(da["distance"].values, dtype=float),
    )
    attrs = dict(da.attrs)
    attrs.setdefault("units", "")
    attrs.setdefault("measurand", "unknown")
    if attrs["measurand"] == "unknown" and attrs["units"] in ("1/s", "strain/s"):
        attrs["measurand"] = "strain_rate"
    if da.sizes["time"] >= 2:
        attrs["sampling_rate_hz"] = sampling_rate_hz(da)
    if da.sizes["distance"] >= 2:
        attrs["channel_spacing_m"] = channel_spacing_m(da)
    attrs["source_files"] = str(path)
    da.attrs = attrs
    da.name = da.name or "das"
    return da


# --------------------------------------------------------------------------------------------------
# joining files on time
# --------------------------------------------------------------------------------------------------
def _join(pieces: list, *, gaps: str, max_gap_fill_s: float):
    import xarray as xr

    pieces = sorted(pieces, key=lambda d: d["time"].values[0])
    ref = pieces[0]
    fs = ref.attrs.get("sampling_rate_hz") or sampling_rate_hz(ref)
    dt_ns = 1e9 / fs
    x0 = np.asarray(ref["distance"].values)
    events: list[dict[str, Any]] = []
    kept = [ref]
    for cur in pieces[1:]:
        prev = kept[-1]
        _check_joinable(cur, ref, x0, fs)
        end_prev = prev["time"].values[-1].astype("datetime64[ns]").astype(np.int64)
        start = cur["time"].values[0].astype("datetime64[ns]").astype(np.int64)
        step = (start - end_prev) / dt_ns  # 1.0 when seamless
        common = {
            "file_before": prev.attrs.get("source_files", ""),
            "file_after": cur.attrs.get("source_files", ""),
        }
        if step > 1.5:
            filler, ev = _gap_filler(end_prev, start, dt_ns, x0, cur.dtype, common, gaps, max_gap_fill_s)
            kept.append(filler)
            events.append(ev)
        elif step < 0.5:
            cur, ev = _drop_overlap(cur, end_prev, start, dt_ns, common, gaps)
            events.append(ev)
            if cur.sizes["time"] == 0:
                continue
        kept.append(cur)
    if events:
        warnings.warn(
            f"{len(events)} gap(s)/overlap(s) between DAS files: "
            + "; ".join(f"{e['kind']} {e['duration_s']:.3f} s at {e['start']}" for e in events[:5])
            + ("" if len(events) <= 5 else " ...")
            + " (see terralab.das.io.gap_table(da))",
            DASGapWarning,
            stacklevel=3,
        )
    attrs = dict(ref.attrs)
    attrs["source_files"] = ";".join(p.attrs.get("source_files", "") for p in pieces)
    out = xr.concat(
        [k.drop_attrs() if hasattr(k, "drop_attrs") else k for k in kept],
        dim="time",
        coords="minimal",
        compat="override",
        join="override",
    )
    out.attrs = attrs
    out.attrs["gaps"] = json.dumps(events)
    out.attrs["sampling_rate_hz"] = fs
    return out


def _check_joinable(cur, ref, x0, fs: float) -> None:
    """A piece joins the first one only with the same channels and sampling rate."""
    if cur.sizes["distance"] != len(x0) or not np.allclose(cur["distance"].values, x0):
        raise FileFormatError(
            f"{cur.attrs.get('source_files')}: channels differ from {ref.attrs.get('source_files')}; "
            "select the same distance range in every file before joining"
        )
    fs_cur = cur.attrs.get("sampling_rate_hz") or fs
    if abs(fs_cur - fs) > 1e-3 * fs:
        raise FileFormatError(
            f"{cur.attrs.get('source_files')}: sampling rate {fs_cur:g} Hz differs from {fs:g} Hz of the "
            "first file; resample before joining"
        )


def _gap_filler(end_prev, start, dt_ns, x0, dtype, common: dict, gaps: str, max_gap_fill_s: float):
    """(NaN piece filling the gap between two files, its gap event); raises where gaps may not be filled."""
    import xarray as xr

    gap_s = (start - end_prev - dt_ns) / 1e9
    ev = {
        "kind": "gap",
        "start": str(np.datetime64(int(end_prev + dt_ns), "ns")),
        "end": str(np.datetime64(int(start), "ns")),
        "duration_s": float(gap_s),
        **common,
    }
    if gaps == "raise" or gap_s > max_gap_fill_s:
        raise InvalidInputError(
            f"gap of {gap_s:.3f} s between {common['file_before']} and {common['file_after']}"
            + ("" if gaps == "raise" else f" is longer than max_gap_fill_s={max_gap_fill_s} s")
            + "; read the parts separately or process the files with terralab.das.stream"
        )
    n_fill = round(float((start - end_prev) / dt_ns)) - 1
    fill_t = end_prev + np.round(np.arange(1, n_fill + 1) * dt_ns).astype(np.int64)
    filler = xr.DataArray(
        np.full((n_fill, len(x0)), np.nan, dtype=dtype),
        dims=("time", "distance"),
        coords={"time": fill_t.astype("datetime64[ns]"), "distance": x0},
    )
    ev["handling"] = f"filled {n_fill} samples with NaN"
    return filler, ev


def _drop_overlap(cur, end_prev, start, dt_ns, common: dict, gaps: str):
    """(the later file without the samples it shares with the earlier one, the overlap event)."""
    n_dup = int(np.sum(cur["time"].values.astype("datetime64[ns]").astype(np.int64) <= end_prev + dt_ns / 2))
    ev = {
        "kind": "overlap",
        "start": str(np.datetime64(int(start), "ns")),
        "end": str(np.datetime64(int(end_prev), "ns")),
        "duration_s": float((end_prev - start + dt_ns) / 1e9),
        **common,
    }
    if gaps == "raise":
        raise InvalidInputError(f"{common['file_after']} overlaps {common['file_before']} by {n_dup} samples")
    ev["handling"] = f"dropped {n_dup} overlapping samples of the later file"
    return cur.isel(time=slice(n_dup, None)), ev


# --------------------------------------------------------------------------------------------------
# writing files and opening catalog datasets
# --------------------------------------------------------------------------------------------------
def write_files(
    data: xr.DataArray, directory: str | os.PathLike, *, file_s: float = 10.0, fmt: str = "npz"
) -> list[Path]:
    """Split a record into files of ``file_s`` seconds named by start time (like a DAS recorder does).

    Parameters
    ----------
    data : xarray.DataArray
        ``(time, distance)`` record.
    directory : path
        Created if missing. Each file is written to a temporary name and renamed, so a watcher never sees a
        half-written file.
    file_s : float
        Seconds per file.
    fmt : {"npz", "netcdf"}
        npz stores ``data`` (channels, samples), ``t`` and ``x`` plus ``units``/``measurand``; NetCDF stores
        the DataArray.

    Returns
    -------
    list of pathlib.Path
        The files in time order.
    """
    if fmt not in ("npz", "netcdf"):
        raise InvalidInputError(f"fmt must be 'npz' or 'netcdf', got {fmt!r}")
    data = check(data)
    fs = sampling_rate_hz(data)
    n = max(1, round(float(file_s * fs)))
    out_dir = Path(directory)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for k in range(0, data.sizes["time"], n):
        part = data.isel(time=slice(k, k + n))
        t0 = part["time"].values[0].astype("datetime64[ms]").astype(object)
        name = t0.strftime("%Y%m%dT%H%M%S") + f"{t0.microsecond // 1000:03d}"
        suffix = ".npz" if fmt == "npz" else ".nc"
        target = out_dir / f"{name}{suffix}"
        with atomic_path(target) as tmp:
            if fmt == "npz":
                with open(tmp, "wb") as fh:
                    np.savez(
                        fh,
                        data=part.values.T,
                        t=part["time"].values.astype("datetime64[ns]"),
                        x=np.asarray(part["distance"].values, dtype=float),
                        units=str(part.attrs.get("units", "")),
                        measurand=str(part.attrs.get("measurand", "unknown")),
                    )
            else:
                attrs = {k: v for k, v in part.attrs.items() if isinstance(v, (str, int, float))}
                part.copy().assign_attrs(attrs).to_netcdf(tmp)
        paths.append(target)
    return paths


def open_dataset(name: str, **synthetic_params: Any) -> tuple[xr.DataArray, pd.DataFrame | None]:
    """Open a DAS catalog dataset as ``(data, truth)``; ``truth`` is None for real records.

    Synthetic entries (``das_synthetic_*``) take generator parameters as keyword arguments (e.g.
    ``duration_s=60``); file entries are read with :func:`read`.
    """
    from .. import catalog

    entry = catalog.get(name)
    if getattr(entry, "kind", None) == "synthetic":
        out = catalog.open(name, **synthetic_params)
    else:
        out = catalog.open(name)
    if isinstance(out, tuple):
        data, truth = out
    else:
        data, truth = out, None
    return check(data), truth


def time_range(path: str | os.PathLike) -> tuple[np.datetime64, np.datetime64]:
    """First and last sample time of a file, reading only its time axis where the format allows."""
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        if suffix in NPZ_SUFFIXES:
            with np.load(path, allow_pickle=False) as z:
                key = next((k for k in ("t", "time", "times") if k in z.files), None)
                t = np.asarray(z[key]) if key is not None else None
            if t is not None and np.issubdtype(t.dtype, np.datetime64):
                return t[0].astype("datetime64[ns]"), t[-1].astype("datetime64[ns]")
        elif suffix in XARRAY_SUFFIXES or is_zarr(path):
            import xarray as xr

            with xr.open_zarr(path) if is_zarr(path) else xr.open_dataset(path) as ds:
                t = ds["time"].values
            return t[0].astype("datetime64[ns]"), t[-1].astype("datetime64[ns]")
        else:
            import dascore as dc

            contents = dc.spool(path).get_contents()
            return (
                np.datetime64(contents["time_min"].min(), "ns"),
                np.datetime64(contents["time_max"].max(), "ns"),
            )
    except (FileFormatError, InvalidInputError):
        raise
    except Exception:  # fall back to reading the file, which raises a clear error if it must
        logger.debug(
            "reading the time range of %s from its header failed; reading the file", path, exc_info=True
        )
    piece = read_file(path)[0]
    t = piece["time"].values
    return t[0], t[-1]
