"""The second detection image: band-limited energy of the strain rate, searched by slant stacking.

Used with ``image="both"`` (:class:`~terralab.das.params.DetectParams`): :func:`energy_image` builds one
noise-normalised image from the energy bands of :class:`~terralab.das.filters.Decimator`,
:func:`energy_tracks` finds straight tracks in it and follows their ridges, and :func:`fuse_tracks` adds the
vehicles the strain image missed.

Examples
--------
The energy image of a toy energy cube (rows at 8 Hz, 20 channel bins, 2 bands) of exponential noise that one
vehicle's track crosses at one bin per row: in every bin the image is largest on the track. (On a record,
the detector builds the cube with :class:`~terralab.das.filters.Decimator`:
``detect_vehicles(data, image="both")``.)

>>> import numpy as np
>>> from terralab.das.energy import energy_image
>>> from terralab.das.params import resolve_params
>>> energy = np.random.default_rng(0).exponential(1.0, (240, 20, 2))
>>> rows = 120 + np.arange(20)
>>> energy[rows, np.arange(20), :] += 50.0
>>> p = resolve_params(None, {"site": "urban"})
>>> ze = energy_image(energy, np.zeros(2), 0.125, np.ones(20, dtype=bool), p)
>>> ze.shape, bool((ze.argmax(axis=0) == rows).all())
((240, 20), True)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .lines import Band
from .params import KMH
from .restack import clipped
from .tracks import robust_fit, track_summary

if TYPE_CHECKING:
    from .params import DetectParams

__all__ = ["energy_image", "energy_tracks", "fuse_tracks"]


def energy_image(
    energy: np.ndarray, delays_s: np.ndarray, dt: float, valid: np.ndarray, p: DetectParams
) -> np.ndarray | None:
    """One noise-normalised detection image from the band-limited energies (time, bin, band).

    Each band is moved back by its chain's extra delay, divided by its own per-channel noise level (a low
    percentile over time: the record's quiet moments), compressed (log or sqrt), and the bands are combined;
    the result is normalised per channel to unit robust noise, like the strain image.
    """
    n_t, n_b, n_k = energy.shape
    if n_k == 0 or n_t < 8:
        return None
    acc = np.zeros((n_t, n_b), dtype=np.float32)
    cols = np.flatnonzero(valid)
    for k in range(n_k):
        e = energy[:, :, k]
        sh = round(float(float(delays_s[k]) / dt)) if len(delays_s) > k else 0
        if 0 < sh < n_t:
            e = np.concatenate([e[sh:], np.repeat(e[-1:], sh, axis=0)], axis=0)
        noise = np.percentile(e[:, cols], p.energy_noise_q, axis=0)
        noise = np.where(noise > 0, noise, np.inf)
        r = np.zeros((n_t, len(cols)), dtype=np.float32)
        r[:] = e[:, cols] / noise[None, :]
        if p.energy_compress == "sqrt":
            c = np.sqrt(r)
        else:
            c = np.log(np.maximum(r, 1e-2))
        acc[:, cols] += c / n_k
    med, mad = _lower_tail_noise(acc[:, cols], axis=0)
    out = np.zeros_like(acc)
    good = mad > 0
    out[:, cols[good]] = (acc[:, cols[good]] - med[good]) / mad[good]
    return clipped(out, p)


def _slant_stack(ze, dt, xb, valid, x_mid, slowness, direction, *, keep: float, min_cover: float):
    """Robust mean of ``ze`` along straight tracks t = t0 + direction * s * (x - x_mid), for every t0 row.

    Along each track the values are clipped, the highest ``1 - keep`` fraction is dropped (a track that only
    crosses a strong vehicle's ridge gains nothing from the crossing), and the rest is averaged; tracks that
    see fewer than ``min_cover`` of the live channels inside the record are NaN.
    """
    cols = np.flatnonzero(valid)
    n_t = ze.shape[0]
    off = direction * slowness * (xb[cols] - x_mid) / dt  # rows, per column
    i0 = np.floor(off).astype(int)
    f = (off - i0).astype(np.float32)
    pad = int(np.abs(i0).max()) + 2
    z = np.full((n_t + 2 * pad, len(cols)), np.nan, dtype=np.float32)
    z[pad : pad + n_t] = ze[:, cols]
    rows = np.arange(n_t)[:, None] + pad + i0[None, :]
    cidx = np.arange(len(cols))[None, :]
    g = (1 - f)[None, :] * z[rows, cidx] + f[None, :] * z[rows + 1, cidx]
    n_ok = np.sum(np.isfinite(g), axis=1)
    g = np.where(np.isfinite(g), g, -np.inf)
    k = max(1, round(float(keep * len(cols))))
    # the k lowest finite values: sorting puts the -inf (missing) first, so the cut starts after them
    g.sort(axis=1)
    miss = len(cols) - n_ok
    idx = np.clip(miss[:, None] + np.arange(k)[None, :], 0, len(cols) - 1)
    sel = np.take_along_axis(g, idx, axis=1)
    sel = np.where(np.isfinite(sel), sel, 0.0)
    out = sel.sum(axis=1) / np.maximum(np.minimum(k, n_ok), 1)
    out[n_ok < min_cover * len(cols)] = np.nan
    return out


def energy_tracks(
    ze: np.ndarray,
    t: np.ndarray,
    dt: float,
    xb: np.ndarray,
    dxb: float,
    valid: np.ndarray,
    x_mid: float,
    length: float,
    section: tuple[float, float],
    p: DetectParams,
) -> list[dict]:
    """Vehicle tracks from the energy image by slant stacking (straight tracks, then a ridge-following fit).

    For each direction and speed (steps of ``speed_resolution``, at least 2 %) the robust along-track mean of
    the energy image is computed for every time; its local maxima over time and speed that exceed
    ``energy_threshold`` times the noise of the stack are vehicles. A stronger maximum of the same direction
    within ``energy_exclusion_m`` of travel (in time) and 15 % of speed suppresses a weaker one (one vehicle,
    one track); vehicles 1.2 s apart stay apart when their energies dip in between.
    """
    from scipy import ndimage

    if valid.sum() < 3:
        return []
    zc = np.clip(ze, -3.0, p.energy_clip)
    step = max(p.speed_resolution, 0.02)
    speeds = np.exp(
        np.arange(np.log(p.speed_min_kmh * KMH), np.log(p.speed_max_kmh * KMH) + 1e-9, np.log1p(step))
    )
    out = []
    for direction in (1, -1):
        stack = np.stack(
            [
                _slant_stack(
                    zc, dt, xb, valid, x_mid, 1.0 / v, direction, keep=p.energy_keep, min_cover=p.min_coverage
                )
                for v in speeds
            ],
            axis=0,
        )  # (speed, t)
        finite = np.isfinite(stack)
        if finite.sum() < 10:
            continue
        centre, sig = _lower_tail_noise(stack[finite])
        snr = np.where(finite, (stack - centre) / sig, -np.inf)
        # local maxima over +-1 speed step and +-0.4 s
        w_t = max(1, round(float(0.4 / dt)))
        mx = ndimage.maximum_filter(snr, size=(3, 2 * w_t + 1), mode="nearest")
        peaks = np.argwhere((snr >= mx) & (snr >= p.energy_threshold))
        order = np.argsort(-snr[peaks[:, 0], peaks[:, 1]])
        kept = []
        cols = np.flatnonzero(valid)
        xs = xb[cols] - x_mid
        lo_all, hi_all = [], []
        for si, ti in peaks[order]:
            v = speeds[si]
            t0 = t[ti]
            # explain away: a track that runs inside a stronger vehicle's energy ridge over much of the
            # section is that vehicle (at a slightly wrong speed or time, its vibration halo, its other axles)
            tc = t0 + direction * xs / v
            claimed = np.zeros(len(xs), dtype=bool)
            for lo, hi in zip(lo_all, hi_all):
                claimed |= (tc >= lo) & (tc <= hi)
            if claimed.mean() > p.energy_overlap:
                continue
            kept.append((v, t0, snr[si, ti]))
            lo, hi = _ridge_extent(zc, t, dt, cols, tc, p)
            lo_all.append(lo)
            hi_all.append(hi)
        for v, t0, snr_v in kept:
            tr = _energy_track(ze, t, dt, xb, dxb, valid, x_mid, length, section, direction, v, t0, snr_v, p)
            if tr is not None:
                out.append(tr)
    return out


def _ridge_extent(ze, t, dt, cols, tc, p: DetectParams, max_s: float = 6.0):
    """Per channel, the time interval around ``tc`` over which the energy stays above half its local peak (and
    above 1 noise unit), padded by half the time ``energy_exclusion_m`` takes at the track's speed."""
    n_t = len(t)
    w = max(2, round(float(max_s / dt)))
    r = np.round((tc - t[0]) / dt).astype(int)
    offs = np.arange(-w, w + 1)
    rows = r[:, None] + offs[None, :]
    inside = (rows >= 0) & (rows < n_t)
    vals = np.where(inside, ze[np.clip(rows, 0, n_t - 1), cols[:, None]], -np.inf)
    # local peak near the track (within +-0.5 s)
    near = np.abs(offs) <= max(1, round(float(0.5 / dt)))
    peak = np.max(np.where(near[None, :], vals, -np.inf), axis=1)
    level = np.maximum(0.5 * peak, 1.0)
    above = vals >= level[:, None]
    centre = w
    # walk outwards from the centre: first sample below the level on each side
    right = above[:, centre:]
    left = above[:, : centre + 1][:, ::-1]
    n_right = np.where(right.all(axis=1), right.shape[1], np.argmin(right, axis=1))
    n_left = np.where(left.all(axis=1), left.shape[1], np.argmin(left, axis=1))
    pad = 0.5 * dt
    lo = tc - n_left * dt - pad
    hi = tc + n_right * dt + pad
    return lo, hi


def _energy_track(ze, t, dt, xb, dxb, valid, x_mid, length, section, direction, v, t0, snr_v, p):
    """Track dict (as :func:`~terralab.das.tracks.refine_track` makes) for a slant-stack peak, refined by
    following the energy ridge."""
    cols = np.flatnonzero(valid)
    tp = t0 + direction * (xb[cols] - x_mid) / v
    half = max(2, round(float(0.5 * p.energy_exclusion_m / v / dt)))
    r = np.round((tp - t[0]) / dt).astype(int)
    offs = np.arange(-half, half + 1)
    rows = r[:, None] + offs[None, :]
    inside = (rows >= 0) & (rows < len(t))
    vals = np.where(inside, ze[np.clip(rows, 0, len(t) - 1), cols[:, None]], -np.inf)
    # the ridge: maximum near the straight track, weighted towards it
    k = np.argmax(vals - 0.05 * np.abs(offs)[None, :], axis=1)
    best = vals[np.arange(len(cols)), k]
    ok = np.isfinite(best) & (best > 1.0)
    if ok.sum() < max(4, p.min_fill * p.min_coverage * len(cols)):
        return None
    px = xb[cols[ok]]
    pt = t[np.clip(r[ok] + offs[k[ok]], 0, len(t) - 1)]
    pe = best[ok]
    quad = np.ptp(px) >= 0.4 * length and len(px) >= 8
    poly = robust_fit(px - x_mid, pt, np.maximum(pe, 0.1), quadratic=quad, tol_s=max(dt, 0.1))
    if poly is None:
        return None
    good = np.abs(poly(px - x_mid) - pt) <= max(2 * dt, 0.3)
    if good.sum() < 4:
        return None
    px, pt, pe = px[good], pt[good], pe[good]
    dpoly = poly.deriv()
    slope_mid = dpoly(0.0)
    if slope_mid == 0 or np.sign(slope_mid) != direction:
        return None
    speed = 1.0 / abs(slope_mid)
    if abs(np.log(speed / v)) > 0.25:  # the fit wandered off to another ridge: keep the stack's estimate
        poly = np.poly1d([direction / v, t0])
        speed = v
    span = float(np.ptp(px)) + dxb
    coverage = min(1.0, span / (length + dxb))
    if coverage < p.min_coverage:
        return None
    band = Band(
        v_lo=speed / 1.2,
        v_hi=speed * 1.2,
        direction=direction,
        m=1,
        dt=dt,
        slope=speed * dt / dxb,
        t=t,
        env=np.maximum(ze, 0.0),
        sigma=1.0,
        thr=1.0,
        ridge=np.zeros((0, 0), dtype=bool),
        pulse_m=p.pulse_m,
    )
    score = float(min(1.0, len(px) / max(1, valid.sum())))
    track = track_summary(
        band,
        poly,
        px,
        pt,
        pe,
        speed=speed,
        x_mid=x_mid,
        section=section,
        coverage=coverage,
        score=score,
        snr=snr_v,
    )
    track["source"] = "energy"
    return track


def fuse_tracks(strain_tracks: list[dict], energy_tracks: list[dict], p: DetectParams) -> list[dict]:
    """Union of the strain and energy tracks: an energy track that repeats a strain track (same direction, mid
    times within the time the vehicle needs for ``energy_exclusion_m``, speeds within 15 %) is dropped."""
    out = list(strain_tracks)
    for e in energy_tracks:
        v = e["speed_kmh"] * KMH
        dup = any(
            s["direction"] == e["direction"]
            and abs(s["t_mid"] - e["t_mid"]) < p.energy_exclusion_m / v
            and abs(np.log(s["speed_kmh"] / e["speed_kmh"])) < 0.15
            for s in strain_tracks
        )
        if not dup:
            out.append(e)
    return out


def _lower_tail_noise(vals, axis=None):
    """Centre and standard deviation of the noise in an image where signal is positive and may fill much of
    it.

    The 5th and 25th percentiles are noise-only as long as vehicles cover less than ~70 % of the samples:
    for Gaussian noise, sigma = (q25 - q5) / 0.97 and the centre is q25 + 0.674 sigma.
    """
    if np.size(vals) == 0:
        return 0.0, 1.0
    q5, q25 = np.percentile(vals, [5.0, 25.0], axis=axis)
    sig = (q25 - q5) / 0.97
    centre = q25 + 0.674 * sig
    if axis is None:
        return float(centre), float(sig) if sig > 0 else 1.0
    return centre, sig
