"""DAS file formats: which files are DAS records, and one reader per format (npz, NetCDF/Zarr, DASCore).

Each reader returns ``xr.DataArray (time, distance)`` pieces; :mod:`terralab.das.io` brings them to the
package's data model and joins them on time.

Examples
--------
A record of the named urban scene written as npz files and one of them read back:

>>> from terralab import das
>>> from terralab.das import formats, synthetic
>>> data, _ = synthetic.urban_street(duration_s=20, n_channels=20, seed=2)
>>> paths = das.write_files(data, "urban", file_s=10.0)
>>> formats.is_data_file(paths[0]), formats.read_npz(paths[0]).sizes["distance"]
(True, 20)
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import FileFormatError, MissingDependencyError

if TYPE_CHECKING:
    import xarray as xr

__all__ = [
    "DASCORE_SUFFIXES",
    "MEASURAND_UNITS",
    "NPZ_SUFFIXES",
    "SUPPORTED_SUFFIXES",
    "XARRAY_SUFFIXES",
    "is_data_file",
    "is_zarr",
    "read_dascore",
    "read_npz",
    "read_xarray",
]

NPZ_SUFFIXES = (".npz",)
XARRAY_SUFFIXES = (".nc", ".nc4", ".netcdf", ".cdf", ".zarr")
# suffixes DASCore understands; anything else is still offered to DASCore's format sniffer
DASCORE_SUFFIXES = (".h5", ".hdf5", ".hdf", ".tdms", ".segy", ".sgy", ".dat", ".mseed", ".pickle", ".pkl")
SUPPORTED_SUFFIXES = NPZ_SUFFIXES + XARRAY_SUFFIXES + DASCORE_SUFFIXES

MEASURAND_UNITS = {
    "strain_rate": "1/s",
    "strain": "1",
    "phase": "rad",
    "phase_rate": "rad/s",
}


def is_zarr(p: Path) -> bool:
    return p.is_dir() and (
        p.suffix == ".zarr"
        or (p / ".zgroup").exists()
        or (p / ".zarray").exists()
        or (p / "zarr.json").exists()
    )


def is_data_file(p: Path) -> bool:
    if any(part.startswith(".") for part in p.parts[-1:]):
        return False
    if is_zarr(p):
        return True
    # files inside a zarr store are not separate records
    if any(is_zarr(parent) for parent in p.parents[:3]):
        return False
    return p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES


def read_npz(path: Path, *, start_time: Any = None) -> xr.DataArray:
    import xarray as xr

    with np.load(path, allow_pickle=False) as z:
        keys = list(z.files)
        dkey = next((k for k in ("data", "das", "strain_rate", "strain", "x_data") if k in keys), None)
        if dkey is None:
            two_d = [k for k in keys if z[k].ndim == 2]
            if len(two_d) != 1:
                raise FileFormatError(
                    f"{path}: npz holds {keys}; expected one 2-D array named 'data' "
                    "with 't' and 'x' coordinates"
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


def read_xarray(path: Path, *, variable: str | None = None) -> xr.DataArray:
    import xarray as xr

    if is_zarr(path):
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
    da.attrs.setdefault("format", "zarr" if is_zarr(path) else "netcdf")
    return da


def read_dascore(path: Path, **select: Any) -> list:
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
