"""P-wave first-motion polarity from the vertical component around a P pick.

Method (amplitude-threshold first motion, as analysts read it):

1. The pre-pick noise window ``[pick − noise_window_s − u, pick − u]`` (``u`` = the pick uncertainty) gives
   a baseline (median) and a robust noise level σ (1.4826 × MAD).
2. From each candidate onset ``pick + δ``, δ ∈ [−u, +u] in one-sample steps, the baseline-removed trace is
   scanned for the first sample whose amplitude exceeds ``threshold_snr`` σ; the first motion is the
   extremum of that excursion (followed until the trace turns back). Its sign is the candidate's vote
   (+1 up, −1 down, 0 when nothing exceeds the threshold within ``signal_window_s``).
3. Polarity = sign of the summed votes ("U" up, "D" down); "N" when they cancel or no candidate fires.
4. Confidence = agreement × strength: agreement = |Σ votes| / n_candidates (how robust the sign is to
   the pick error), strength = 1 − exp(−(A/σ − threshold_snr) / threshold_snr) for the median first-motion
   amplitude A of the agreeing candidates (0 at the threshold, ~0.63 at twice it, ~0.86 at three times).
   Calls with confidence below ``min_confidence`` are reported as "N".

Vertical positive is up (SEED convention); CEED polarities are given in the same sense.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from ..errors import InvalidInputError


def first_motion(
    z: np.ndarray,
    pick_index: float,
    sampling_rate_hz: float = 100.0,
    noise_window_s: float = 1.0,
    signal_window_s: float = 0.25,
    pick_uncertainty_s: float = 0.03,
    threshold_snr: float = 3.0,
    min_confidence: float = 0.1,
) -> tuple[str, float]:
    """First-motion polarity ("U"/"D"/"N") and confidence in [0, 1] of a vertical trace at a P pick.

    Low-level form of :func:`first_motion_polarity` working on a 1-D numpy array (NaN = no data).

    Parameters
    ----------
    z : 1-D array
        Vertical component, positive up.
    pick_index : float
        P pick as a (fractional) sample index into ``z``.
    sampling_rate_hz : float
    noise_window_s : float
        Length of the pre-pick window that sets baseline and noise level, in s.
    signal_window_s : float
        How long after each candidate onset to look for the first motion, in s.
    pick_uncertainty_s : float
        Half-width of the range of candidate onsets around the pick, in s.
    threshold_snr : float
        Amplitude over noise σ that counts as motion.
    min_confidence : float
        Below this the polarity is reported as "N".
    """
    z = np.asarray(z, dtype=np.float64)
    if z.ndim != 1:
        raise InvalidInputError(f"first_motion needs a 1-D vertical trace, got shape {z.shape}")
    if not np.isfinite(pick_index):
        return "N", 0.0
    sr = float(sampling_rate_hz)
    u = max(round(float(pick_uncertainty_s * sr)), 0)
    i0 = round(float(pick_index))
    n_noise = max(round(float(noise_window_s * sr)), 10)
    n_sig = max(round(float(signal_window_s * sr)), 3)
    noise = z[max(i0 - u - n_noise, 0) : max(i0 - u, 0)]
    noise = noise[np.isfinite(noise)]
    if noise.size < 10:
        return "N", 0.0
    baseline = np.median(noise)
    sigma = 1.4826 * np.median(np.abs(noise - baseline))
    if not sigma > 0:
        sigma = np.std(noise)
    sigma = float(sigma) if sigma > 0 else 0.0  # 0: a flat pre-pick trace, where any motion is clear
    y = z - baseline
    level = threshold_snr * sigma

    votes, amps = [], []
    for start in range(i0 - u, i0 + u + 1):
        if start < 0 or start >= y.size:
            continue
        seg = y[start : start + n_sig]
        seg = np.where(np.isfinite(seg), seg, 0.0)
        above = np.flatnonzero(np.abs(seg) > level)
        if above.size == 0:
            votes.append(0)
            amps.append(0.0)
            continue
        j = above[0]
        sign = np.sign(seg[j])
        # follow the excursion to its extremum: the first motion's amplitude
        k = j
        while k + 1 < seg.size and np.sign(seg[k + 1]) == sign and abs(seg[k + 1]) >= abs(seg[k]):
            k += 1
        votes.append(int(sign))
        amps.append(abs(seg[k]))
    if not votes:
        return "N", 0.0
    votes_arr = np.array(votes)
    total = votes_arr.sum()
    if total == 0:
        return "N", 0.0
    majority = int(np.sign(total))
    agreement = abs(total) / votes_arr.size
    amp = float(np.median(np.array(amps)[votes_arr == majority]))
    snr = amp / sigma if sigma > 0 else np.inf
    strength = 1.0 - np.exp(-max(snr - threshold_snr, 0.0) / threshold_snr)
    confidence = float(np.clip(agreement * strength, 0.0, 1.0))
    if confidence < min_confidence:
        return "N", confidence
    return ("U" if majority > 0 else "D"), confidence


def _vertical(waveform: xr.DataArray) -> xr.DataArray:
    if not isinstance(waveform, xr.DataArray) or "time" not in waveform.dims:
        raise InvalidInputError("expected an xr.DataArray with a time dimension (and optionally component)")
    if "component" in waveform.dims:
        comps = [str(c) for c in waveform["component"].values]
        z = [c for c in comps if c[-1:].upper() in ("Z", "3")]
        if not z:
            raise InvalidInputError(f"no vertical component among {comps}; first motions are read on Z")
        waveform = waveform.sel(component=waveform["component"].values[comps.index(z[0])])
    if waveform.ndim != 1:
        raise InvalidInputError(f"expected (component, time) or (time,), got dims {waveform.dims}")
    return waveform


def first_motion_polarity(waveform: xr.DataArray, pick_time: Any, **kwargs: Any) -> tuple[str, float]:
    """First-motion polarity ("U"/"D"/"N") and confidence of the vertical component at a P pick time.

    Parameters
    ----------
    waveform : xr.DataArray (component, time) or (time,)
        With a datetime64 ``time`` coordinate; the vertical is the component named ``Z`` (or ``*Z``/``3``).
    pick_time : time-like
        P arrival (UTC).
    **kwargs
        Passed to :func:`first_motion` (``pick_uncertainty_s``, ``threshold_snr`` …).

    Example
    -------
    >>> from terralab.seismic import synthetic
    >>> wave = synthetic.first_motion_traces(n=1, snr=20, polarity="D", seed=0).isel(record=0)
    >>> first_motion_polarity(wave, wave["pick_time"].values)
    ('D', 0.99...)
    """
    z = _vertical(waveform)
    times = pd.DatetimeIndex(z["time"].values)
    if not np.issubdtype(z["time"].dtype, np.datetime64):
        raise InvalidInputError("the time coordinate must be datetime64")
    t = pd.Timestamp(pick_time)
    t = t.tz_convert("UTC").tz_localize(None) if t.tzinfo is not None else t
    dt_ns = np.median(np.diff(times.asi8))
    idx = (t.value - times.asi8[0]) / dt_ns
    return first_motion(z.values, idx, sampling_rate_hz=1e9 / dt_ns, **kwargs)


def synthetic_accuracy(
    snrs: tuple[float, ...] = (2.0, 5.0, 10.0, 20.0),
    n: int = 100,
    pick_error_s: float = 0.02,
    seed: int = 0,
    **kwargs: Any,
) -> pd.DataFrame:
    """Polarity accuracy on synthetic first motions of known sign, per signal-to-noise ratio.

    Returns a DataFrame: ``snr``, ``n``, ``called`` (fraction U/D), ``accuracy`` (of called),
    ``median_confidence``.
    """
    from .synthetic import first_motion_traces

    rows = []
    for k, snr in enumerate(snrs):
        traces = first_motion_traces(n=n, snr=snr, pick_error_s=pick_error_s, seed=seed + k)
        res = [
            first_motion_polarity(traces.isel(record=i), traces["pick_time"].values[i], **kwargs)
            for i in range(n)
        ]
        pol = np.array([r[0] for r in res])
        called = pol != "N"
        truth = traces["polarity"].values
        rows.append(
            {
                "snr": snr,
                "n": n,
                "called": float(called.mean()),
                "accuracy": float((pol[called] == truth[called]).mean()) if called.any() else np.nan,
                "median_confidence": float(np.median([r[1] for r in res])),
            }
        )
    return pd.DataFrame(rows)
