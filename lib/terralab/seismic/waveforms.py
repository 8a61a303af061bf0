"""Waveforms brought to PhaseNet's input: one array per station at 100 Hz, components E,N,Z, NaN = no data.

:func:`prepare` takes an ObsPy ``Stream``/``Trace`` or an ``xr.DataArray (component, time)``; the input
cases it handles (resampling, missing components, gaps, masked samples) are listed in
:mod:`terralab.seismic.picking`, which runs PhaseNet on the result.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from ..errors import InvalidInputError

__all__ = [
    "SAMPLING_RATE_HZ",
    "GapWarning",
    "MissingComponentWarning",
    "ResamplingWarning",
    "StationData",
    "prepare",
]

SAMPLING_RATE_HZ = 100.0
_COMPONENT_MAP = {"E": 0, "2": 0, "N": 1, "1": 1, "Z": 2, "3": 2}


class ResamplingWarning(UserWarning):
    """The data were resampled to the 100 Hz PhaseNet needs."""


class MissingComponentWarning(UserWarning):
    """A component was missing and filled with zeros."""


class GapWarning(UserWarning):
    """The data had gaps, masked samples or NaNs; they were treated as "no data"."""


@dataclass
class StationData:
    """One station's data prepared for PhaseNet (internal to terralab.seismic)."""

    trace_id: str
    data: np.ndarray  # (3, n) float32, E,N,Z at 100 Hz, NaN = no data
    start: pd.Timestamp  # UTC time of sample 0
    components: tuple[str, ...]  # which of E,N,Z had data


# ---------------------------------------------------------------------------------------------------
# input preparation
# ---------------------------------------------------------------------------------------------------
def _resample(x: np.ndarray, rate_hz: float, trace_id: str) -> np.ndarray:
    """Resample a 1-D array (NaN = no data) to 100 Hz with a polyphase anti-aliasing filter."""
    from scipy.signal import resample_poly

    ratio = Fraction(SAMPLING_RATE_HZ / rate_hz).limit_denominator(1000)
    warnings.warn(
        f"{trace_id}: sampling rate {rate_hz:g} Hz resampled to 100 Hz "
        f"(×{ratio.numerator}/{ratio.denominator}) "
        "because PhaseNet was trained at 100 Hz",
        ResamplingWarning,
        stacklevel=4,
    )
    valid = np.isfinite(x)
    filled = np.where(valid, x - (np.nanmean(x) if valid.any() else 0.0), 0.0)
    y = resample_poly(filled, ratio.numerator, ratio.denominator).astype(np.float32)
    if not valid.all():
        src = np.clip(np.round(np.arange(y.size) * rate_hz / SAMPLING_RATE_HZ).astype(int), 0, x.size - 1)
        y[~valid[src]] = np.nan
    return y


def _component_slot(code: str) -> int | None:
    return _COMPONENT_MAP.get(str(code)[-1:].upper())


def _assemble(trace_id: str, pieces: list[tuple[str, pd.Timestamp, float, np.ndarray]]) -> StationData:
    """Place (component, start, rate, data) pieces onto one 100-Hz (3, n) grid with NaN where no data."""
    slots: list[tuple[int, pd.Timestamp, np.ndarray]] = []
    ignored = set()
    for comp, start, rate, data in pieces:
        slot = _component_slot(comp)
        if slot is None:
            ignored.add(str(comp))
            continue
        if not np.isfinite(rate) or rate <= 0:
            raise InvalidInputError(f"{trace_id}: sampling rate {rate} is not a positive number")
        data = np.asarray(data, dtype=np.float64)
        if abs(rate - SAMPLING_RATE_HZ) > 1e-6:
            data = _resample(data, rate, trace_id)
        slots.append((slot, start, data.astype(np.float32)))
    if not slots:
        raise InvalidInputError(
            f"{trace_id}: no usable component among {sorted(ignored)}; PhaseNet reads Z, N, E (or Z, 1, 2) "
            "components — rename channels so their last letter is one of Z N E 1 2"
        )
    if ignored:
        warnings.warn(
            f"{trace_id}: components {sorted(ignored)} ignored (not Z/N/E/1/2)",
            MissingComponentWarning,
            stacklevel=4,
        )
    t0 = min(s for _, s, _ in slots)
    offsets = [round(float((s - t0).total_seconds() * SAMPLING_RATE_HZ)) for _, s, _ in slots]
    n = max(o + d.size for o, (_, _, d) in zip(offsets, slots))
    out = np.full((3, n), np.nan, dtype=np.float32)
    for o, (slot, _, d) in zip(offsets, slots):
        seg = out[slot, o : o + d.size]
        # where pieces overlap, keep the data already there and fill only its gaps
        np.copyto(seg, d, where=np.isnan(seg))
    present = tuple(c for c, row in zip("ENZ", out) if np.isfinite(row).any())
    if not present:
        raise InvalidInputError(f"{trace_id}: the data hold no finite samples")
    missing = [c for c in "ENZ" if c not in present]
    if missing:
        warnings.warn(
            f"{trace_id}: component(s) {missing} missing, filled with zeros (PhaseNet's convention for "
            "single-component stations)",
            MissingComponentWarning,
            stacklevel=4,
        )
    gaps = int(np.isnan(out[[i for i, c in enumerate("ENZ") if c in present]]).sum())
    if gaps:
        warnings.warn(
            f"{trace_id}: {gaps} samples are gaps, masked or NaN; "
            "treated as no data (zeros after normalisation)",
            GapWarning,
            stacklevel=4,
        )
    return StationData(trace_id, out, t0, present)


