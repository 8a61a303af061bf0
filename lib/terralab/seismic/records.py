"""The in-memory shapes of seismic data, and operations on record sets.

* a **waveform**: ``xr.DataArray (component, time)`` of one station, components named ``E, N, Z`` (or
  ``1, 2`` / channel codes), ``time`` a datetime64 coordinate (UTC), attrs ``trace_id``,
  ``sampling_rate_hz``, ``units``;
* a **record set**: ``xr.DataArray (record, component, time)`` of many fixed-length labelled traces,
  components ``E, N, Z``, ``time`` in seconds since each trace's start, and per-record coordinates named
  as SeisBench names its metadata columns (``trace_p_arrival_sample``, ``trace_s_arrival_sample``,
  ``trace_p_polarity``, ``trace_start_time``, ``station_code`` …) — what training and evaluation take.

The readers (:mod:`terralab.seismic.io` and the format modules behind it) return these shapes.

Example
-------
>>> from terralab.seismic import io, records
>>> recs = io.read_sample()
>>> wave = records.record_waveform(recs, 0)                # (component, time) with UTC times
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from ..errors import InvalidInputError

__all__ = [
    "ENZ",
    "SAMPLING_RATE_HZ",
    "check_records",
    "make_records",
    "record_waveform",
    "reference_picks",
    "stitch_records",
    "three_component",
    "time_axis",
    "utc_timestamp",
    "waveform_dataarray",
]

SAMPLING_RATE_HZ = 100.0
ENZ = ("E", "N", "Z")

# record-set coordinate → SeisBench metadata column: they are the same names on purpose.
_RECORD_COORDS_FLOAT = ("trace_p_arrival_sample", "trace_s_arrival_sample")


# ---------------------------------------------------------------------------------------------------
# times and waveforms
# ---------------------------------------------------------------------------------------------------
def utc_timestamp(value: Any) -> pd.Timestamp:
    """A time-like value (ISO string, Timestamp, datetime64) as a tz-aware UTC Timestamp."""
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _naive_utc(ts: pd.Timestamp) -> np.datetime64:
    return np.datetime64(utc_timestamp(ts).tz_localize(None).as_unit("ns"))


def time_axis(start: Any, n_samples: int, sampling_rate_hz: float) -> np.ndarray:
    """datetime64[ns] times of ``n_samples`` samples from ``start`` (UTC) at ``sampling_rate_hz``."""
    step_ns = 1e9 / float(sampling_rate_hz)
    return _naive_utc(utc_timestamp(start)) + np.round(np.arange(n_samples) * step_ns).astype(
        "timedelta64[ns]"
    )


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
    check_records(records)
    rec = records.isel(record=which) if isinstance(which, (int, np.integer)) else records.sel(record=which)
    start = rec["trace_start_time"].values
    start = pd.Timestamp(0) if pd.isna(start) else pd.Timestamp(start)
    sr = float(records.attrs.get("sampling_rate_hz", SAMPLING_RATE_HZ))
    attrs = {}
    for phase in ("p", "s"):
        idx = float(rec[f"trace_{phase}_arrival_sample"].values)
        if np.isfinite(idx):
            attrs[f"{phase}_time"] = (utc_timestamp(start) + pd.Timedelta(seconds=idx / sr)).isoformat()
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
    """The analyst picks of a record set as a DataFrame: ``trace_id``, ``record``, ``phase``, ``time``,
    ``sample``, ``polarity``.

    ``time`` is a UTC Timestamp (relative to 1970-01-01 for records without a start time), ``sample`` the
    index within the record.
    """
    check_records(records)
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
                        "time": utc_timestamp(start) + pd.Timedelta(seconds=idx / sr),
                        "sample": idx,
                        "polarity": (pol[i] if phase == "P" and isinstance(pol[i], str) and pol[i] else None),
                    }
                )
    return pd.DataFrame(rows, columns=["trace_id", "record", "phase", "time", "sample", "polarity"])


def check_records(records: Any) -> None:
    """Raise InvalidInputError unless ``records`` is a record set ``(record, component, time)``."""
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
    check_records(records)
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
    k = round(float(taper_s * sr))
    if k > 0:
        ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(k) + 0.5) / k)
        data[..., :k] *= ramp
        data[..., -k:] *= ramp[::-1]
    data = np.concatenate(list(data), axis=-1).astype(np.float32)
    start = utc_timestamp(start)
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


def three_component(records: xr.DataArray) -> xr.DataArray:
    """The records whose E and N components hold data (single-component records store zeros there)."""
    check_records(records)
    e = records.sel(component="E").values
    n = records.sel(component="N").values
    keep = (np.abs(np.nan_to_num(e)).max(axis=-1) > 0) & (np.abs(np.nan_to_num(n)).max(axis=-1) > 0)
    return records.isel(record=np.flatnonzero(keep))
