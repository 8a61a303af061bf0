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
from typing import Any

import numpy as np

from ..errors import FileFormatError, InvalidInputError, MissingDependencyError
from ..files import atomic_path

__all__ = [
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

NPZ_SUFFIXES = (".npz",)
XARRAY_SUFFIXES = (".nc", ".nc4", ".netcdf", ".cdf", ".zarr")
# suffixes DASCore understands; anything else is still offered to DASCore's format sniffer
DASCORE_SUFFIXES = (".h5", ".hdf5", ".hdf", ".tdms", ".segy", ".sgy", ".dat", ".mseed", ".pickle", ".pkl")
SUPPORTED_SUFFIXES = NPZ_SUFFIXES + XARRAY_SUFFIXES + DASCORE_SUFFIXES

_MEASURAND_UNITS = {
    "strain_rate": "1/s",
    "strain": "1",
    "phase": "rad",
    "phase_rate": "rad/s",
}


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
):
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
    import xarray as xr

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
        if p.is_dir() and not _is_zarr(p):
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
            pieces = [_read_npz(path, start_time=start_time)]
        elif suffix in XARRAY_SUFFIXES or _is_zarr(path):
            pieces = [_read_xarray(path, variable=variable)]
        else:
            pieces = _read_dascore(path, **kwargs)
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
            da.attrs["units"] = units or _MEASURAND_UNITS.get(measurand, da.attrs.get("units", ""))
        elif units is not None:
            da.attrs["units"] = units
        if gauge_length_m is not None:
            da.attrs["gauge_length_m"] = float(gauge_length_m)
        out.append(da)
    return out


def check(data, *, min_channels: int = 2):
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
            f"DAS data has {data.sizes['distance']} channel(s); at least {min_channels} are needed to measure "
            "a moveout (speed and direction)"
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
            "the distance coordinate must be strictly monotonic (no repeated channels); sort or select channels"
        )
    return data


def sampling_rate_hz(data) -> float:
    """Sampling rate in Hz from the (evenly sampled) time coordinate."""
    t = data["time"].values.astype("datetime64[ns]").astype(np.int64)
    return float(1e9 / np.median(np.diff(t)))


def channel_spacing_m(data) -> float:
    """Median channel spacing in metres (positive)."""
    return float(np.median(np.abs(np.diff(np.asarray(data["distance"].values, dtype=float)))))


def gap_table(data):
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


# --------------------------------------------------------------------------------------------------
# format readers
# --------------------------------------------------------------------------------------------------
def _is_zarr(p: Path) -> bool:
    return p.is_dir() and (
        p.suffix == ".zarr"
        or (p / ".zgroup").exists()
        or (p / ".zarray").exists()
        or (p / "zarr.json").exists()
    )


def is_data_file(p: Path) -> bool:
    if any(part.startswith(".") for part in p.parts[-1:]):
        return False
    if _is_zarr(p):
        return True
    # files inside a zarr store are not separate records
    if any(_is_zarr(parent) for parent in p.parents[:3]):
        return False
    return p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES


def _read_npz(path: Path, *, start_time: Any = None):
    import xarray as xr

    with np.load(path, allow_pickle=False) as z:
        keys = list(z.files)
        dkey = next((k for k in ("data", "das", "strain_rate", "strain", "x_data") if k in keys), None)
        if dkey is None:
            two_d = [k for k in keys if z[k].ndim == 2]
            if len(two_d) != 1:
                raise FileFormatError(
                    f"{path}: npz holds {keys}; expected one 2-D array named 'data' with 't' and 'x' coordinates"
                )
            dkey = two_d[0]
        data = z[dkey]
        if data.ndim != 2:
            raise FileFormatError(f"{path}: npz array {dkey!r} has {data.ndim} dims, expected 2")
        tkey = next((k for k in ("t", "time", "times") if k in keys), None)
        xkey = next((k for k in ("x", "distance", "offset", "channels") if k in keys), None)
        if tkey is None or xkey is None:
            raise FileFormatError(
                f"{path}: npz needs a time array ('t' or 'time') and a distance array ('x' or 'distance'); "
                f"found {keys}"
            )
        t = np.asarray(z[tkey])
        x = np.asarray(z[xkey], dtype=float)
        meta = {
            k: z[k].item()
            for k in ("fs", "units", "measurand", "gauge_length")
            if k in keys and z[k].ndim == 0
        }
    if not np.issubdtype(t.dtype, np.datetime64):
        if start_time is None:
            raise FileFormatError(
                f"{path}: the time array {tkey!r} is numeric ({t.dtype}); pass start_time=... to read()"
            )
        t = np.datetime64(start_time, "ns") + np.round(t.astype(float) * 1e9).astype("timedelta64[ns]")
    if data.shape == (len(x), len(t)) and len(x) != len(t):
        data = data.T  # stored (channels, samples)
    elif data.shape != (len(t), len(x)):
        raise FileFormatError(
            f"{path}: data shape {data.shape} does not match len(t)={len(t)} and len(x)={len(x)}"
        )
    attrs = {
        "format": "npz",
        "units": str(meta.get("units", "")),
        "measurand": str(meta.get("measurand", "unknown")),
    }
    if "gauge_length" in meta:
        attrs["gauge_length_m"] = float(meta["gauge_length"])
    return xr.DataArray(
        data,
        dims=("time", "distance"),
        coords={"time": t.astype("datetime64[ns]"), "distance": x},
        attrs=attrs,
    )