def _is_stream(obj: Any) -> bool:
    return type(obj).__module__.startswith("obspy") and type(obj).__name__ in ("Stream", "Trace")


def _from_stream(stream: Any) -> list[StationData]:
    import obspy

    if isinstance(stream, obspy.Trace):
        stream = obspy.Stream([stream])
    if len(stream) == 0:
        raise InvalidInputError("the Stream holds no traces")
    groups: dict[str, list[tuple[str, pd.Timestamp, float, np.ndarray]]] = {}
    for tr in stream:
        s = tr.stats
        trace_id = f"{s.network}.{s.station}.{s.location}.{s.channel[:-1]}"
        data = tr.data
        if np.ma.isMaskedArray(data):
            data = np.ma.filled(data.astype(np.float64), np.nan)
        start = pd.Timestamp(s.starttime.ns, unit="ns", tz="UTC")
        groups.setdefault(trace_id, []).append(
            (s.channel[-1:] or s.component, start, float(s.sampling_rate), data)
        )
    return [_assemble(tid, pieces) for tid, pieces in groups.items()]


def _from_dataarray(da: xr.DataArray) -> list[StationData]:
    if set(da.dims) != {"component", "time"}:
        raise InvalidInputError(
            f"expected an xr.DataArray with dims (component, time), got {da.dims}; select one station first"
        )
    if "time" not in da.coords or not np.issubdtype(da["time"].dtype, np.datetime64):
        raise InvalidInputError(
            "the time coordinate must be datetime64 (UTC); for a record set use "
            "terralab.seismic.io.record_waveform(records, i)"
        )
    da = da.transpose("component", "time")
    if da.sizes["time"] < 2:
        raise InvalidInputError("the waveform has fewer than 2 samples")
    t = pd.DatetimeIndex(da["time"].values)
    dt = np.diff(t.asi8).astype(np.float64)
    step = np.median(dt)
    if step <= 0 or np.max(np.abs(dt - step)) > 0.01 * step:
        raise InvalidInputError(
            "the time coordinate is not regularly sampled; mark gaps with NaN on a regular time axis instead"
        )
    rate = float(da.attrs.get("sampling_rate_hz") or 1e9 / step)
    if abs(rate - 1e9 / step) > 0.01 * rate:
        raise InvalidInputError(
            f"attrs sampling_rate_hz={rate} disagrees with the time coordinate ({1e9 / step:g} Hz)"
        )
    start = pd.Timestamp(t[0]).tz_localize("UTC")
    trace_id = str(da.attrs.get("trace_id") or da.name or "waveform")
    pieces = [
        (str(c), start, rate, np.asarray(da.sel(component=c).values, dtype=np.float64))
        for c in da["component"].values
    ]
    return [_assemble(trace_id, pieces)]


def prepare(waveforms: Any) -> list[StationData]:
    """Bring an ``obspy.Stream``/``Trace`` or a waveform DataArray to PhaseNet's 100 Hz, E,N,Z form, per
    station.

    Example
    -------
    >>> from terralab.seismic import io
    >>> [station] = prepare(io.record_waveform(io.read_sample(max_records=1), 0))   # a real NCEDC record
    >>> station.trace_id, station.data.shape, station.components
    ('NC.MEM..EH', (3, 9001), ('E', 'N', 'Z'))
    """
    if _is_stream(waveforms):
        return _from_stream(waveforms)
    if isinstance(waveforms, xr.DataArray):
        return _from_dataarray(waveforms)
    raise InvalidInputError(
        "waveforms must be an obspy.Stream or an xr.DataArray (component, time), "
        f"got {type(waveforms).__name__}"
    )
