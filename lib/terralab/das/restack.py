"""Speed re-read and heavy vehicles re-centred by slant stacking the strain image along each vehicle's track
(the detector's last steps).

A track's fitted speed follows its ridge points, and they hop between a vehicle's strain centre, its lobes
and its axle groups; a different threshold, pulse length or low-pass moves the hops and with them the fit:
on the real bridge record, +-20 % changes of single detector parameters moved its one vehicle between 44.5
and 57.2 km/h. The vehicle's quasi-static strain is one pattern that moves at the vehicle's speed, so the
noise-normalised strain image (soft-saturated at ``clip_sigma`` as for the track search), averaged over the
channels along straight lines of a trial speed through the track's mid-section passage, lines up every part
of it (centre, lobes, axle groups, of either sign) only at the right speed: the stacked trace's power,
summed over ``restack_m`` of travel either side, peaks there.

:func:`stacked_speeds` climbs that power from the fitted speed to its nearest peak within a factor
:data:`RESTACK_RANGE` either way (and within the site's speed range), so that a stronger neighbour of
another speed, whose own peak lies elsewhere, does not capture it; a climb that ends at the edge of the
range keeps the fitted speed (that stack is no peak). The track's time and its fitted t(x) are kept.

The stacked trace at that speed is the vehicle's signature along its own track, and its centre is the
vehicle's load centre. A long vehicle's track often follows one lobe or bogie of it instead: on the
half-space street development scenes, heavy vehicles missed so were found 15-20 m from their load centre
(beyond the scorer's 10 m), one error counted once missed and once false. :func:`recentre_alone` moves each
vehicle that no merge placed and that passes alone (no "near" flag) to the power centroid of its trace
(:func:`centre_shifts`): a heavy vehicle ("truck" or "tram") within ``recentre_m`` of travel either side of
its track's passage, a car within ``recentre_car_m`` but at most :data:`RECENTRE_CAR_S` of travel (a car's
signature is short; a wider window reaches a neighbour's), a car near another (a "near" flag: another
vehicle within 2 s) within ``recentre_near_m`` but at most :data:`RECENTRE_NEAR_S`. Heavy vehicles near others
are left alone (a neighbour's signature would pull them). "Near" is 2 s, less than a heavy vehicle's window
at street speed (25 m at 24 km/h is 3.75 s), so a vehicle 2-4 s from another can still be pulled towards it.
Cars within the heavy vehicles' 25 m raised duplicates on every seed set (false tracks beside a vehicle moved
into the scorer's window of it); the short windows are a localisation step (the README's "Lone cars
re-centred").

Examples
--------
One vehicle's two opposite-signed lobes, 8 m either side of its centre, pass 60 channels at 50 km/h; the
fit said 56 km/h, the stack finds the vehicle's speed:

>>> import numpy as np
>>> from terralab.das import DetectParams
>>> from terralab.das.restack import stacked_speeds
>>> t, xb = np.arange(0.0, 30.0, 0.125), np.arange(0.0, 300.0, 5.0)
>>> v = 50 / 3.6
>>> arrive = 15.0 + (xb - 150.0) / v
>>> lobe = lambda dx: np.exp(-0.5 * ((t[:, None] - arrive - dx / v) / (3.0 / v)) ** 2)
>>> z = 8.0 * (lobe(-8.0) - lobe(8.0))
>>> row = {"t_mid": [15.0], "speed_kmh": [56.0], "direction": [1], "x_lo": [0.0], "x_hi": [295.0]}
>>> speeds = stacked_speeds(row, z, t, xb, np.ones(len(xb), bool), 150.0, DetectParams())
>>> bool(abs(speeds[0] - 50.0) < 0.5)
True
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from .diagnose import BEYOND_CLIP_ADVICE, beyond_clip
from .params import KMH, has_flag, set_flag
from .tracks import near_others

if TYPE_CHECKING:
    import pandas as pd

    from .params import DetectParams

__all__ = [
    "RECENTRE_CAR_S",
    "RECENTRE_NEAR_S",
    "RESTACK_RANGE",
    "RESTACK_STEPS",
    "UNSURE_CHANGE",
    "centre_shifts",
    "clipped",
    "recentre_alone",
    "reread_speeds",
    "search_clipped",
    "stacked_speeds",
    "stacked_trace",
]

#: the stacked speed stays within this factor of the fitted one (either way)
RESTACK_RANGE = 1.25
#: trial speeds, evenly spaced in log speed over the range (1.0 is the middle one)
RESTACK_STEPS = 81
#: a re-read that moves the speed by more than this (relative) flags the vehicle "speed_unsure": fit and stack
#: disagree. Measured with development scripts on 20-scene sets (no test backs it; four test scenes are too
#: few): seeds 100-107 + 200-211, 3-20 % of the detections, speed MAE of the matched ones 1.04-3.82 km/h
#: against 0.14-0.61 for the rest, and more often false; much the same on unseen seeds 16000-17019
UNSURE_CHANGE = 0.05
#: a car's re-centring window (``recentre_car_m``) spans at most this many seconds of its travel either side:
#: at street speed 12 m is 1.5-4 s, where a slow car's centroid reached a neighbour's signature (on fresh
#: seeds 25000-25019 two 11 km/h cars moved 2.2 s and were lost); 0.75 s is 12 m at 58 km/h
RECENTRE_CAR_S = 0.75
#: the same for a car near another (``recentre_near_m``): a shorter window, so that the neighbour 2 s or less
#: away pulls it less; 0.4 s is 6 m at 54 km/h
RECENTRE_NEAR_S = 0.4


def reread_speeds(
    vehicles: pd.DataFrame,
    z: np.ndarray,
    t: np.ndarray,
    xb: np.ndarray,
    valid: np.ndarray,
    x_mid: float,
    p: DetectParams,
) -> None:
    """Set the ``speed_kmh`` of a vehicle table to :func:`stacked_speeds` (in place), adding the flag
    "speed_unsure" where it moved by more than :data:`UNSURE_CHANGE`."""
    fitted = vehicles["speed_kmh"].to_numpy(dtype=float)
    speeds = stacked_speeds(vehicles, z, t, xb, valid, x_mid, p)
    vehicles["speed_kmh"] = speeds
    if "flags" in vehicles:
        moved = np.abs(speeds / fitted - 1.0) > UNSURE_CHANGE
        vehicles["flags"] = set_flag(vehicles["flags"], "speed_unsure", moved)


def stacked_speeds(
    tracks: Mapping[str, Any],
    z: np.ndarray,
    t: np.ndarray,
    xb: np.ndarray,
    valid: np.ndarray,
    x_mid: float,
    p: DetectParams,
) -> np.ndarray:
    """The speed (km/h) of each track re-read from the stacked strain image (see the module docstring).

    ``tracks`` has the columns (or keys) ``t_mid`` (s, on the time axis ``t`` of the image ``z``, rows =
    times, columns = channel bins at ``xb``), ``speed_kmh``, ``direction``, ``x_lo`` and ``x_hi`` (the
    distance range of the track's ridge points). A track on fewer than four live bins keeps its speed.
    """
    speeds = np.asarray(tracks["speed_kmh"], dtype=float).copy()
    if p.restack_m <= 0 or len(speeds) == 0 or len(t) < 2:
        return speeds
    facs = np.geomspace(1.0 / RESTACK_RANGE, RESTACK_RANGE, RESTACK_STEPS)
    dt = float(t[1] - t[0])
    # the detector's soft saturation: a strong neighbour's ridge (or a well-coupled channel) does not outweigh
    # the vehicle's own alignment
    zc = clipped(z, p)
    for i, t_mid, v_kmh, direction, cols, taus in _track_windows(tracks, xb, valid, p.restack_m, dt):
        ok = (v_kmh * facs >= p.speed_min_kmh) & (v_kmh * facs <= p.speed_max_kmh)
        if not ok[RESTACK_STEPS // 2]:
            continue
        v = v_kmh * KMH
        power = _LazyPower(zc, t[0], dt, cols, xb[cols] - x_mid, t_mid + taus, direction / (v * facs), ok)
        k = _climb(power, RESTACK_STEPS // 2)
        if 0 < k < RESTACK_STEPS - 1 and ok[k - 1] and ok[k + 1]:
            speeds[i] = v_kmh * facs[k]
    return speeds


def _track_windows(
    tracks: Mapping[str, Any], xb: np.ndarray, valid: np.ndarray, half_m: float | np.ndarray, dt: float
) -> Iterator[tuple[int, float, float, float, np.ndarray, np.ndarray]]:
    """For each track (``t_mid``, ``speed_kmh``, ``direction``, ``x_lo``, ``x_hi``) on at least four live bins
    and at a positive speed: its index, ``t_mid``, speed (km/h), direction, live bins of ``x_lo``..``x_hi``
    and the lags (s) within ``half_m`` (one value, or one per track) of travel either side, every half time
    step ``dt``."""
    names = ("t_mid", "speed_kmh", "direction", "x_lo", "x_hi")
    columns = [np.asarray(tracks[c], dtype=float) for c in names]
    halves = np.broadcast_to(np.asarray(half_m, dtype=float), columns[0].shape)
    for i, (t_mid, v_kmh, direction, x_lo, x_hi, half) in enumerate(zip(*columns, halves)):
        cols = np.flatnonzero(valid & (xb >= x_lo) & (xb <= x_hi))
        if len(cols) < 4 or not v_kmh > 0 or not half > 0:
            continue
        half_s = half / (v_kmh * KMH)
        yield i, t_mid, v_kmh, direction, cols, np.arange(-half_s, half_s + 0.25 * dt, 0.5 * dt)


def clipped(z: np.ndarray, p: DetectParams, level: np.ndarray | None = None) -> np.ndarray:
    """The image soft-saturated at ``p.clip_sigma`` as for the track search (unchanged where it is 0), or at
    ``level`` (per channel, broadcast over time) where given."""
    if level is None:
        if not p.clip_sigma > 0:
            return z
        level = p.clip_sigma
    return (level * np.tanh(z / level)).astype(np.float32)


def search_clipped(z: np.ndarray, p: DetectParams, valid: np.ndarray | None = None) -> np.ndarray:
    """The image the track search works on: :func:`clipped`, except on a record whose share beyond the clip
    (:func:`~terralab.das.diagnose.beyond_clip`) exceeds :data:`~terralab.das.diagnose.BEYOND_CLIP_ADVICE`
    (a quiet fibre: the traffic stands far above the noise unit) and where ``p.quiet_clip`` > 0. There each
    channel saturates at ``max(clip_sigma, quiet_clip x`` its 99.9 % ``|z|)``: the soft clip follows the
    channel's own signal, so the leaky integrator's slow opposite-signed tail after a strong vehicle (at most
    about a fifth of its pulse, decaying over 3.2 s) keeps its shape below the pulse instead of becoming a
    flat plateau as high as the pulse, whose edges the search reads as tracks. The share is taken over the
    live channels ``valid`` (every column when None), as :func:`~terralab.das.diagnose.diagnose` takes it:
    dead channels (all zero) would count as inside the clip and lower it.

    >>> import numpy as np
    >>> from terralab.das import DetectParams
    >>> z = np.zeros((100, 2)); z[:30] = 100.0; z[40:, 0] = -10.0    # a pulse and a tail a tenth of it
    >>> search_clipped(z, DetectParams(quiet_clip=0.0))[[10, 50], 0].round(1)   # the tail nearly as high
    array([ 6. , -5.6], dtype=float32)
    >>> search_clipped(z, DetectParams())[[10, 50], 0].round(1)                   # half the pulse
    array([18. , -9.1], dtype=float32)
    """
    live = z if valid is None else z[:, valid]
    if not (p.quiet_clip > 0 and p.clip_sigma > 0 and beyond_clip(live, p.clip_sigma) > BEYOND_CLIP_ADVICE):
        return clipped(z, p)
    return clipped(z, p, np.maximum(p.clip_sigma, p.quiet_clip * np.quantile(np.abs(z), 0.999, axis=0)))


def centre_shifts(
    tracks: Mapping[str, Any],
    z: np.ndarray,
    t: np.ndarray,
    xb: np.ndarray,
    valid: np.ndarray,
    x_mid: float,
    p: DetectParams,
    half_m: float | np.ndarray | None = None,
) -> np.ndarray:
    """Seconds to add to each track's ``t_mid`` to put it at the centre of its signature: the power centroid
    of its stacked trace (:func:`stacked_trace` at its speed over the live bins of ``x_lo``..``x_hi``) within
    ``half_m`` (one value, or one per track; ``p.recentre_m`` when None) of travel either side of ``t_mid``
    (columns as for :func:`stacked_speeds`). 0 where that is 0, the track lies on fewer than four live bins
    or the trace is empty."""
    t_mid = np.asarray(tracks["t_mid"], dtype=float)
    shifts = np.zeros(len(t_mid))
    half_m = p.recentre_m if half_m is None else half_m
    if not np.any(np.asarray(half_m) > 0) or len(t_mid) == 0 or len(t) < 2:
        return shifts
    dt = float(t[1] - t[0])
    zc = clipped(z, p)
    for i, tm, v_kmh, direction, cols, taus in _track_windows(tracks, xb, valid, half_m, dt):
        power = stacked_trace(zc, t[0], dt, cols, xb[cols] - x_mid, tm + taus, direction / (v_kmh * KMH)) ** 2
        if power.sum() > 0:
            shifts[i] = float(np.sum(taus * power) / power.sum())
    return shifts


def recentre_alone(
    vehicles: pd.DataFrame,
    z: np.ndarray,
    t: np.ndarray,
    xb: np.ndarray,
    valid: np.ndarray,
    x_mid: float,
    p: DetectParams,
) -> None:
    """Move each vehicle that no merge placed (no "merged" flag) to the centre of its signature
    (:func:`centre_shifts`), in place: a heavy one ("truck" or "tram") that passes alone (no "near" flag)
    within ``p.recentre_m`` of travel, a lone car within ``p.recentre_car_m`` but at most
    :data:`RECENTRE_CAR_S` of travel either side, a car near another within ``p.recentre_near_m`` but at most
    :data:`RECENTRE_NEAR_S`; ``t_mid``, ``t_in`` and ``t_out`` shift together and the "near" flags are
    re-read. A heavy vehicle near another is left where it is (the other's signature would pull it). Nothing
    changes where every length is 0 or the table has no ``vehicle_class``."""
    if len(vehicles) == 0 or "vehicle_class" not in vehicles:
        return
    flags = vehicles["flags"] if "flags" in vehicles else [""] * len(vehicles)
    merged = np.array(has_flag(flags, "merged"), dtype=bool)
    near = np.array(has_flag(flags, "near"), dtype=bool)
    cls = vehicles["vehicle_class"].to_numpy()
    speed = vehicles["speed_kmh"].to_numpy(dtype=float) * KMH
    lone_car_m = np.minimum(p.recentre_car_m, RECENTRE_CAR_S * speed)
    near_car_m = np.minimum(p.recentre_near_m, RECENTRE_NEAR_S * speed)
    lone_heavy = np.isin(cls, ("truck", "tram")) & ~near
    car_m = np.where(near, near_car_m, lone_car_m)
    half_m = np.where(lone_heavy, p.recentre_m, np.where(cls == "car", car_m, 0.0))
    pick = np.flatnonzero(~merged & (half_m > 0))
    if len(pick) == 0:
        return
    shifts = centre_shifts(vehicles.iloc[pick], z, t, xb, valid, x_mid, p, half_m[pick])
    for c in ("t_mid", "t_in", "t_out"):
        if c in vehicles:
            col = vehicles[c].to_numpy(dtype=float).copy()
            col[pick] += shifts
            vehicles[c] = col
    if "flags" in vehicles:
        vehicles["flags"] = set_flag(
            vehicles["flags"], "near", near_others(vehicles["t_mid"].to_numpy(float))
        )


class _LazyPower:
    """Power of the channel-mean of ``z`` along t = times + slowness * xr, per slowness, computed only where
    the climb looks (a few of the trial speeds; -inf outside the allowed ones)."""

    def __init__(self, z, t0, dt, cols, xr, times, slowness, ok):
        self.z, self.t0, self.dt, self.cols, self.xr, self.times = z, t0, dt, cols, xr, times
        self.slowness, self.ok, self.memo = slowness, ok, {}

    def __len__(self) -> int:
        return len(self.slowness)

    def __getitem__(self, j: int) -> float:
        if not self.ok[j]:
            return -np.inf
        if j not in self.memo:
            trace = stacked_trace(self.z, self.t0, self.dt, self.cols, self.xr, self.times, self.slowness[j])
            self.memo[j] = float(np.sum(trace * trace))
        return self.memo[j]


def stacked_trace(
    z: np.ndarray,
    t0: float,
    dt: float,
    cols: np.ndarray,
    xr: np.ndarray,
    times: np.ndarray,
    slowness: float,
) -> np.ndarray:
    """Channel mean of the image ``z`` (rows every ``dt`` from ``t0``) over the columns ``cols`` (at ``xr``
    from mid-section) along the lines t = times + slowness * xr, linearly interpolated in time (0 outside the
    image), one value per entry of ``times``."""
    n_rows = z.shape[0]
    r = (np.asarray(times)[:, None] + slowness * np.asarray(xr)[None, :] - t0) / dt
    r0 = np.floor(r)
    inside = (r0 >= 0) & (r0 < n_rows - 1)
    r0 = np.clip(r0, 0, n_rows - 2).astype(np.intp)
    f = r - r0
    vals = (1 - f) * z[r0, cols] + f * z[r0 + 1, cols]
    return np.where(inside, vals, 0.0).mean(axis=1)


def _climb(score, k: int) -> int:
    """Index of the local maximum of ``score`` (an array, or anything indexable with a length) reached by
    climbing from index ``k``."""
    while True:
        nb = [j for j in (k - 1, k + 1) if 0 <= j < len(score)]
        j = max(nb, key=lambda j: score[j])
        if not score[j] > score[k]:
            return k
        k = j
