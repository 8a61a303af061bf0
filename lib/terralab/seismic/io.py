"""Read and write seismic waveform datasets: CEED HDF5, SeisBench format, PhaseNet npz records, ObsPy files.

Three in-memory shapes are used across :mod:`terralab.seismic`:

* a **waveform**: ``xr.DataArray (component, time)`` of one station, components named ``E, N, Z`` (or
  ``1, 2`` / channel codes), ``time`` a datetime64 coordinate (UTC), attrs ``trace_id``,
  ``sampling_rate_hz``, ``units``;
* a **record set**: ``xr.DataArray (record, component, time)`` of many fixed-length labelled traces,
  components ``E, N, Z``, ``time`` in seconds since each trace's start, and per-record coordinates named
  as SeisBench names its metadata columns (``trace_p_arrival_sample``, ``trace_s_arrival_sample``,
  ``trace_p_polarity``, ``trace_start_time``, ``station_code`` …) — what training and evaluation take;
* an ``obspy.Stream`` for anything ObsPy reads.

Large files stay on disk: :func:`open_ceed` and :func:`read_seisbench` return lazy handles that read one
trace at a time with h5py.

Example
-------
>>> from terralab.seismic import io
>>> records = io.read_phasenet_npz(io.sample_path())      # 20 real NCEDC records shipped with terralab
>>> wave = io.record_waveform(records, 0)                  # (component, time) with UTC times
"""

from __future__ import annotations

import io as _io
import os
import re
import tarfile
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from ..errors import DataNotAvailableError, FileFormatError, InvalidInputError
from ..files import atomic_path

SAMPLING_RATE_HZ = 100.0
ENZ = ("E", "N", "Z")
SAMPLE_FILE = "ncedc_sample_20.npz"

#: Attributes every CEED event group must carry (ANCHORS.md, "Seismic ML").
CEED_EVENT_ATTRS = (
    "event_id",
    "event_time",
    "latitude",
    "longitude",
    "depth_km",
    "magnitude",
    "magnitude_type",
    "source",
    "begin_time",
    "end_time",
    "event_time_index",
    "sampling_rate",
    "nt",
    "nx",
)
#: Attributes of each CEED station dataset (the pick lists ``phase_*`` are optional).
CEED_STATION_ATTRS = (
    "network",
    "station",
    "location",
    "instrument",
    "component",
    "unit",
    "dt_s",
    "latitude",
    "longitude",
    "elevation_m",
    "distance_km",
    "azimuth",
    "back_azimuth",
    "takeoff_angle",
    "snr",
)
CEED_PICK_ATTRS = tuple(
    f"{p}_phase_{k}" for p in ("p", "s") for k in ("index", "time", "score", "polarity", "status")
)
CEED_PICK_LIST_ATTRS = (
    "phase_type",
    "phase_index",
    "phase_time",
    "phase_score",
    "phase_polarity",
    "phase_remark",
    "phase_picking_channel",
    "event_id",
)
_CEED_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%f"

# record-set coordinate → SeisBench metadata column: they are the same names on purpose.
_RECORD_COORDS_FLOAT = ("trace_p_arrival_sample", "trace_s_arrival_sample")


