"""How many true vehicles a record's noise lets any detector find: the oracle ceiling.

:func:`oracle_detectability` reads each true vehicle's envelope along its *known* track in the detector's own
band images and compares it with random tracks of the same record made without traffic
(:func:`noise_only`); :func:`track_statistic` is that along-track statistic (also used by
:func:`terralab.das.losses.track_evidence`).

Examples
--------
Every vehicle of a bump-model street scene stands out of the same record made without traffic:

>>> from terralab.das import oracle, synthetic
>>> data, truth = synthetic.random_scene("bump", "urban", 1)
>>> noise = oracle.noise_only("bump", "urban", 1)
>>> table = oracle.oracle_detectability(data, truth, noise, site="urban")
>>> table[["n_scored", "detectable"]].to_dict("records")
[{'n_scored': 13, 'detectable': 1.0}]
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InvalidInputError
from .evaluate import score_table
from .params import KMH

if TYPE_CHECKING:
    import pandas as pd
    import xarray as xr

    from .lines import Band
    from .params import DetectParams

__all__ = [
    "REDUCERS",
    "isolated_statistics",
    "noise_only",
    "oracle_detectability",
    "scan_ceiling",
    "scan_scene",
    "scan_statistic",
    "track_statistic",
]

#: How :func:`track_statistic` pools the channels: the oracle's median (robust to a crossing vehicle) or the
#: mean (a little more power where the signal is weak on every channel).
REDUCERS = {"median": np.median, "mean": np.mean}


def oracle_detectability(
    data: xr.DataArray,
    truth: pd.DataFrame,
    noise: xr.DataArray,
    *,
    site: str = "any",
    false_alarm: float = 0.01,
    n_null: int = 300,
    seed: int = 0,
    params: DetectParams | None = None,
) -> pd.DataFrame:
    """How many true vehicles stand out of the instrument noise when their track is *known* (a ceiling).

    ``noise`` is the same record without traffic (same simulator parameters and noise levels; for the
    simulators here, the scene made with an empty vehicle list). Both records go through the detector's linear
    chain (low-pass, integration, channel bins, common-mode removal), scaled per channel by the *noise*
    record's robust level; for each true vehicle, the velocity-tuned envelope of the speed band and direction
    it belongs to (the detector's band image at its short pulse scale, with the noise record's scales) is read
    along its true track: the simulator's own path of the load centre where the truth carries it
    (``truth.attrs["tracks"]``: stop-and-go, turning), else a parabola through its section entry, middle and
    exit times. Per channel the largest value within ``max(0.3 s, 5 m / v)`` of the track counts, and the
    statistic is its median over the live channels (a vehicle must show on most of the section, not only where
    it crosses another). The same statistic along ``n_null`` random tracks of the noise record (speeds and
    directions of the true vehicles) gives the noise distribution; a vehicle is *detectable* when it exceeds
    the ``1 - false_alarm`` quantile. No track search and no interference from other vehicles on the null
    side: a detector working on this image cannot be expected to find vehicles this oracle misses, and the
    fraction it misses is the share of vehicles whose signal at the fibre is below the interrogator noise.

    Returns
    -------
    pandas.DataFrame
        One row: ``n_true``, ``n_scored`` (vehicles whose track lies in the record), ``n_null`` (null tracks),
        ``n_detectable``, ``detectable`` (fraction), ``auc`` (probability a vehicle beats a random null
        track); units in ``attrs["units"]`` and, in ``attrs["per_vehicle"]``, each true vehicle's statistic (a
        tuple in the truth's row order: null standard deviations above the null median, NaN where not scored);
        in ``attrs["noise_inflation"]`` how much the traffic raises the robust level the detector scales each
        channel by (median over channels of the data record's level over the noise record's; the null tracks
        here cross no traffic, the detector's image does).
    """
    from .lines import speed_band_edges
    from .params import resolve_params
    from .truth import true_tracks

    p = params if params is not None else resolve_params(None, {"site": site, "classify": False})
    images = _oracle_images(data, noise, p)
    t_n, _, xb, valid, t0_ns, inflation = images[2:]
    section = truth.attrs.get("section_m", (float(xb[0]), float(xb[-1])))
    x_mid = 0.5 * (section[0] + section[1])
    edges = speed_band_edges(p)
    cache: dict = {}

    def bands(v, d):
        k = _band_index(edges, v)
        if (k, d) not in cache:
            cache[(k, d)] = _band_pair(images, edges, k, d, p)
        return cache[(k, d)]

    cols = np.flatnonzero(valid)
    xc = xb[cols]
    v_true = truth["speed_kmh"].to_numpy(dtype=float) * KMH
    d_true = truth["direction"].to_numpy().astype(int)
    tracks = true_tracks(truth, xc, section, t0_ns)
    sig = np.array(
        [
            track_statistic(bands(v, d)[1], tc, v, cols) if tc is not None else np.nan
            for v, d, tc in zip(v_true, d_true, tracks)
        ]
    )
    rng = np.random.default_rng(seed)
    null = []
    if len(v_true):
        crossing = abs(section[1] - section[0]) / max(float(v_true.min()), 1.0)
        for _ in range(4 * n_null):
            if len(null) >= n_null:
                break
            i = int(rng.integers(len(v_true)))
            v, d = float(v_true[i]) * float(rng.uniform(0.9, 1.1)), int(d_true[i])
            lo, hi = t_n[0] + 0.5 * crossing, t_n[-1] - 0.5 * crossing
            tm = float(rng.uniform(lo, hi)) if hi > lo else float(rng.uniform(t_n[0], t_n[-1]))
            st = track_statistic(bands(v, d)[0], tm + d * (xc - x_mid) / v, v, cols)
            if np.isfinite(st):
                null.append(st)
    summary = _detectability(len(truth), sig, np.asarray(null), false_alarm)
    per_vehicle = summary.pop("per_vehicle")
    table = score_table([summary])
    table.attrs["per_vehicle"] = tuple(float(v) for v in per_vehicle)
    table.attrs["noise_inflation"] = inflation
    return table


def _oracle_images(data, noise, p, noise_image=None):
    """Both records through the detector's linear chain, scaled per channel by the noise record's robust
    level: (z_noise, z_data, t_noise s, t_data s, bin distances, valid bins, data start ns, the median over
    valid bins of the data record's own level over the noise record's: how much traffic raises it).
    ``noise_image``: the noise record's :func:`_linear_image`, when already made."""
    from .detect import channel_levels

    lf_n, t_n, xb, valid_n, _ = noise_image if noise_image is not None else _linear_image(noise, p)
    lf_s, t, _, valid_s, t0_ns = _linear_image(data, p)
    if lf_n.shape[1] != lf_s.shape[1]:
        raise InvalidInputError("the noise record must have the channels of the data record")
    mad = channel_levels(lf_n)
    valid = valid_n & valid_s & (mad > 0)
    z_n = np.zeros_like(lf_n)
    z_s = np.zeros_like(lf_s)
    z_n[:, valid] = lf_n[:, valid] / mad[valid]
    z_s[:, valid] = lf_s[:, valid] / mad[valid]
    inflation = float(np.median(channel_levels(z_s[:, valid]))) if valid.any() else float("nan")
    return z_n, z_s, t_n, t, xb, valid, t0_ns, inflation


def _band_index(edges: np.ndarray, v: float) -> int:
    """The speed band (between ``edges``, m/s) a vehicle at ``v`` m/s belongs to."""
    return int(np.clip(np.searchsorted(edges, v) - 1, 0, len(edges) - 2))


def _band_pair(images, edges: np.ndarray, k: int, d: int, p: DetectParams) -> tuple[Band, Band]:
    """Band ``k`` of direction ``d`` of both :func:`_oracle_images` (noise, then data with the noise band's
    scales), at the short pulse scale."""
    from .lines import band_image

    z_n, z_s, t_n, t, xb, valid = images[:6]
    dt, dxb = float(np.median(np.diff(t))), float(np.median(np.diff(xb)))
    bn = band_image(z_n, t_n, dt, xb, dxb, valid, edges[k], edges[k + 1], d, p, p.pulse_m)
    bs = band_image(z_s, t, dt, xb, dxb, valid, edges[k], edges[k + 1], d, p, p.pulse_m, scales=bn.scales)
    return bn, bs


def _check_statistics(statistics) -> None:
    """Refuse ``statistics`` that name no :data:`REDUCERS` (or none at all)."""
    if not statistics or any(st not in REDUCERS for st in statistics):
        raise InvalidInputError(f"statistics must be some of {sorted(REDUCERS)}, got {statistics!r}")


def _linear_image(rec, p):
    """(image, times s, bin distances, live bins, start ns): low-passed, integrated, binned, common mode
    out."""
    from .detect import decimate

    prod, dec, _ = decimate(rec, p)
    t0 = int(rec["time"].values[0].astype("datetime64[ns]").astype(np.int64))
    lf = prod.lf.astype(np.float32)
    valid = np.abs(lf).max(axis=0) > 0
    if p.common_mode and valid.sum() >= 5:
        lf = lf - np.median(lf[:, valid], axis=1, keepdims=True)
    return lf, (prod.lf_time_ns - t0) / 1e9, dec.bin_distance, valid, t0


def track_statistic(b: Band, tc: np.ndarray, v: float, cols: np.ndarray, reduce: str = "median") -> float:
    """Median (``reduce``, :data:`REDUCERS`) over the live channels ``cols`` of the band's largest envelope
    within ``max(0.3 s, 5 m / v)`` of the track times ``tc``, in noise units; NaN when less than 30 % of the
    track lies in the record."""
    w = max(0.3, 5.0 / v)
    offs = np.arange(-w, w + 1e-9, b.dt)
    rows = np.round((np.nan_to_num(tc, nan=-1e9)[:, None] + offs[None, :] - b.t[0]) / b.dt).astype(int)
    inside = (rows >= 0) & (rows < len(b.t))
    full = inside.all(axis=1)
    if full.mean() < 0.3:
        return np.nan
    vals = b.env[np.clip(rows[full], 0, len(b.t) - 1), cols[full][:, None]]
    return float(REDUCERS[reduce](vals.max(axis=1)) / b.sigma)


def _detectability(n_true: int, sig, null, false_alarm: float) -> dict[str, Any]:
    """The oracle's summary from the vehicles' statistics ``sig`` and the null tracks' ``null``."""
    ok = np.isfinite(sig)
    out = {"n_true": n_true, "n_scored": int(ok.sum()), "n_null": len(null)}
    if len(null) < 20 or not ok.any():
        return {**out, "n_detectable": 0, "detectable": float("nan"), "auc": float("nan"), "per_vehicle": sig}
    thr = np.quantile(null, 1.0 - false_alarm)
    return {
        **out,
        "n_detectable": int(np.sum(sig[ok] > thr)),
        "detectable": float(np.mean(sig[ok] > thr)),
        "auc": float(np.mean(sig[ok][:, None] > null[None, :])),
        "per_vehicle": (sig - np.median(null)) / (np.std(null) + 1e-12),
    }


def noise_only(simulator: str, site: str, seed: int, **overrides: Any) -> xr.DataArray:
    """The random scene of ``simulator``/``site``/``seed`` with no traffic (its noise and channel faults
    only)."""
    import pandas as pd

    from . import synthetic

    cls = "kind" if simulator == "halfspace" else "vehicle_class"
    empty = pd.DataFrame(
        {
            "time_s": pd.Series(dtype=float),
            "speed_kmh": pd.Series(dtype=float),
            "direction": pd.Series(dtype=int),
            cls: pd.Series(dtype=object),
        }
    )
    data, _ = synthetic.random_scene(simulator, site, seed, vehicles=empty, **overrides)
    return data


def scan_statistic(
    b: Band, cols: np.ndarray, xc: np.ndarray, x_mid: float, speeds: np.ndarray, reduce: str = "median"
) -> np.ndarray:
    """:func:`track_statistic` of every straight track of the band's direction through mid-section at each
    of the band's times (``b.t``), maximised over ``speeds`` (m/s); -inf where the track leaves the record.
    What a detector reading this image must test everywhere, where the oracle tests one track per vehicle."""
    from scipy.ndimage import maximum_filter1d

    n, env = len(b.t), b.env[:, cols]
    out = np.full(n, -np.inf)
    lane = np.arange(len(cols))[None, :]
    ahead: dict[int, np.ndarray] = {}  # per window length j: the largest of env[r : r + j] at row r
    for v in speeds:
        w = max(0.3, 5.0 / v)
        j = len(np.arange(-w, w + 1e-9, b.dt))  # the rows track_statistic reads around a track's time
        if j not in ahead:
            centred = maximum_filter1d(env, size=j, axis=0, mode="constant", cval=0.0)
            ahead[j] = np.roll(centred, -(j // 2), axis=0)
        first = np.round(b.direction * (xc - x_mid) / v / b.dt - w / b.dt).astype(int)
        rows = np.arange(n)[:, None] + first[None, :]
        whole = ((rows >= 0) & (rows + j <= n)).all(axis=1)
        if whole.any():
            vals = ahead[j][rows[whole], lane]
            out[whole] = np.maximum(out[whole], REDUCERS[reduce](vals, axis=1) / b.sigma)
    return out


def scan_scene(
    data: xr.DataArray,
    truth: pd.DataFrame,
    noise: xr.DataArray,
    *,
    site: str = "any",
    statistics: tuple[str, ...] = ("median", "mean"),
    speed_step: float = 0.03,
    separation_s: float = 0.5,
    params: DetectParams | None = None,
) -> dict[str, dict[str, Any]]:
    """The oracle's statistic of every true vehicle and the peaks of the same statistic scanned over the
    record without traffic (``noise``, as for :func:`oracle_detectability`): every mid-section time, every
    speed of the detector's range (steps of ``speed_step``, relative), both directions
    (:func:`scan_statistic`). Each peak, the largest value within ``separation_s`` of it in its direction,
    is a false detection that a detector thresholding this statistic would make. Tracks that leave the record
    are not scanned, as the scorer counts no detection of a partly recorded vehicle (this favours the
    detector).

    Returns
    -------
    dict
        Per statistic of ``statistics`` (:data:`REDUCERS`): ``statistic``, ``vehicles`` (each true vehicle's
        statistic in the truth's row order, NaN where not scored) and ``null_peaks`` (descending), both in
        noise units (the band's sigma); pooled over scenes by :func:`scan_ceiling`.
    """
    from scipy.ndimage import maximum_filter1d

    from .lines import speed_band_edges
    from .params import resolve_params
    from .truth import true_tracks

    _check_statistics(statistics)
    p = params if params is not None else resolve_params(None, {"site": site, "classify": False})
    images = _oracle_images(data, noise, p)
    t_n, t, xb, valid, t0_ns = images[2:7]
    section = truth.attrs.get("section_m", (float(xb[0]), float(xb[-1])))
    x_mid = 0.5 * (section[0] + section[1])
    edges = speed_band_edges(p)
    cols = np.flatnonzero(valid)
    tracks = true_tracks(truth, xb[cols], section, t0_ns)
    band_of = [_band_index(edges, v * KMH) for v in truth["speed_kmh"].to_numpy(dtype=float)]
    k_sep = max(1, round(separation_s / float(np.median(np.diff(t)))))
    out = {s: {"statistic": s, "vehicles": np.full(len(truth), np.nan), "null_peaks": []} for s in statistics}
    for d in (1, -1):
        scan = {s: np.full(len(t_n), -np.inf) for s in statistics}
        for k in range(len(edges) - 1):
            bn, bs = _band_pair(images, edges, k, d, p)
            speeds = np.exp(np.arange(np.log(edges[k]), np.log(edges[k + 1]), np.log1p(speed_step)))
            mine = [j for j in range(len(truth)) if band_of[j] == k and truth["direction"].iloc[j] == d]
            for s in statistics:
                band_scan = np.interp(t_n, bn.t, scan_statistic(bn, cols, xb[cols], x_mid, speeds, s))
                scan[s] = np.fmax(scan[s], band_scan)  # (NaN where it interpolates over -inf)
                for j in mine:
                    v = float(truth["speed_kmh"].iloc[j]) * KMH
                    out[s]["vehicles"][j] = (
                        np.nan if tracks[j] is None else track_statistic(bs, tracks[j], v, cols, s)
                    )
        for s in statistics:
            top = np.isfinite(scan[s]) & (
                scan[s] >= maximum_filter1d(scan[s], size=2 * k_sep + 1, mode="nearest")
            )
            out[s]["null_peaks"].extend(scan[s][top])
    for s in statistics:
        out[s]["null_peaks"] = np.sort(np.asarray(out[s]["null_peaks"], dtype=float))[::-1]
    return out


def scan_ceiling(scans: list[dict[str, Any]], *, precision: float = 0.97) -> pd.DataFrame:
    """The recall that no detector thresholding this statistic can exceed at ``precision``, over scenes
    (:func:`scan_scene` results of one statistic): the threshold lets through at most ``(1 - precision) /
    precision`` false peaks per scored vehicle over all the noise scans (as if every vehicle were found, which
    favours the detector), and the ceiling is the share of scored vehicles above it. Optimistic as a bound
    should be: the noise scans hold no traffic (no vehicle's lobes, echoes or vibration), and the statistic
    is read on each vehicle's true track.

    Returns
    -------
    pandas.DataFrame
        One row: ``n_scenes``, ``n_scored``, ``threshold`` (noise units), ``false_peaks`` (above it, all
        scenes), ``recall_ceiling``.
    """
    if not scans:
        raise InvalidInputError("scan_ceiling needs at least one scan_scene result")
    if not 0.0 < precision < 1.0:
        raise InvalidInputError(f"precision must lie strictly between 0 and 1, got {precision!r}")
    kinds = {s.get("statistic") for s in scans}
    if len(kinds) != 1:
        raise InvalidInputError(f"pool scans of one statistic at a time, got {sorted(map(str, kinds))}")
    sig = np.concatenate([np.asarray(s["vehicles"], dtype=float) for s in scans])
    sig = sig[np.isfinite(sig)]
    null = np.sort(np.concatenate([np.asarray(s["null_peaks"], dtype=float) for s in scans]))[::-1]
    allowed = int(np.floor((1.0 - precision) / precision * len(sig) + 1e-9))
    thr = float(null[allowed]) if allowed < len(null) else -np.inf
    row = {
        "n_scenes": len(scans),
        "n_scored": len(sig),
        "threshold": thr,
        "false_peaks": int(np.sum(null > thr)),
        "recall_ceiling": float(np.mean(sig > thr)) if len(sig) else float("nan"),
    }
    return score_table([row])


def isolated_statistics(
    truth: pd.DataFrame,
    noise: xr.DataArray,
    site: str,
    seed: int,
    *,
    statistics: tuple[str, ...] = ("median", "mean"),
    params: DetectParams | None = None,
    **overrides: Any,
) -> dict[str, np.ndarray]:
    """Each whole vehicle of the half-space scene ``(site, seed, overrides)`` alone on that scene's record
    without traffic (``noise``, :func:`noise_only`; ``truth`` the scene's truth table): its
    :func:`~terralab.das.halfspace.vehicle_signals` signal added to the noise on the live channels, read as
    :func:`scan_scene` reads the vehicles (the statistic on its true track in its speed band). A stronger
    neighbour's flank cannot lift it here and no neighbour can mask it; in :func:`scan_ceiling`, in place of
    a scan's ``vehicles``, it gives the ceiling of a detector that removed every other vehicle perfectly.

    Returns
    -------
    dict
        Per statistic of ``statistics`` (:data:`REDUCERS`): each vehicle's statistic in the truth's row order
        (noise units; NaN where not scored).
    """
    from .halfspace import vehicle_signals
    from .lines import speed_band_edges
    from .params import resolve_params
    from .truth import true_tracks

    _check_statistics(statistics)
    p = params if params is not None else resolve_params(None, {"site": site, "classify": False})
    values = np.asarray(noise.values)
    live = np.isfinite(values).all(axis=0) & (np.abs(np.nan_to_num(values)).max(axis=0) > 0)
    noise_image = _linear_image(noise, p)
    edges = speed_band_edges(p)
    out = {st: np.full(len(truth), np.nan) for st in statistics}
    for row, signal in vehicle_signals(site, seed, **overrides):
        if row is None:
            continue
        alone = noise.copy(data=np.where(live[None, :], values + signal[: len(values)], values))
        images = _oracle_images(alone, noise, p, noise_image)
        xb, valid, t0_ns = images[4:7]
        v, d = float(truth["speed_kmh"].iloc[row]) * KMH, int(truth["direction"].iloc[row])
        _, bs = _band_pair(images, edges, _band_index(edges, v), d, p)
        cols = np.flatnonzero(valid)
        section = truth.attrs.get("section_m", (float(xb[0]), float(xb[-1])))
        track = true_tracks(truth, xb[cols], section, t0_ns)[row]  # (the simulator's paths align with rows)
        for st in statistics:
            out[st][row] = np.nan if track is None else track_statistic(bs, track, v, cols, st)
    return out
