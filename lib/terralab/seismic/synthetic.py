"""Synthetic seismic data with known ground truth: event seismograms, first motions, CEED files, G-R catalogs.

Everything takes a ``seed`` and returns the truth beside the data, so tests can assert that the methods
recover it:

* :func:`event_waveform` — a 3-component (E,N,Z) 100-Hz seismogram of one event at one station: band-limited
  noise, a P onset whose first motion on Z has a chosen sign, an S onset stronger on the horizontals, and
  decaying codas;
* :func:`first_motion_traces` — many vertical traces with P onsets of known polarity and SNR, and P picks
  disturbed by a known error, for testing polarity;
* :func:`write_synthetic_ceed` — a small HDF5 file in CEED's exact layout (ANCHORS.md) with known picks;
* :func:`gutenberg_richter_catalog` — magnitudes from a Gutenberg–Richter law with known b-value and
  (optionally) a known magnitude of completeness.

Example
-------
>>> from terralab.seismic import synthetic
>>> synthetic.event_waveform(p_index=3000, s_index=3500, p_polarity="D", seed=0).shape   # E, N, Z
(3, 12000)
>>> traces = synthetic.first_motion_traces(n=50, snr=10, seed=0)    # (record, time), truth per record
>>> traces.sizes["record"], sorted(set(traces["polarity"].values.tolist()))
(50, ['D', 'U'])
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xarray as xr

from ..errors import InvalidInputError
from ..files import atomic_path

if TYPE_CHECKING:
    from .ceed import CEEDFile

SAMPLING_RATE_HZ = 100.0
#: Shortest synthetic CEED trace: the window starts 30 s before the first P and the farthest station's P
#: comes at most ~19 s later (stations within ±0.5°, events within ±0.3°, 6 km/s), so 60 s (6000 samples)
#: holds every P with a full 30-s PhaseNet window after the first one.
MIN_CEED_SAMPLES = 6000
_TIME_FMT = "%Y-%m-%dT%H:%M:%S.%f"


def _bandlimited_noise(
    rng: np.random.Generator, shape: tuple[int, ...], low_hz: float = 1.0, high_hz: float = 20.0
) -> np.ndarray:
    """Gaussian noise band-passed to [low_hz, high_hz], unit standard deviation along the last axis."""
    from scipy.signal import butter, sosfiltfilt

    sos = butter(4, [low_hz, high_hz], btype="bandpass", fs=SAMPLING_RATE_HZ, output="sos")
    x = sosfiltfilt(sos, rng.standard_normal(shape), axis=-1)
    return x / x.std(axis=-1, keepdims=True)


def _onset_wavelet(n: int, freq_hz: float, decay_s: float) -> np.ndarray:
    """A damped sine starting at zero with positive first half-cycle: sin(2πft)·exp(−t/τ), t ≥ 0."""
    t = np.arange(n) / SAMPLING_RATE_HZ
    return np.sin(2 * np.pi * freq_hz * t) * np.exp(-t / decay_s)


def event_waveform(
    n_samples: int = 12000,
    p_index: int = 3000,
    s_index: int | None = 3500,
    p_polarity: str = "U",
    snr: float = 20.0,
    seed: int = 0,
) -> np.ndarray:
    """A synthetic 3-component (E, N, Z) seismogram of one event, shape (3, n_samples), noise σ = 1.

    Parameters
    ----------
    n_samples : int
    p_index, s_index : int
        Onset samples of P and S (``s_index`` None: no S).
    p_polarity : {"U", "D"}
        Sign of the first motion on Z.
    snr : float
        Peak P amplitude on Z over the noise standard deviation.
    seed : int
    """
    if p_polarity not in ("U", "D"):
        raise InvalidInputError(f"p_polarity must be 'U' or 'D', got {p_polarity!r}")
    rng = np.random.default_rng(seed)
    x = _bandlimited_noise(rng, (3, n_samples))
    sign = 1.0 if p_polarity == "U" else -1.0
    f_p = rng.uniform(4.0, 10.0)
    n_p = n_samples - p_index
    wave_p = _onset_wavelet(n_p, f_p, rng.uniform(0.15, 0.4))
    wave_p /= np.abs(wave_p).max()
    baz = rng.uniform(0, 2 * np.pi)
    incidence = rng.uniform(0.2, 0.6)  # steep: P mostly vertical
    horiz = np.tan(incidence)
    x[2, p_index:] += sign * snr * wave_p
    x[0, p_index:] += sign * snr * horiz * np.sin(baz) * wave_p
    x[1, p_index:] += sign * snr * horiz * np.cos(baz) * wave_p
    coda = _bandlimited_noise(rng, (3, n_samples))
    t = np.arange(n_samples)
    env_p = np.where(t >= p_index + 20, 0.3 * snr * np.exp(-(t - p_index) / (4.0 * SAMPLING_RATE_HZ)), 0.0)
    x += coda * env_p
    if s_index is not None:
        n_s = n_samples - s_index
        wave_s = _onset_wavelet(n_s, rng.uniform(2.0, 5.0), rng.uniform(0.3, 0.8))
        wave_s /= np.abs(wave_s).max()
        amp_s = 2.0 * snr
        phi = rng.uniform(0, 2 * np.pi)
        x[0, s_index:] += amp_s * np.cos(phi) * wave_s
        x[1, s_index:] += amp_s * np.sin(phi) * wave_s
        x[2, s_index:] += 0.3 * amp_s * rng.choice([-1, 1]) * wave_s
        env_s = np.where(
            t >= s_index + 30, 0.5 * amp_s * np.exp(-(t - s_index) / (6.0 * SAMPLING_RATE_HZ)), 0.0
        )
        x += _bandlimited_noise(rng, (3, n_samples), 0.5, 10.0) * env_s
    return x.astype(np.float32)


def first_motion_traces(
    n: int = 200,
    snr: float = 10.0,
    pick_error_s: float = 0.02,
    polarity: str | None = None,
    n_samples: int = 1000,
    p_index: int = 500,
    start: Any = "2024-01-01T00:00:00",
    seed: int = 0,
) -> xr.DataArray:
    """Vertical traces with P onsets of known first-motion polarity, and P picks with a known error.

    Parameters
    ----------
    n : int
        Number of traces.
    snr : float
        Peak P amplitude over noise σ.
    pick_error_s : float
        Picks are the true onsets plus a uniform error in [−pick_error_s, +pick_error_s], in s.
    polarity : {"U", "D"}, optional
        Same polarity for all traces; default random.
    n_samples, p_index : int
        Trace length and true onset sample.
    start : time-like
        Time of the first sample of every trace (UTC).
    seed : int

    Returns
    -------
    xr.DataArray (record, time) with datetime64 ``time``; coords ``polarity`` (truth), ``p_time`` (true
    onset), ``pick_time`` (onset + error) per record.
    """
    rng = np.random.default_rng(seed)
    pols = rng.choice(["U", "D"], size=n) if polarity is None else np.array([polarity] * n)
    data = np.stack(
        [
            event_waveform(n_samples, p_index, None, p, snr, seed=int(s))[2]
            for p, s in zip(pols, rng.integers(0, 2**31, size=n))
        ]
    )
    errors = rng.uniform(-pick_error_s, pick_error_s, size=n)
    t0 = (
        pd.Timestamp(start).tz_localize(None)
        if pd.Timestamp(start).tzinfo is None
        else pd.Timestamp(start).tz_convert("UTC").tz_localize(None)
    )
    times = t0 + pd.to_timedelta(np.arange(n_samples) / SAMPLING_RATE_HZ, unit="s")
    p_time = t0 + pd.Timedelta(seconds=p_index / SAMPLING_RATE_HZ)
    return xr.DataArray(
        data,
        dims=("record", "time"),
        coords={
            "record": np.arange(n),
            "time": times.values,
            "polarity": ("record", pols.astype(str)),
            "p_time": ("record", np.full(n, np.datetime64(p_time, "ns"))),
            "pick_time": ("record", (p_time + pd.to_timedelta(errors, unit="s")).values),
        },
        attrs={
            "sampling_rate_hz": SAMPLING_RATE_HZ,
            "units": "noise sigma",
            "snr": snr,
            "pick_error_s": pick_error_s,
            "component": "Z",
        },
        name="vertical",
    )


def _string_array(values: list[str]) -> np.ndarray:
    import h5py

    return np.array(values, dtype=h5py.string_dtype())


def write_synthetic_ceed(
    path: str | os.PathLike,
    n_events: int = 3,
    n_stations: int = 4,
    seed: int = 0,
    nt: int = 12000,
) -> pd.DataFrame:
    """Write a small HDF5 file in CEED's layout with known picks; returns the truth, one row per trace.

    Layout (ANCHORS.md): group ``/{event_id}`` with attrs ``event_id, event_time, latitude, longitude,
    depth_km, magnitude, magnitude_type, source, begin_time, end_time, event_time_index, sampling_rate, nt,
    nx``; datasets ``/{event_id}/{NET.STA.LOC.INST}`` float32 (3, nt), components E,N,Z, µm/s, with station
    attrs, ``p_phase_*`` / ``s_phase_*`` picks and the pick lists ``phase_*`` and ``event_id``. The window
    starts 30 s before the first P pick. Written to a temporary file and renamed.

    Parameters
    ----------
    path : path
    n_events, n_stations : int
    seed : int
    nt : int
        Samples per trace (CEED: 12000 = 120 s); at least :data:`MIN_CEED_SAMPLES` (6000 = 60 s).

    Returns
    -------
    pd.DataFrame with ``event_id``, ``station_id``, ``p_phase_index``, ``s_phase_index``, ``p_phase_time``,
    ``s_phase_time``, ``p_phase_polarity``, ``distance_km``, ``magnitude``.

    Raises
    ------
    InvalidInputError
        ``n_events`` or ``n_stations`` below 1, or ``nt`` not a whole number of at least ``MIN_CEED_SAMPLES``;
        nothing is written then.
    """
    import h5py

    if n_events < 1 or n_stations < 1:
        raise InvalidInputError("n_events and n_stations must be at least 1")
    if isinstance(nt, bool) or not isinstance(nt, (int, np.integer)):
        raise InvalidInputError(f"nt must be a whole number of samples, got {nt!r}")
    if nt < MIN_CEED_SAMPLES:
        raise InvalidInputError(
            f"nt={nt} samples ({nt / SAMPLING_RATE_HZ:g} s) is too short for a synthetic CEED trace: "
            "the window starts 30 s before the first P, so nt must be at least "
            f"{MIN_CEED_SAMPLES} ({MIN_CEED_SAMPLES / SAMPLING_RATE_HZ:g} s "
            "at 100 Hz); CEED's own traces have 12000"
        )
    rng = np.random.default_rng(seed)
    stations = _synthetic_stations(rng, n_stations)
    truth = []
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        for e in range(n_events):
            truth += _write_synthetic_event(f, e, stations, rng, nt)
    return pd.DataFrame(truth)


def _synthetic_stations(rng, n_stations: int) -> pd.DataFrame:
    """Station table of the synthetic network SY, drawn from ``rng``."""
    return pd.DataFrame(
        {
            "network": "SY",
            "station": [f"S{k:03d}" for k in range(n_stations)],
            "location": "",
            "instrument": rng.choice(["HH", "EH", "BH"], size=n_stations),
            "latitude": 36.0 + rng.uniform(-0.5, 0.5, n_stations),
            "longitude": -120.0 + rng.uniform(-0.5, 0.5, n_stations),
            "elevation_m": rng.uniform(0, 1500, n_stations),
        }
    )


def _write_synthetic_event(f, e: int, stations: pd.DataFrame, rng, nt: int) -> list[dict]:
    """Write event ``e`` (its group and one trace per station) into the open HDF5 file; returns its truth
    rows."""
    vp, vs = 6.0, 3.5
    truth = []
    event_id = f"sy{73000000 + e}"
    origin = pd.Timestamp("2023-01-01T00:00:00") + pd.Timedelta(hours=7 * e + rng.uniform(0, 3))
    lat, lon = 36.0 + rng.uniform(-0.3, 0.3), -120.0 + rng.uniform(-0.3, 0.3)
    depth = rng.uniform(2, 15)
    mag = round(float(rng.uniform(1.0, 4.0)), 2)
    dx = (stations["longitude"] - lon) * 111.19 * np.cos(np.radians(lat))
    dy = (stations["latitude"] - lat) * 111.19
    epi = np.hypot(dx, dy).to_numpy()
    hypo = np.hypot(epi, depth)
    tp = hypo / vp
    ts = hypo / vs
    begin = origin + pd.Timedelta(seconds=float(tp.min()) - 30.0)
    end = begin + pd.Timedelta(seconds=(nt - 1) / SAMPLING_RATE_HZ)
    g = f.create_group(event_id)
    g.attrs.update(
        {
            "event_id": event_id,
            "event_time": origin.strftime(_TIME_FMT),
            "latitude": lat,
            "longitude": lon,
            "depth_km": depth,
            "magnitude": mag,
            "magnitude_type": "l",
            "source": "SY",
            "begin_time": begin.strftime(_TIME_FMT),
            "end_time": end.strftime(_TIME_FMT),
            "event_time_index": round(float((origin - begin).total_seconds() * SAMPLING_RATE_HZ)),
            "sampling_rate": SAMPLING_RATE_HZ,
            "nt": nt,
            "nx": len(stations),
        }
    )
    for k, sta in stations.iterrows():
        sid = f"{sta.network}.{sta.station}.{sta.location}.{sta.instrument}"
        p_idx = round(
            float((origin + pd.Timedelta(seconds=float(tp[k])) - begin).total_seconds() * SAMPLING_RATE_HZ)
        )
        s_idx = round(
            float((origin + pd.Timedelta(seconds=float(ts[k])) - begin).total_seconds() * SAMPLING_RATE_HZ)
        )
        pol = str(rng.choice(["U", "D"]))
        snr = float(np.clip(10 ** (mag - 1.5 * np.log10(max(hypo[k], 1.0)) + 1.5), 3, 200))
        noise_um_s = 0.01
        data = (
            event_waveform(
                nt, p_idx, s_idx if s_idx < nt else None, pol, snr, seed=int(rng.integers(0, 2**31))
            )
            * noise_um_s
        )
        p_time = begin + pd.Timedelta(seconds=p_idx / SAMPLING_RATE_HZ)
        s_time = begin + pd.Timedelta(seconds=s_idx / SAMPLING_RATE_HZ)
        az = float(np.degrees(np.arctan2(dx[k], dy[k])) % 360)
        ds = g.create_dataset(sid, data=data)
        ds.attrs.update(
            _station_trace_attrs(sta, event_id, pol, (p_idx, s_idx), (p_time, s_time), snr, epi[k], az, depth)
        )
        truth.append(
            {
                "event_id": event_id,
                "station_id": sid,
                "p_phase_index": p_idx,
                "s_phase_index": s_idx,
                "p_phase_time": p_time.tz_localize("UTC"),
                "s_phase_time": s_time.tz_localize("UTC"),
                "p_phase_polarity": pol,
                "distance_km": float(epi[k]),
                "magnitude": mag,
            }
        )
    return truth


def _station_trace_attrs(
    sta, event_id: str, pol: str, idx, times, snr: float, epi_km, az: float, depth
) -> dict:
    """CEED attributes of one trace: station, geometry, P and S picks and the pick lists."""
    p_idx, s_idx = idx
    p_time, s_time = times
    return {
        "network": sta.network,
        "station": sta.station,
        "location": sta.location,
        "instrument": sta.instrument,
        "component": "ENZ",
        "unit": "um/s",
        "dt_s": 1 / SAMPLING_RATE_HZ,
        "latitude": float(sta.latitude),
        "longitude": float(sta.longitude),
        "elevation_m": float(sta.elevation_m),
        "distance_km": float(epi_km),
        "azimuth": (az + 180) % 360,
        "back_azimuth": az,
        "takeoff_angle": float(np.degrees(np.arctan2(epi_km, depth)) + 90),
        "snr": snr,
        "p_phase_index": p_idx,
        "p_phase_time": p_time.strftime(_TIME_FMT),
        "p_phase_score": 1.0,
        "p_phase_polarity": pol,
        "p_phase_status": "manual",
        "s_phase_index": s_idx,
        "s_phase_time": s_time.strftime(_TIME_FMT),
        "s_phase_score": 1.0,
        "s_phase_polarity": "N",
        "s_phase_status": "manual",
        "phase_type": _string_array(["P", "S"]),
        "phase_index": np.array([p_idx, s_idx]),
        "phase_time": _string_array([p_time.strftime(_TIME_FMT), s_time.strftime(_TIME_FMT)]),
        "phase_score": np.array([1.0, 1.0]),
        "phase_polarity": _string_array([pol, "N"]),
        "phase_remark": _string_array(["i", "e"]),
        "phase_picking_channel": _string_array([f"{sta.instrument}Z", f"{sta.instrument}E"]),
        "event_id": _string_array([event_id, event_id]),
    }


def ceed_example(
    n_events: int = 3, n_stations: int = 4, seed: int = 0, path: str | os.PathLike | None = None
) -> CEEDFile:
    """Write (once) and open a synthetic CEED file — the catalog's ``seismic_ceed_synthetic`` entry.

    The file goes to ``path`` or to the catalog's cache (``$TERRALAB_CACHE/seismic/``).
    Returns an open :class:`terralab.seismic.io.CEEDFile`.
    """
    from .io import open_ceed

    if path is None:
        from terralab.catalog import cache_dir

        path = cache_dir() / "seismic" / f"ceed_synthetic_{n_events}x{n_stations}_seed{seed}.h5"
    path = Path(path)
    if not path.exists():
        write_synthetic_ceed(path, n_events=n_events, n_stations=n_stations, seed=seed)
    return open_ceed(path)


def gutenberg_richter_catalog(
    n: int = 2000,
    b_value: float = 1.0,
    mc: float = 1.0,
    bin_width: float = 0.1,
    incomplete_below: float | None = None,
    detection_sigma: float = 0.2,
    seed: int = 0,
) -> pd.DataFrame:
    """An earthquake catalog whose magnitudes follow Gutenberg–Richter with a known b-value.

    Parameters
    ----------
    n : int
        Events at or above ``mc`` (the complete part).
    b_value : float
    mc : float
        Magnitude of completeness: every event with magnitude ≥ mc is in the catalog.
    bin_width : float
        Magnitudes are rounded to this (0 keeps them continuous). Binned magnitudes are centred on the
        bins, so ``mc`` is a bin centre.
    incomplete_below : float, optional
        Also add events down to this magnitude, each kept with probability Φ((m − μ)/σ) where
        σ = ``detection_sigma`` and μ = mc − 2.33σ (≥ 99 % detected at mc): an incomplete low end as real
        catalogs have (Ogata & Katsura 1993).
    detection_sigma : float
    seed : int

    Returns
    -------
    pd.DataFrame with ``time`` (UTC), ``magnitude``, ``latitude``, ``longitude``, ``depth_km``; attrs hold the
    truth (``b_value``, ``mc``).
    """
    from scipy.stats import norm

    if b_value <= 0 or n < 1:
        raise InvalidInputError("b_value must be positive and n at least 1")
    rng = np.random.default_rng(seed)
    beta = b_value * np.log(10)
    half = bin_width / 2 if bin_width > 0 else 0.0
    low = mc - half
    mags = low + rng.exponential(1 / beta, size=n)
    if incomplete_below is not None:
        # events between incomplete_below and mc: expected count from the same G-R law
        lo = incomplete_below - half
        n_extra = rng.poisson(n * (10 ** (b_value * (low - lo)) - 1))
        u = rng.uniform(size=n_extra)
        extra = lo - np.log(1 - u * (1 - np.exp(-beta * (low - lo)))) / beta
        mu = mc - 2.33 * detection_sigma
        keep = rng.uniform(size=n_extra) < norm.cdf((extra - mu) / detection_sigma)
        mags = np.concatenate([mags, extra[keep]])
    if bin_width > 0:
        mags = np.round(np.round(mags / bin_width) * bin_width, 6)
    rng.shuffle(mags)
    times = pd.Timestamp("2019-07-04", tz="UTC") + pd.to_timedelta(
        np.sort(rng.uniform(0, 30 * 86400, mags.size)), unit="s"
    )
    df = pd.DataFrame(
        {
            "time": times,
            "magnitude": mags,
            "latitude": 35.7 + rng.normal(0, 0.1, mags.size),
            "longitude": -117.5 + rng.normal(0, 0.1, mags.size),
            "depth_km": rng.uniform(1, 15, mags.size),
        }
    )
    df.attrs.update({"b_value": b_value, "mc": mc, "bin_width": bin_width})
    return df