# ---------------------------------------------------------------------------------------------------
# small helpers
# ---------------------------------------------------------------------------------------------------
def _to_python(value: Any) -> Any:
    """HDF5 attribute → plain Python value (bytes → str, 0-d arrays → scalars, arrays → lists)."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.ndarray):
        if value.ndim == 0:
            return _to_python(value.item())
        return [_to_python(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _utc(value: Any) -> pd.Timestamp:
    """A time-like value (ISO string, Timestamp, datetime64) as a tz-aware UTC Timestamp."""
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _naive_utc(ts: pd.Timestamp) -> np.datetime64:
    return np.datetime64(_utc(ts).tz_localize(None).as_unit("ns"))


def time_axis(start: Any, n_samples: int, sampling_rate_hz: float) -> np.ndarray:
    """datetime64[ns] times of ``n_samples`` samples from ``start`` (UTC) at ``sampling_rate_hz``."""
    step_ns = 1e9 / float(sampling_rate_hz)
    return _naive_utc(_utc(start)) + np.round(np.arange(n_samples) * step_ns).astype("timedelta64[ns]")


def waveform_dataarray(
    data: np.ndarray,
    start: Any,
    sampling_rate_hz: float,
    components: Iterable[str] = ENZ,
    trace_id: str = "",
    units: str = "counts",
    **attrs: Any,
) -> xr.DataArray:
    """Wrap a (component, time) array as a waveform DataArray with UTC datetime64 times.

    Parameters
    ----------
    data : array (component, n_samples)
    start : time-like
        Time of the first sample (UTC).
    sampling_rate_hz : float
    components : sequence of str
        Component names, e.g. ``"ENZ"`` or ``["Z"]``.
    trace_id : str
        ``NET.STA.LOC.CH`` with the instrument code (e.g. ``NC.MEM..EH``).
    """
    data = np.asarray(data)
    components = list(components)
    if data.ndim != 2 or data.shape[0] != len(components):
        raise InvalidInputError(
            f"waveform data must be (component, time) with {len(components)} components, got {data.shape}"
        )
    return xr.DataArray(
        data,
        dims=("component", "time"),
        coords={"component": components, "time": time_axis(start, data.shape[1], sampling_rate_hz)},
        attrs={"trace_id": trace_id, "sampling_rate_hz": float(sampling_rate_hz), "units": units, **attrs},
        name="waveform",
    )


# ---------------------------------------------------------------------------------------------------
# record sets
# ---------------------------------------------------------------------------------------------------
def make_records(
    data: np.ndarray,
    names: Iterable[str],
    sampling_rate_hz: float = SAMPLING_RATE_HZ,
    components: Iterable[str] = ENZ,
    units: str = "counts",
    **coords: Iterable[Any],
) -> xr.DataArray:
    """Build a record set: ``xr.DataArray (record, component, time)`` with per-record coordinates.

    Parameters
    ----------
    data : array (record, component, n_samples)
    names : sequence of str
        One name per record (SeisBench's ``trace_name``).
    sampling_rate_hz : float
    **coords
        Per-record columns, SeisBench names preferred: ``trace_p_arrival_sample`` and
        ``trace_s_arrival_sample`` (sample index, NaN when absent), ``trace_start_time``, ``station_code`` …
    """
    data = np.asarray(data, dtype=np.float32)
    names = [str(n) for n in names]
    if data.ndim != 3 or data.shape[0] != len(names):
        raise InvalidInputError(
            f"record data must be (record, component, time) with {len(names)} records, got {data.shape}"
        )
    n = data.shape[-1]
    record_coords: dict[str, Any] = {}
    for key, values in coords.items():
        values = list(values)
        if len(values) != len(names):
            raise InvalidInputError(f"coordinate {key!r} has {len(values)} values for {len(names)} records")
        if key in _RECORD_COORDS_FLOAT:
            values = np.array([np.nan if v is None or pd.isna(v) else float(v) for v in values])
        elif key.endswith("_time"):
            values = np.array(
                [np.datetime64("NaT") if v is None or pd.isna(v) else _naive_utc(v) for v in values],
                dtype="datetime64[ns]",
            )
        record_coords[key] = ("record", values)
    for key in _RECORD_COORDS_FLOAT:
        record_coords.setdefault(key, ("record", np.full(len(names), np.nan)))
    record_coords.setdefault(
        "trace_start_time", ("record", np.full(len(names), np.datetime64("NaT"), "datetime64[ns]"))
    )
    time = xr.DataArray(
        np.arange(n) / sampling_rate_hz,
        dims="time",
        attrs={"units": "s", "long_name": "time since trace start"},
    )
    return xr.DataArray(
        data,
        dims=("record", "component", "time"),
        coords={"record": names, "component": list(components), "time": time, **record_coords},
        attrs={"sampling_rate_hz": float(sampling_rate_hz), "units": units},
        name="waveforms",
    )


def record_waveform(records: xr.DataArray, which: int | str) -> xr.DataArray:
    """One record of a record set as a waveform ``(component, time)`` with UTC datetime64 times.

    Records without a start time (``trace_start_time`` NaT) start at 1970-01-01 (only relative times
    then mean anything). The reference picks ride along as attrs ``p_time`` / ``s_time``.

    Parameters
    ----------
    records : xr.DataArray (record, component, time)
    which : int or str
        Position or record name.
    """
    _check_records(records)
    rec = records.isel(record=which) if isinstance(which, (int, np.integer)) else records.sel(record=which)
    start = rec["trace_start_time"].values
    start = pd.Timestamp(0) if pd.isna(start) else pd.Timestamp(start)
    sr = float(records.attrs.get("sampling_rate_hz", SAMPLING_RATE_HZ))
    attrs = {}
    for phase in ("p", "s"):
        idx = float(rec[f"trace_{phase}_arrival_sample"].values)
        if np.isfinite(idx):
            attrs[f"{phase}_time"] = (_utc(start) + pd.Timedelta(seconds=idx / sr)).isoformat()
    trace_id = str(rec["trace_id"].values) if "trace_id" in rec.coords else str(rec["record"].values)
    return waveform_dataarray(
        rec.values,
        start,
        sr,
        components=[str(c) for c in records["component"].values],
        trace_id=trace_id,
        units=records.attrs.get("units", "counts"),
        record=str(rec["record"].values),
        **attrs,
    )


def reference_picks(records: xr.DataArray) -> pd.DataFrame:
    """The analyst picks of a record set as a DataFrame: ``trace_id``, ``record``, ``phase``, ``time``, ``sample``, ``polarity``.

    ``time`` is a UTC Timestamp (relative to 1970-01-01 for records without a start time), ``sample`` the
    index within the record.
    """
    _check_records(records)
    sr = float(records.attrs.get("sampling_rate_hz", SAMPLING_RATE_HZ))
    rows = []
    starts = records["trace_start_time"].values
    ids = records["trace_id"].values if "trace_id" in records.coords else records["record"].values
    pol = (
        records["trace_p_polarity"].values
        if "trace_p_polarity" in records.coords
        else [None] * records.sizes["record"]
    )
    for i, name in enumerate(records["record"].values):
        start = pd.Timestamp(0) if pd.isna(starts[i]) else pd.Timestamp(starts[i])
        for phase in ("P", "S"):
            idx = float(records[f"trace_{phase.lower()}_arrival_sample"].values[i])
            if np.isfinite(idx):
                rows.append(
                    {
                        "trace_id": str(ids[i]),
                        "record": str(name),
                        "phase": phase,
                        "time": _utc(start) + pd.Timedelta(seconds=idx / sr),
                        "sample": idx,
                        "polarity": (pol[i] if phase == "P" and isinstance(pol[i], str) and pol[i] else None),
                    }
                )
    return pd.DataFrame(rows, columns=["trace_id", "record", "phase", "time", "sample", "polarity"])


def _check_records(records: Any) -> None:
    if not isinstance(records, xr.DataArray) or tuple(records.dims) != ("record", "component", "time"):
        raise InvalidInputError(
            "expected a record set: xr.DataArray with dims (record, component, time) "
            "(read_phasenet_npz, CEEDFile.to_records, SeisBenchDataset.to_records or make_records give one)"
        )


def stitch_records(
    records: xr.DataArray,
    start: Any = "2020-01-01T00:00:00",
    equalize_noise: bool = True,
    taper_s: float = 0.5,
) -> tuple[xr.DataArray, pd.DataFrame]:
    """Concatenate records end to end into one continuous waveform, with the reference picks on its time axis.

    Real records placed back to back make a continuous test stream whose true arrivals are known. So that
    it looks like one station recording several events, each record is scaled to unit pre-P noise
    (robust σ of the samples before the P pick, per component) and its ends are tapered, which removes the
    steps a plain concatenation would have at the joins.

    Parameters
    ----------
    records : xr.DataArray (record, component, time)
    start : time-like
        UTC time of the first sample.
    equalize_noise : bool
        Scale each record by its pre-P noise level.
    taper_s : float
        Cosine taper at both ends of each record, in s.

    Returns
    -------
    waveform : xr.DataArray (component, time), attrs ``trace_id`` "XX.STITCH..HH"
    picks : pd.DataFrame with ``trace_id``, ``phase``, ``time``, ``record``
    """
    _check_records(records)
    sr = float(records.attrs.get("sampling_rate_hz", SAMPLING_RATE_HZ))
    n = records.sizes["time"]
    data = records.values.astype(np.float64)
    if equalize_noise:
        for i in range(data.shape[0]):
            p = records["trace_p_arrival_sample"].values[i]
            end = int(p) - 50 if np.isfinite(p) and p > 150 else n
            noise = data[i, :, :end]
            sigma = 1.4826 * np.median(np.abs(noise - np.median(noise, axis=-1, keepdims=True)), axis=-1)
            data[i] /= np.where(sigma > 0, sigma, 1.0)[:, None]
    k = int(round(taper_s * sr))
    if k > 0:
        ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(k) + 0.5) / k)
        data[..., :k] *= ramp
        data[..., -k:] *= ramp[::-1]
    data = np.concatenate(list(data), axis=-1).astype(np.float32)
    start = _utc(start)
    trace_id = "XX.STITCH..HH"
    wave = waveform_dataarray(
        data,
        start,
        sr,
        components=[str(c) for c in records["component"].values],
        trace_id=trace_id,
        units="noise sigma" if equalize_noise else records.attrs.get("units", "counts"),
    )
    rows = []
    for i, name in enumerate(records["record"].values):
        for phase in ("P", "S"):
            idx = float(records[f"trace_{phase.lower()}_arrival_sample"].values[i])
            if np.isfinite(idx):
                rows.append(
                    {
                        "trace_id": trace_id,
                        "phase": phase,
                        "record": str(name),
                        "time": start + pd.Timedelta(seconds=(i * n + idx) / sr),
                    }
                )
    return wave, pd.DataFrame(rows, columns=["trace_id", "phase", "time", "record"])


# ---------------------------------------------------------------------------------------------------
# PhaseNet npz records
# ---------------------------------------------------------------------------------------------------
_FNAME_TIME = re.compile(r"_(\d{14})(\d{2})")


def _start_from_fname(fname: str) -> pd.Timestamp | None:
    """The timestamp PhaseNet's file names carry (YYYYMMDDhhmmss + centiseconds), or None."""
    m = _FNAME_TIME.search(fname)
    if not m:
        return None
    try:
        return _utc(pd.to_datetime(m.group(1), format="%Y%m%d%H%M%S")) + pd.Timedelta(
            milliseconds=10 * int(m.group(2))
        )
    except ValueError:
        return None


def _record_from_npz(name: str, npz: Any) -> dict[str, Any]:
    missing = [k for k in ("data", "itp", "its") if k not in npz]
    if missing:
        raise FileFormatError(
            f"{name}: PhaseNet npz lacks {missing}; expected keys data (n, 3), itp, its, channels"
        )
    data = np.asarray(npz["data"], dtype=np.float32)
    if data.ndim != 2 or data.shape[1] != 3:
        raise FileFormatError(f"{name}: PhaseNet npz 'data' must be (n_samples, 3) E,N,Z, got {data.shape}")
    channels = str(npz["channels"]) if "channels" in npz else ""
    return {
        "fname": name,
        "data": data.T,
        "itp": float(npz["itp"]),
        "its": float(npz["its"]),
        "channels": channels,
    }


def _records_from_rows(rows: list[dict[str, Any]]) -> xr.DataArray:
    lengths = {r["data"].shape[1] for r in rows}
    if len(lengths) != 1:
        raise FileFormatError(
            f"PhaseNet records have different lengths {sorted(lengths)}; read them separately"
        )
    names = [r["fname"] for r in rows]
    networks, stations, ids = [], [], []
    for r in rows:
        parts = Path(r["fname"]).stem.split("_")
        net, sta = (parts[0], parts[1]) if len(parts) >= 2 else ("", parts[0])
        inst = r["channels"].split("_")[0][:2] if r["channels"] else ""
        networks.append(net)
        stations.append(sta)
        ids.append(f"{net}.{sta}..{inst}")
    return make_records(
        np.stack([r["data"] for r in rows]),
        names,
        trace_p_arrival_sample=[r["itp"] for r in rows],
        trace_s_arrival_sample=[r["its"] for r in rows],
        trace_start_time=[_start_from_fname(n) for n in names],
        trace_channel=[r["channels"] for r in rows],
        station_network_code=networks,
        station_code=stations,
        trace_id=ids,
    ).assign_attrs(source="PhaseNet NCEDC npz records (AI4EPS/PhaseNet, MIT)")


def _find_csv(path: Path, csv: str | os.PathLike | None) -> Path | None:
    if csv is not None:
        return Path(csv)
    base = path if path.is_dir() else path.parent
    for candidate in (base / "waveform.csv", base.parent / "waveform.csv"):
        if candidate.exists():
            return candidate
    return None


def read_phasenet_npz(
    path: str | os.PathLike,
    csv: str | os.PathLike | None = None,
    max_records: int | None = None,
    names: Iterable[str] | None = None,
) -> xr.DataArray:
    """Read PhaseNet-style npz records into a record set ``(record, component, time)``.

    Accepts PhaseNet's ``waveform_train.tar.gz`` (read straight from the archive), a directory of
    ``*.npz``, one ``*.npz`` record, or terralab's packed sample (one npz holding many records). Each
    record npz has ``data`` (n, 3) columns E,N,Z (single-component records hold zeros in E,N), ``itp``,
    ``its`` (analyst P/S sample) and ``channels``.

    Parameters
    ----------
    path : path
    csv : path, optional
        PhaseNet's ``waveform.csv`` (``fname,itp,its,channels``) fixing which records and in what order;
        found automatically beside ``path``. Without it records come sorted by name.
    max_records : int, optional
        Read only the first records (in csv order).
    names : sequence of str, optional
        Read only these file names.

    Returns
    -------
    xr.DataArray (record, component [E,N,Z], time [s]) float32, counts; coords
    ``trace_p_arrival_sample``, ``trace_s_arrival_sample``, ``trace_start_time`` (parsed from the file name;
    PhaseNet does not document which time it is), ``trace_channel``, ``station_code``, ``trace_id``.
    """
    path = Path(path)
    if not path.exists():
        raise DataNotAvailableError(
            f"{path} does not exist; get PhaseNet's records with terralab.catalog.fetch('seismic_phasenet_ncedc_waveforms')"
        )
    order: list[str] | None = None
    csv_path = _find_csv(path, csv) if not (path.is_file() and path.suffix == ".npz") else None
    if csv_path is not None and csv_path.exists():
        order = pd.read_csv(csv_path)["fname"].astype(str).tolist()
    if names is not None:
        wanted = [str(n) for n in names]
        order = [n for n in order if n in set(wanted)] if order is not None else wanted
    if max_records is not None and order is not None:
        order = order[:max_records]
    wanted_set = set(order) if order is not None else None

    rows: dict[str, dict[str, Any]] = {}
    packed_order: list[str] | None = None
    try:
        if path.is_dir():
            files = sorted(path.glob("*.npz"))
            for f in files:
                if wanted_set is None or f.name in wanted_set:
                    with np.load(f) as npz:
                        rows[f.name] = _record_from_npz(f.name, npz)
        elif tarfile.is_tarfile(path):
            with tarfile.open(path, "r:*") as tar:
                for member in tar:
                    fname = Path(member.name).name
                    if not member.isfile() or not fname.endswith(".npz"):
                        continue
                    if wanted_set is not None and fname not in wanted_set:
                        continue
                    blob = tar.extractfile(member).read()
                    with np.load(_io.BytesIO(blob)) as npz:
                        rows[fname] = _record_from_npz(fname, npz)
                    if wanted_set is not None and len(rows) == len(wanted_set):
                        break
        else:
            with np.load(path, allow_pickle=False) as npz:
                if "fname" in npz.files:  # terralab's packed sample: many records in one file
                    data = np.asarray(npz["data"], dtype=np.float32)
                    packed_order = npz["fname"].astype(str).tolist()
                    for i, fname in enumerate(packed_order):
                        if wanted_set is None or fname in wanted_set:
                            rows[fname] = {
                                "fname": fname,
                                "data": data[i].T,
                                "itp": float(npz["itp"][i]),
                                "its": float(npz["its"][i]),
                                "channels": str(npz["channels"][i]),
                            }
                else:
                    rows[path.name] = _record_from_npz(path.name, npz)
    except (OSError, ValueError, tarfile.TarError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        if isinstance(exc, FileFormatError):
            raise
        raise FileFormatError(f"cannot read PhaseNet records from {path}: {exc}") from exc
    if not rows:
        raise FileFormatError(f"no PhaseNet npz records found in {path}")
    if order is None:
        order = packed_order if packed_order is not None else sorted(rows)
        if max_records is not None:
            order = order[:max_records]
    missing = [n for n in order if n not in rows]
    if missing:
        raise FileFormatError(
            f"{len(missing)} records listed in the csv are not in {path} (e.g. {missing[0]})"
        )
    return _records_from_rows([rows[n] for n in order])


def save_records_npz(records: xr.DataArray, path: str | os.PathLike) -> Path:
    """Write a record set as one compressed npz (float32; terralab's packed PhaseNet sample format).

    The file holds ``fname``, ``data`` (record, n, 3) E,N,Z, ``itp``, ``its``, ``channels`` and reads back
    with :func:`read_phasenet_npz`.
    """
    _check_records(records)
    if [str(c) for c in records["component"].values] != list(ENZ):
        raise InvalidInputError("save_records_npz needs components E, N, Z in that order")
    path = Path(path)
    # an open handle, so numpy does not append ".npz" to a target named otherwise
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(
            fh,
            fname=records["record"].values.astype(str),
            data=np.ascontiguousarray(records.values.transpose(0, 2, 1).astype(np.float32)),
            itp=records["trace_p_arrival_sample"].values.astype(np.int64),
            its=records["trace_s_arrival_sample"].values.astype(np.int64),
            channels=(
                records["trace_channel"].values.astype(str)
                if "trace_channel" in records.coords
                else np.array([""] * records.sizes["record"])
            ),
        )
    return path


def sample_path() -> Path:
    """Path of the ~20 real NCEDC records shipped with terralab (``lib/terralab/data/seismic``)."""
    return Path(__file__).resolve().parents[1] / "data" / "seismic" / SAMPLE_FILE


def read_sample(max_records: int | None = None) -> xr.DataArray:
    """The embedded real sample: the first 20 records of PhaseNet's ``waveform.csv`` (MIT), as a record set."""
    return read_phasenet_npz(sample_path(), max_records=max_records)


# ---------------------------------------------------------------------------------------------------
# ObsPy files and Streams
# ---------------------------------------------------------------------------------------------------
def read_waveforms(path: str | os.PathLike, format: str | None = None, **kwargs: Any):
    """Read any waveform file ObsPy understands (miniSEED, SAC, GSE2, …) into an ``obspy.Stream``.

    Parameters
    ----------
    path : path or glob
    format : str, optional
        ObsPy format name; detected from the content by default.
    """
    import obspy

    try:
        return obspy.read(str(path), format=format, **kwargs)
    except FileNotFoundError as exc:
        raise DataNotAvailableError(f"no waveform file at {path}") from exc
    except Exception as exc:  # ObsPy raises TypeError / ValueError / its own errors for unknown formats
        raise FileFormatError(f"ObsPy cannot read {path}: {exc}; pass format= if detection fails") from exc


def dataarray_to_stream(waveform: xr.DataArray):
    """A waveform ``(component, time)`` as an ``obspy.Stream`` (one trace per component; NaN → masked)."""
    import obspy

    if not isinstance(waveform, xr.DataArray) or set(waveform.dims) != {"component", "time"}:
        raise InvalidInputError("expected an xr.DataArray with dims (component, time)")
    waveform = waveform.transpose("component", "time")
    times = pd.DatetimeIndex(waveform["time"].values)
    sr = float(waveform.attrs.get("sampling_rate_hz") or 1.0 / np.median(np.diff(times.asi8) / 1e9))
    net, sta, loc, inst = (str(waveform.attrs.get("trace_id", "XX.STA..HH")).split(".") + ["", "", "", ""])[
        :4
    ]
    stream = obspy.Stream()
    for comp in waveform["component"].values:
        data = np.asarray(waveform.sel(component=comp).values, dtype=np.float64)
        if np.isnan(data).any():
            data = np.ma.masked_invalid(data)
        header = {
            "network": net,
            "station": sta,
            "location": loc,
            "channel": f"{inst}{str(comp)[-1]}",
            "sampling_rate": sr,
            "starttime": obspy.UTCDateTime(times[0].value / 1e9),
        }
        stream.append(obspy.Trace(data=data, header=header))
    return stream


# ---------------------------------------------------------------------------------------------------
# CEED
# ---------------------------------------------------------------------------------------------------
def _h5py():
    import h5py

    return h5py


class CEEDEvent:
    """One event of a CEED file: its attributes and lazy access to its station traces.

    ``event["NC.MEM..EH"]`` reads one trace → waveform ``(component, time)``; iterating yields every
    trace in turn. Nothing is read before it is asked for.
    """

    def __init__(self, ceed: CEEDFile, event_id: str):
        self._ceed = ceed
        self.event_id = event_id
        self._group = ceed._group(event_id)
        self.attrs = ceed._event_attrs(event_id, self._group)

    @property
    def station_ids(self) -> list[str]:
        """``NET.STA.LOC.INST`` of every trace of this event."""
        return [k for k in self._group if isinstance(self._group[k], _h5py().Dataset)]

    def __len__(self) -> int:
        return len(self.station_ids)

    def __iter__(self) -> Iterator[xr.DataArray]:
        for sid in self.station_ids:
            yield self[sid]

    def __getitem__(self, station_id: str) -> xr.DataArray:
        return self._ceed.waveform(self.event_id, station_id)

    @property
    def picks(self) -> pd.DataFrame:
        """Station metadata and P/S picks of this event, one row per trace."""
        return self._ceed._station_table(self.event_id, self._group)

    def __repr__(self) -> str:
        a = self.attrs
        return f"<CEEDEvent {self.event_id} {a.get('event_time')} M{a.get('magnitude')} {len(self)} traces>"


class CEEDFile:
    """Lazy handle on a CEED per-year HDF5 file (``/{event_id}/{NET.STA.LOC.INST}``, float32 (3, nt), E,N,Z).

    Opening reads nothing but the file's index; :attr:`events` and :attr:`picks` read attributes only
    (never waveforms), and traces are read one at a time, so a multi-GB year file is never loaded whole.
    Use as a context manager or call :meth:`close`.

    Example
    -------
    >>> with open_ceed("2023.h5") as ceed:
    ...     ev = ceed[ceed.event_ids[0]]
    ...     wave = next(iter(ev))            # xr.DataArray (component, time)
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if not self.path.exists():
            raise DataNotAvailableError(
                f"CEED file {self.path} does not exist; fetch a year with terralab.catalog.fetch('seismic_ceed_nc_2023') "
                "or write a synthetic one with terralab.seismic.synthetic.write_synthetic_ceed"
            )
        h5py = _h5py()
        try:
            self._file = h5py.File(self.path, "r")
            self._event_ids = [k for k in self._file if isinstance(self._file[k], h5py.Group)]
        except (OSError, KeyError, RuntimeError) as exc:
            raise FileFormatError(
                f"{self.path} is not a readable HDF5 file ({exc}); it may be truncated or corrupt: download it again"
            ) from exc
        self._events: pd.DataFrame | None = None
        self._picks: pd.DataFrame | None = None

    # --- container protocol ------------------------------------------------------------------------
    @property
    def event_ids(self) -> list[str]:
        return list(self._event_ids)

    def __len__(self) -> int:
        return len(self._event_ids)

    def __iter__(self) -> Iterator[CEEDEvent]:
        for eid in self._event_ids:
            yield CEEDEvent(self, eid)

    def __getitem__(self, event_id: str) -> CEEDEvent:
        return CEEDEvent(self, event_id)

    def __enter__(self) -> CEEDFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the HDF5 file."""
        file = getattr(self, "_file", None)
        if file is not None:
            file.close()  # h5py makes closing twice harmless

    def __repr__(self) -> str:
        return f"<CEEDFile {self.path.name}: {len(self)} events>"

    # --- metadata ----------------------------------------------------------------------------------
    def _group(self, event_id: str):
        try:
            group = self._file[event_id]
        except KeyError as exc:
            raise InvalidInputError(f"event {event_id!r} is not in {self.path.name}") from exc
        except OSError as exc:
            raise FileFormatError(
                f"{self.path}: event {event_id!r} cannot be read ({exc}); the file may be corrupt"
            ) from exc
        if not isinstance(group, _h5py().Group):
            raise InvalidInputError(f"{event_id!r} in {self.path.name} is not an event group")
        return group

    def _event_attrs(self, event_id: str, group) -> dict[str, Any]:
        try:
            attrs = {k: _to_python(v) for k, v in group.attrs.items()}
        except OSError as exc:
            raise FileFormatError(
                f"{self.path}: attributes of event {event_id!r} cannot be read ({exc})"
            ) from exc
        missing = [k for k in CEED_EVENT_ATTRS if k not in attrs]
        if missing:
            raise FileFormatError(
                f"{self.path.name}: event group {event_id!r} lacks the CEED attributes {missing}; a CEED event "
                f"needs {list(CEED_EVENT_ATTRS)} (ANCHORS.md). Fix the file or rewrite it with write_synthetic_ceed's layout"
            )
        return attrs

    @property
    def events(self) -> pd.DataFrame:
        """One row per event (its attributes), indexed by ``event_id``; ``event_time`` as UTC Timestamps."""
        if self._events is None:
            rows = [self._event_attrs(eid, self._group(eid)) for eid in self._event_ids]
            df = pd.DataFrame(
                rows,
                columns=list(CEED_EVENT_ATTRS) + sorted({k for r in rows for k in r} - set(CEED_EVENT_ATTRS)),
            )
            for col in ("event_time", "begin_time", "end_time"):
                df[col] = pd.to_datetime(df[col], utc=True, format="ISO8601")
            df["n_traces"] = [len(self._file[eid].keys()) for eid in self._event_ids]
            self._events = df.set_index("event_id", drop=False).rename_axis(None)
        return self._events

    def _station_table(self, event_id: str, group) -> pd.DataFrame:
        rows = []
        for sid, ds in group.items():
            if not isinstance(ds, _h5py().Dataset):
                continue
            try:
                attrs = {k: _to_python(v) for k, v in ds.attrs.items()}
            except OSError as exc:
                raise FileFormatError(
                    f"{self.path}: attributes of {event_id}/{sid} cannot be read ({exc})"
                ) from exc
            row = {"event_id": event_id, "station_id": sid}
            for key in CEED_STATION_ATTRS + CEED_PICK_ATTRS:
                row[key] = attrs.get(key)
            rows.append(row)
        df = pd.DataFrame(rows, columns=["event_id", "station_id", *CEED_STATION_ATTRS, *CEED_PICK_ATTRS])
        for col in ("p_phase_time", "s_phase_time"):
            df[col] = pd.to_datetime(df[col], utc=True, format="ISO8601")
        for col in ("p_phase_index", "s_phase_index"):
            df[col] = pd.to_numeric(df[col], errors="coerce")
        return df

    @property
    def picks(self) -> pd.DataFrame:
        """One row per event–station trace: station metadata, P and S pick index/time/score/polarity/status.

        Reads attributes only. For a large file this touches every trace's header once (seconds), and is
        cached.
        """
        if self._picks is None:
            tables = [self._station_table(eid, self._group(eid)) for eid in self._event_ids]
            self._picks = pd.concat(tables, ignore_index=True) if tables else self._station_table("", {})
        return self._picks

    # --- waveforms ---------------------------------------------------------------------------------
    def waveform(self, event_id: str, station_id: str) -> xr.DataArray:
        """Read one trace → waveform ``(component [E,N,Z], time)`` in µm/s (µm/s² for accelerometers).

        Coordinates: UTC datetime64 times from the event's ``begin_time``. Attrs: the station attributes,
        the event id, ``trace_id``, ``sampling_rate_hz`` and the P/S pick times.
        """
        group = self._group(event_id)
        event = self._event_attrs(event_id, group)
        if station_id not in group:
            raise InvalidInputError(f"trace {station_id!r} is not in event {event_id!r} of {self.path.name}")
        ds = group[station_id]
        try:
            data = np.asarray(ds[()], dtype=np.float32)
            attrs = {k: _to_python(v) for k, v in ds.attrs.items()}
        except OSError as exc:
            raise FileFormatError(
                f"{self.path}: trace {event_id}/{station_id} cannot be read ({exc}); the file is corrupt"
            ) from exc
        if data.ndim != 2 or data.shape[0] != 3:
            raise FileFormatError(
                f"{self.path}: trace {event_id}/{station_id} has shape {data.shape}, CEED traces are (3, nt) E,N,Z"
            )
        sr = float(event["sampling_rate"])
        keep = {k: v for k, v in attrs.items() if k not in ("event_id",)}
        return waveform_dataarray(
            data,
            event["begin_time"],
            sr,
            components=ENZ,
            trace_id=station_id,
            units=str(attrs.get("unit", "um/s")),
            event_id=event_id,
            **keep,
        )

    def to_records(
        self, max_traces: int | None = None, require_p: bool = True, progress: bool = False
    ) -> xr.DataArray:
        """Read traces into a record set ``(record, component, time)`` for training or evaluation.

        Parameters
        ----------
        max_traces : int, optional
            Stop after this many traces (in file order), so a year file can be sampled cheaply.
        require_p : bool
            Skip traces without a P pick.
        progress : bool
            Show a progress bar.
        """
        from tqdm import tqdm

        data, names, meta = [], [], []
        with tqdm(total=max_traces, disable=not progress, desc="CEED traces") as bar:
            for eid in self._event_ids:
                group = self._group(eid)
                event = self._event_attrs(eid, group)
                table = self._station_table(eid, group)
                for _, row in table.iterrows():
                    if require_p and pd.isna(row["p_phase_index"]):
                        continue
                    wave = self.waveform(eid, row["station_id"])
                    data.append(wave.values)
                    names.append(f"{eid}.{row['station_id']}")
                    meta.append((event, row))
                    bar.update(1)
                    if max_traces is not None and len(data) >= max_traces:
                        break
                if max_traces is not None and len(data) >= max_traces:
                    break
        if not data:
            raise InvalidInputError(f"{self.path.name} holds no traces with picks to read")
        lengths = {d.shape[-1] for d in data}
        if len(lengths) != 1:
            raise FileFormatError(f"{self.path.name}: traces have different lengths {sorted(lengths)}")
        sr = float(meta[0][0]["sampling_rate"])
        return make_records(
            np.stack(data),
            names,
            sampling_rate_hz=sr,
            units=str(meta[0][1]["unit"] or "um/s"),
            trace_id=[r["station_id"] for _, r in meta],
            trace_start_time=[e["begin_time"] for e, _ in meta],
            trace_p_arrival_sample=[r["p_phase_index"] for _, r in meta],
            trace_s_arrival_sample=[r["s_phase_index"] for _, r in meta],
            trace_p_polarity=[r["p_phase_polarity"] or "" for _, r in meta],
            station_network_code=[r["network"] for _, r in meta],
            station_code=[r["station"] for _, r in meta],
            station_location_code=[r["location"] or "" for _, r in meta],
            station_latitude_deg=[r["latitude"] for _, r in meta],
            station_longitude_deg=[r["longitude"] for _, r in meta],
            station_elevation_m=[r["elevation_m"] for _, r in meta],
            path_ep_distance_km=[r["distance_km"] for _, r in meta],
            source_id=[e["event_id"] for e, _ in meta],
            source_origin_time=[e["event_time"] for e, _ in meta],
            source_latitude_deg=[e["latitude"] for e, _ in meta],
            source_longitude_deg=[e["longitude"] for e, _ in meta],
            source_depth_km=[e["depth_km"] for e, _ in meta],
            source_magnitude=[e["magnitude"] for e, _ in meta],
            source_magnitude_type=[e["magnitude_type"] for e, _ in meta],
        ).assign_attrs(source=f"CEED file {self.path.name}")


def open_ceed(path: str | os.PathLike, **kwargs: Any) -> CEEDFile:
    """Open a CEED per-year HDF5 file lazily (see :class:`CEEDFile`).

    Parameters
    ----------
    path : path
        e.g. ``waveform_h5/2023.h5`` of ``AI4EPS/quakeflow_nc`` or a file from
        :func:`terralab.seismic.synthetic.write_synthetic_ceed`.
    """
    if kwargs:
        raise InvalidInputError(f"open_ceed takes no options, got {sorted(kwargs)}")
    return CEEDFile(path)


# ---------------------------------------------------------------------------------------------------
# SeisBench format
# ---------------------------------------------------------------------------------------------------
_BUCKET = re.compile(r"^(?P<bucket>[^$]+)\$(?P<index>\d+)(?:,(?P<rest>.*))?$")


def write_seisbench(
    records: xr.DataArray, directory: str | os.PathLike, component_order: str = "ZNE"
) -> Path:
    """Write a record set in SeisBench's format: ``metadata.csv`` + ``waveforms.hdf5``.

    Traces go to ``data/{trace_name}`` as (channel, sample) float32 in ``component_order``; ``data_format/``
    holds ``dimension_order`` ("CW"), ``component_order``, ``sampling_rate``. Metadata columns are the
    record coordinates (SeisBench names: ``trace_name``, ``trace_p_arrival_sample``,
    ``trace_sampling_rate_hz``, ``source_*``, ``station_*`` …). Both files are written to temporary names
    and renamed, so a failed write leaves nothing half-written.

    Parameters
    ----------
    records : xr.DataArray (record, component, time)
    directory : path
        Created if needed.
    component_order : str
        Channel order inside the HDF5 file; SeisBench's default is ``"ZNE"``.
    """
    h5py = _h5py()
    _check_records(records)
    comps = [str(c) for c in records["component"].values]
    if sorted(component_order) != sorted(comps):
        raise InvalidInputError(
            f"component_order {component_order!r} does not name the record components {comps}"
        )
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    ordered = records.sel(component=list(component_order))
    meta = pd.DataFrame({"trace_name": records["record"].values.astype(str)})
    for name, coord in records.coords.items():
        if name in ("record", "component", "time") or coord.dims != ("record",):
            continue
        values = coord.values
        if np.issubdtype(values.dtype, np.datetime64):
            values = [pd.Timestamp(v).strftime(_CEED_TIME_FORMAT) if not pd.isna(v) else "" for v in values]
        meta[name] = values
    meta["trace_sampling_rate_hz"] = float(records.attrs.get("sampling_rate_hz", SAMPLING_RATE_HZ))
    meta["trace_npts"] = records.sizes["time"]
    meta["trace_component_order"] = component_order

    # metadata.csv (outer block) is renamed into place last: a reader that finds it finds the waveforms too
    with (
        atomic_path(directory / "metadata.csv") as csv_tmp,
        atomic_path(directory / "waveforms.hdf5") as h5_tmp,
    ):
        with h5py.File(h5_tmp, "w") as f:
            fmt = f.create_group("data_format")
            fmt.create_dataset("dimension_order", data="CW")
            fmt.create_dataset("component_order", data=component_order)
            fmt.create_dataset(
                "sampling_rate", data=float(records.attrs.get("sampling_rate_hz", SAMPLING_RATE_HZ))
            )
            fmt.create_dataset("measurement", data=str(records.attrs.get("measurement", "velocity")))
            fmt.create_dataset("unit", data=str(records.attrs.get("units", "counts")))
            data = f.create_group("data")
            for name, trace in zip(meta["trace_name"], ordered.values):
                data.create_dataset(name, data=trace.astype(np.float32))
        meta.to_csv(csv_tmp, index=False)
    return directory


_SEISBENCH_TEXT_COLUMNS = (
    "trace_name",
    "trace_id",
    "trace_channel",
    "trace_p_polarity",
    "trace_s_polarity",
    "station_network_code",
    "station_code",
    "station_location_code",
    "source_id",
    "source_magnitude_type",
    "split",
)


class SeisBenchDataset:
    """Lazy handle on a SeisBench-format dataset directory (``metadata.csv`` + ``waveforms.hdf5``).

    ``ds[i]`` reads trace ``i`` → waveform ``(component [E,N,Z], time)``; ``ds.metadata`` is the table.
    Handles plain (``data/{trace_name}``) and bucketed (``bucket$index,:3,:n``) trace names, and any
    ``component_order`` / ``dimension_order`` the file declares.
    """

    def __init__(self, directory: str | os.PathLike):
        h5py = _h5py()
        self.path = Path(directory)
        csv = self.path / "metadata.csv"
        h5 = self.path / "waveforms.hdf5"
        if not csv.exists() or not h5.exists():
            raise DataNotAvailableError(
                f"{self.path} is not a SeisBench dataset: it needs metadata.csv and waveforms.hdf5"
            )
        try:
            # codes such as station "0012" or location "" must stay strings, not become numbers / NaN
            self.metadata = pd.read_csv(
                csv, low_memory=False, dtype={c: str for c in _SEISBENCH_TEXT_COLUMNS}
            )
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            raise FileFormatError(f"{csv} cannot be parsed as CSV: {exc}") from exc
        text = [c for c in _SEISBENCH_TEXT_COLUMNS if c in self.metadata.columns]
        self.metadata[text] = self.metadata[text].fillna("")
        if "trace_name" not in self.metadata.columns:
            raise FileFormatError(f"{csv} has no trace_name column; it is not SeisBench metadata")
        try:
            self._file = h5py.File(h5, "r")
            fmt = self._file.get("data_format")
            read = lambda k, d: _to_python(fmt[k][()]) if fmt is not None and k in fmt else d
            self.component_order = str(read("component_order", "ZNE"))
            self.dimension_order = str(read("dimension_order", "CW"))
            self.sampling_rate_hz = float(read("sampling_rate", np.nan))
            self.unit = str(read("unit", "counts"))
        except (OSError, KeyError) as exc:
            raise FileFormatError(
                f"{h5} is not a readable HDF5 file ({exc}); it may be truncated or corrupt"
            ) from exc
        if sorted(self.dimension_order) != ["C", "W"]:
            raise FileFormatError(
                f"{h5}: dimension_order {self.dimension_order!r} is not supported (need C and W)"
            )

    def __len__(self) -> int:
        return len(self.metadata)

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> SeisBenchDataset:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _raw(self, i: int) -> np.ndarray:
        name = str(self.metadata["trace_name"].iloc[i])
        try:
            m = _BUCKET.match(name)
            if m:
                arr = self._file["data"][m.group("bucket")][int(m.group("index"))]
                if self.dimension_order.index("C") > self.dimension_order.index("W"):
                    arr = arr.T
                if m.group("rest"):
                    c_slice, w_slice = (s.strip() for s in (m.group("rest").split(",") + [":"])[:2])
                    arr = arr[_parse_slice(c_slice), _parse_slice(w_slice)]
                return np.asarray(arr, dtype=np.float32)
            arr = np.asarray(self._file["data"][name][()], dtype=np.float32)
        except KeyError as exc:
            raise FileFormatError(f"trace {name!r} of metadata.csv is not in waveforms.hdf5") from exc
        except OSError as exc:
            raise FileFormatError(
                f"trace {name!r} cannot be read from waveforms.hdf5 ({exc}); the file is corrupt"
            ) from exc
        if self.dimension_order == "WC":
            arr = arr.T
        return arr

    def __getitem__(self, i: int) -> xr.DataArray:
        row = self.metadata.iloc[i]
        arr = self._raw(i)
        comps = list(self.component_order)
        sr = float(row.get("trace_sampling_rate_hz", self.sampling_rate_hz))
        start = row.get("trace_start_time", None)
        start = pd.Timestamp(0) if start is None or pd.isna(start) or start == "" else start
        wave = waveform_dataarray(
            arr,
            start,
            sr,
            components=comps,
            trace_id=str(row.get("trace_id", row["trace_name"])),
            units=self.unit,
            trace_name=str(row["trace_name"]),
        )
        order = [c for c in ENZ if c in comps] + [c for c in comps if c not in ENZ]
        return wave.sel(component=order)

    def to_records(self, indices: Iterable[int] | None = None) -> xr.DataArray:
        """Read traces (all, or ``indices``) into a record set ``(record, component [E,N,Z], time)``."""
        idx = list(range(len(self))) if indices is None else list(indices)
        waves = [self[i] for i in idx]
        lengths = {w.sizes["time"] for w in waves}
        if len(lengths) != 1:
            raise FileFormatError(
                f"traces have different lengths {sorted(lengths)}; select equal-length traces"
            )
        meta = self.metadata.iloc[idx]
        sr = float(waves[0].attrs["sampling_rate_hz"])
        coords = {
            c: meta[c].tolist()
            for c in meta.columns
            if c not in ("trace_name", "trace_sampling_rate_hz", "trace_npts", "trace_component_order")
        }
        if "trace_p_polarity" in coords:
            coords["trace_p_polarity"] = ["" if pd.isna(v) else str(v) for v in coords["trace_p_polarity"]]
        for c in ("trace_start_time", "source_origin_time"):
            if c in coords:
                coords[c] = [None if (pd.isna(v) or v == "") else v for v in coords[c]]
        return make_records(
            np.stack([w.sel(component=list(ENZ)).values for w in waves]),
            meta["trace_name"].astype(str).tolist(),
            sampling_rate_hz=sr,
            units=self.unit,
            **coords,
        ).assign_attrs(source=f"SeisBench dataset {self.path}")


def _parse_slice(text: str) -> slice:
    parts = [p.strip() for p in text.split(":")]
    nums = [int(p) if p else None for p in parts]
    return slice(*nums) if len(nums) > 1 else slice(nums[0], nums[0] + 1)


def read_seisbench(directory: str | os.PathLike) -> SeisBenchDataset:
    """Open a SeisBench-format dataset directory lazily (see :class:`SeisBenchDataset`)."""
    return SeisBenchDataset(directory)


def three_component(records: xr.DataArray) -> xr.DataArray:
    """The records whose E and N components hold data (single-component records store zeros there)."""
    _check_records(records)
    e = records.sel(component="E").values
    n = records.sel(component="N").values
    keep = (np.abs(np.nan_to_num(e)).max(axis=-1) > 0) & (np.abs(np.nan_to_num(n)).max(axis=-1) > 0)
    return records.isel(record=np.flatnonzero(keep))


def load_records(dataset: str = "sample", max_records: int | None = None) -> xr.DataArray:
    """A labelled record set by name or path — what the seismic notebook's ``dataset`` parameter accepts.

    Parameters
    ----------
    dataset : str
        ``"sample"`` (the 20 embedded NCEDC records), ``"ncedc"`` (PhaseNet's 154 records through the data
        catalog: mirror, cache or download), ``"ceed_synthetic"`` (a synthetic CEED file), or a path: a CEED
        ``.h5``, a SeisBench directory (``metadata.csv`` + ``waveforms.hdf5``), a PhaseNet ``.npz`` /
        ``.tar.gz`` / directory of npz.
    max_records : int, optional
        Keep the first records only.
    """
    if dataset == "sample":
        return read_sample(max_records)
    if dataset == "ncedc":
        from terralab import catalog

        return read_phasenet_npz(
            catalog.fetch("seismic_phasenet_ncedc_waveforms"),
            csv=catalog.fetch("seismic_phasenet_ncedc_picks"),
            max_records=max_records,
        )
    if dataset == "ceed_synthetic":
        from .synthetic import ceed_example

        with ceed_example() as ceed:
            return ceed.to_records(max_traces=max_records)
    path = Path(dataset)
    if not path.exists():
        raise DataNotAvailableError(
            f"dataset {dataset!r} is neither 'sample', 'ncedc', 'ceed_synthetic' nor an existing path"
        )
    if path.is_dir() and (path / "metadata.csv").exists():
        with read_seisbench(path) as ds:
            n = len(ds) if max_records is None else min(max_records, len(ds))
            return ds.to_records(range(n))
    if path.suffix in (".h5", ".hdf5"):
        with open_ceed(path) as ceed:
            return ceed.to_records(max_traces=max_records)
    return read_phasenet_npz(path, max_records=max_records)