def _read_xarray(path: Path, *, variable: str | None = None):
    import xarray as xr

    if _is_zarr(path):
        ds = xr.open_zarr(path)
    else:
        ds = xr.open_dataset(path)
    if variable is not None:
        if variable not in ds:
            raise FileFormatError(f"{path}: no variable {variable!r}; it has {list(ds.data_vars)}")
        da = ds[variable]
    else:
        cands = [v for v in ds.data_vars if set(ds[v].dims) == {"time", "distance"}]
        if len(cands) != 1:
            raise FileFormatError(
                f"{path}: expected exactly one variable with dims (time, distance), found "
                f"{ {v: ds[v].dims for v in ds.data_vars} }; pass variable=..."
            )
        da = ds[cands[0]]
    da = da.load()
    da.attrs = dict(da.attrs)
    da.attrs.setdefault("format", "zarr" if _is_zarr(path) else "netcdf")
    return da


def _read_dascore(path: Path, **select: Any) -> list:
    try:
        import dascore as dc
    except ImportError as exc:  # pragma: no cover - dascore is a dependency
        raise MissingDependencyError("reading vendor DAS formats needs DASCore: pip install dascore") from exc
    try:
        fmt, version = dc.get_format(path)
    except Exception as exc:
        damaged = _damaged_hdf5(path)
        if damaged:
            raise FileFormatError(
                f"{path}: truncated or corrupt HDF5 file ({damaged}); DAS formats in HDF5 (OptoDAS, PRODML, "
                "Febus, ...) cannot be read from it: re-copy the file from the interrogator or archive"
            ) from exc
        raise FileFormatError(
            f"{path}: not a DAS format DASCore recognises ({type(exc).__name__}: {exc}); supported here are "
            f"npz, NetCDF/Zarr written by xarray, and DASCore formats (OptoDAS, TDMS, PRODML, Febus, ...)"
        ) from exc
    spool = dc.spool(path)
    if select:
        spool = spool.select(**select)
    out = []
    for patch in spool:
        da = _patch_to_dataarray(patch)
        da.attrs["format"] = f"{fmt} {version}".strip()
        out.append(da)
    return out


_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def _damaged_hdf5(path: Path) -> str:
    """Why an HDF5 file is damaged ("" when it is not HDF5 or opens fine).

    The superblock (offset 0) records the end-of-file address; a file shorter than that was cut off.
    """
    try:
        with open(path, "rb") as fh:
            head = fh.read(96)
    except OSError:
        return ""
    if not head.startswith(_HDF5_SIGNATURE):
        return ""
    size = path.stat().st_size
    version = head[8]
    # end-of-file address: superblock v0/v1 at byte 40 (v1: 44), v2/v3 at byte 28; 8-byte little-endian
    offset = {0: 40, 1: 44, 2: 28, 3: 28}.get(version)
    if offset is not None and len(head) >= offset + 8:
        eof = int.from_bytes(head[offset : offset + 8], "little")
        if 0 < eof < 2**62 and size < eof:
            return f"{size} of {eof} bytes present"
    try:
        import h5py

        with h5py.File(path, "r") as f:
            f.visit(lambda name: None)
    except Exception as exc:  # noqa: BLE001 - any failure to walk the file means it is damaged
        return f"{type(exc).__name__}: {exc}"
    return ""


def _patch_to_dataarray(patch):
    import xarray as xr
    from dascore.units import get_quantity

    dims = tuple(patch.dims)
    if set(dims) != {"time", "distance"}:
        raise FileFormatError(f"DAS patch has dims {dims}; expected time and distance")
    tc = patch.get_coord("time")
    xc = patch.get_coord("distance")
    t = np.asarray(patch.get_array("time")).astype("datetime64[ns]")
    x = np.asarray(patch.get_array("distance"), dtype=float)
    if xc.units is not None and str(xc.units) not in ("", "m", "1 m"):
        x = x * float(get_quantity(xc.units).to("m").magnitude)
    data = np.asarray(patch.data)
    if dims != ("time", "distance"):
        data = data.T
    attrs: dict[str, Any] = {}
    unit_q = patch.attrs.data_units
    measurand, units = _classify_units(unit_q)
    attrs["units"] = units
    attrs["measurand"] = measurand
    gl = getattr(patch.attrs, "gauge_length", None)
    if gl is not None and np.isfinite(gl) and gl > 0:
        glu = getattr(patch.attrs, "gauge_length_units", None)
        factor = float(get_quantity(glu).to("m").magnitude) if glu is not None else 1.0
        attrs["gauge_length_m"] = float(gl) * factor
    for key in ("instrument_id", "acquisition_id", "network", "station", "tag"):
        val = getattr(patch.attrs, key, "")
        if val:
            attrs[key] = str(val)
    del tc
    return xr.DataArray(data, dims=("time", "distance"), coords={"time": t, "distance": x}, attrs=attrs)


def _classify_units(q) -> tuple[str, str]:
    """(measurand, units string) from a DASCore/pint data unit."""
    if q is None or str(q) in ("", "None"):
        return "unknown", ""
    try:
        from dascore.units import get_quantity

        qq = get_quantity(q)
        dim = dict(qq.dimensionality)
        text = str(qq.units)
    except Exception:  # noqa: BLE001 - units DASCore cannot parse are reported as they are
        return "unknown", str(q)
    is_strain = "strain" in text or "ϵ" in text or "ε" in text
    is_rad = "radian" in text or text.strip() in ("rad", "rad / s")
    per_time = dim.get("[time]", 0) == -1
    if is_strain and per_time:
        return "strain_rate", "1/s"
    if is_strain and not dim:
        return "strain", "1"
    if is_rad and per_time:
        return "phase_rate", "rad/s"
    if is_rad:
        return "phase", "rad"
    return "unknown", text


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
    for prev_i, cur in enumerate(pieces[1:]):
        prev = kept[-1]
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
        end_prev = prev["time"].values[-1].astype("datetime64[ns]").astype(np.int64)
        start = cur["time"].values[0].astype("datetime64[ns]").astype(np.int64)
        step = (start - end_prev) / dt_ns  # 1.0 when seamless
        common = {
            "file_before": prev.attrs.get("source_files", ""),
            "file_after": cur.attrs.get("source_files", ""),
        }
        if step > 1.5:
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
                np.full((n_fill, len(x0)), np.nan, dtype=cur.dtype),
                dims=("time", "distance"),
                coords={"time": fill_t.astype("datetime64[ns]"), "distance": x0},
            )
            kept.append(filler)
            ev["handling"] = f"filled {n_fill} samples with NaN"
            events.append(ev)
        elif step < 0.5:
            n_dup = int(
                np.sum(cur["time"].values.astype("datetime64[ns]").astype(np.int64) <= end_prev + dt_ns / 2)
            )
            ev = {
                "kind": "overlap",
                "start": str(np.datetime64(int(start), "ns")),
                "end": str(np.datetime64(int(end_prev), "ns")),
                "duration_s": float((end_prev - start + dt_ns) / 1e9),
                **common,
            }
            if gaps == "raise":
                raise InvalidInputError(
                    f"{common['file_after']} overlaps {common['file_before']} by {n_dup} samples"
                )
            ev["handling"] = f"dropped {n_dup} overlapping samples of the later file"
            events.append(ev)
            cur = cur.isel(time=slice(n_dup, None))
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


# --------------------------------------------------------------------------------------------------
# writing files and opening catalog datasets
# --------------------------------------------------------------------------------------------------
def write_files(data, directory: str | os.PathLike, *, file_s: float = 10.0, fmt: str = "npz") -> list[Path]:
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
        npz stores ``data`` (channels, samples), ``t`` and ``x`` plus ``units``/``measurand``; NetCDF stores the
        DataArray.

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


def open_dataset(name: str, **synthetic_params: Any):
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
        elif suffix in XARRAY_SUFFIXES or _is_zarr(path):
            import xarray as xr

            with xr.open_zarr(path) if _is_zarr(path) else xr.open_dataset(path) as ds:
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
