"""Tracks: follow a merged track's ridge and fit t(x), summarise it, and explain away duplicates.

Steps 8-9 of the detector (:mod:`terralab.das.detect`): :func:`refine_track` follows the ridge of a cluster of
Hough segments and fits a quadratic t(x) (dropping one that no vehicle could follow: :func:`implied_accel`);
:func:`track_summary` gives the one track dict both detection images share; :func:`dedupe_tracks` drops a
vehicle found again (other speed band, echo of the other direction) and
:func:`merge_parallel` joins the parallel tracks of one vehicle (axle groups, bogies, strain lobes), using the
sign of the strain along each track (:func:`track_polarity`; :mod:`terralab.das.chains` drops the sign-less
ridge chains); :func:`set_flags` marks quality flags.

Examples
--------
The robust fit behind every track: a straight track t(x) through ridge points, one of them an outlier:

>>> import numpy as np
>>> from terralab.das.tracks import robust_fit
>>> x = np.linspace(-50.0, 50.0, 11)
>>> t = 10.0 + x / 11.0
>>> t[3] += 2.0
>>> poly = robust_fit(x, t, np.ones_like(x), quadratic=False, tol_s=0.05)
>>> round(float(1 / poly.coeffs[0]), 1), round(float(poly(0.0)), 2)
(11.0, 10.0)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from .lines import Band
from .params import KMH, LOBE_POLARITY, SPEEDUP_SHARE
from .peel import rank

#: Smallest strength of the weaker of two same-signed lobes relative to the stronger for ``pair_merge_m``.
PAIR_STRENGTH = 0.7
#: Two vehicles passing mid-section within this many seconds are "near" (flag; platoon for
#: :func:`~terralab.das.chains.drop_incoherent`).
NEAR_S = 2.0

if TYPE_CHECKING:
    from .params import DetectParams

__all__ = [
    "claim_s",
    "dedupe_tracks",
    "implied_accel",
    "merge_parallel",
    "near_others",
    "refine_track",
    "robust_fit",
    "set_flags",
    "track_polarity",
    "track_summary",
]


def track_summary(
    band: Band,
    poly: np.poly1d,
    px: np.ndarray,
    pt: np.ndarray,
    pe: np.ndarray,
    *,
    speed: float,
    x_mid: float,
    section: tuple[float, float],
    coverage: float,
    score: float,
    snr: float,
) -> dict:
    """The track dict of a fitted track t = poly(x - x_mid) through ridge points (px, pt, envelope pe).

    Times are read where the track enters, crosses the middle of and leaves ``section``; ``speed_change`` is
    relative (exit vs entry). ``strength`` is the summed envelope in the band's noise units.
    """
    direction = band.direction
    dpoly = poly.deriv()
    x_entry, x_exit = (section[0], section[1]) if direction > 0 else (section[1], section[0])
    s_in, s_out = dpoly(x_entry - x_mid), dpoly(x_exit - x_mid)
    speed_change = float((abs(1 / s_out) - abs(1 / s_in)) / speed) if s_in != 0 and s_out != 0 else 0.0
    return {
        "t_mid": float(poly(0.0)),
        "speed_kmh": speed / KMH,
        "direction": int(direction),
        "t_in": float(poly(x_entry - x_mid)),
        "t_out": float(poly(x_exit - x_mid)),
        "x_lo": float(px.min()),
        "x_hi": float(px.max()),
        "coverage": coverage,
        "score": score,
        "snr": float(snr),
        "speed_change": speed_change,
        "poly": poly,
        "n_points": len(px),
        "band": (band.v_lo / KMH, band.v_hi / KMH),
        "pts": (px - x_mid, pt),
        "strength": float(np.sum(pe) / band.sigma),
        "pulse_m": band.pulse_m,
        "band_obj": band,
        "merged": 0,
    }


def refine_track(
    member: Sequence[tuple[float, ...]],
    bands: Sequence[Band],
    xb: np.ndarray,
    dxb: float,
    valid: np.ndarray,
    x_mid: float,
    length: float,
    section: tuple[float, float],
    direction: int,
    p: DetectParams,
) -> dict | None:
    """Follow the ridge along a merged track and fit t(x); None when the track is too short or bends harder
    than a vehicle can (braking: ``p.max_accel_ms2``; speeding up:
    :data:`~terralab.das.params.SPEEDUP_SHARE` of it; :func:`implied_accel`)."""
    seg = np.asarray([m[:4] for m in member], dtype=float)
    w = np.abs(seg[:, 2] - seg[:, 0])
    xs = np.concatenate([seg[:, 0], seg[:, 2], 0.5 * (seg[:, 0] + seg[:, 2])])
    ts = np.concatenate([seg[:, 1], seg[:, 3], 0.5 * (seg[:, 1] + seg[:, 3])])
    ws = np.concatenate([w, w, w])
    coef = np.polyfit(xs - x_mid, ts, 1, w=np.sqrt(ws))
    if coef[0] == 0:
        return None
    v0 = abs(1.0 / coef[0])
    dbands = [i for i, b in enumerate(bands) if b.direction == direction]
    closest = min(dbands, key=lambda i: abs(np.log(v0 / np.sqrt(bands[i].v_lo * bands[i].v_hi))))
    best = None
    # follow the ridge in every band that contributed (a vehicle near a band edge is sharper in one of them)
    for bi in sorted({closest} | {int(m[4]) for m in member}):
        res = _follow_and_fit(bands[bi], np.poly1d(coef), xb, valid, x_mid, length, p)
        if res is not None and (best is None or res[4] > best[4]):
            best = res
    if best is None:
        return None
    band, poly, px, pt, pe = best[0], best[1], best[2], best[3], best[5]
    if p.speed_stack:
        poly = _stack_refine(band, poly, px, xb, valid, x_mid, length)
    if p.max_accel_ms2 > 0:
        accel = implied_accel(poly, px - x_mid, direction, signed=True)
        if not -p.max_accel_ms2 <= accel <= SPEEDUP_SHARE * p.max_accel_ms2:
            return None  # no vehicle bends its track this hard: a chain of other ridges
    span = float(np.ptp(px)) + dxb
    coverage = min(1.0, span / (length + dxb))
    n_bins_span = np.sum(valid & (xb >= px.min()) & (xb <= px.max()))
    filled = len(np.unique(np.round((px - xb[0]) / dxb))) / max(1, n_bins_span)
    if coverage < p.min_coverage or filled < p.min_fill:
        return None
    dpoly = poly.deriv()
    slope_mid = dpoly(0.0)
    if slope_mid == 0 or np.sign(slope_mid) != direction:
        return None
    speed = 1.0 / abs(slope_mid)
    score = float(min(1.0, len(np.unique(np.round((px - xb[0]) / dxb))) / max(1, valid.sum())))
    snr = float(np.median(pe) / band.sigma)
    return track_summary(
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
        snr=snr,
    )


def implied_accel(poly: np.poly1d, xr: np.ndarray, direction: int, *, signed: bool = False) -> float:
    """Mean |acceleration| (m/s^2) a vehicle following t = poly(x) needs between the first and the last of the
    offsets ``xr`` (m from mid-section): |v_b^2 - v_a^2| / (2 |x_b - x_a|) with v = 1/|dt/dx|; infinite where
    the track stops or turns back between them (dt/dx vanishes or changes sign against ``direction``).
    ``signed=True``: positive where the vehicle speeds up along ``direction``, negative where it brakes.

    The mean over the stretch, not the largest instantaneous value: a quadratic fit's curvature is noisy,
    and at 120 km/h a true straight vehicle's fit can bend enough to need 15 m/s^2 at its fast end.
    """
    lo, hi = float(np.min(xr)), float(np.max(xr))
    s1 = poly.deriv()(np.linspace(lo, hi, 33))
    if np.any(np.sign(s1) != np.sign(direction)):
        return float("inf")
    if hi <= lo:
        return 0.0
    a = (1.0 / s1[-1] ** 2 - 1.0 / s1[0] ** 2) / (2.0 * (hi - lo))
    return float(a * np.sign(direction) if signed else abs(a))


def _stack_refine(
    band: Band,
    poly,
    px,
    xb,
    valid,
    x_mid,
    length,
    rel: float = 0.08,
    n_rel: int = 33,
    max_shift_s: float = 0.4,
    max_change: float = 0.4,
    n_curv: int = 9,
):
    """Track re-read by slant stacking the band's envelope over the channels it covers.

    The followed ridge points can hop between the centre of a vehicle's strain and its lobes (or between axle
    groups, or onto a neighbour in a platoon) from channel to channel; a least-squares fit through them tilts
    or bends when they hop one way at the entry and the other at the exit. The stack follows the ridge that is
    strongest over the whole section instead: t(x) = t0 + shift + s x + a x^2 with the mid-section slowness s
    within ``rel`` of the fit, the time within ``max_shift_s`` and the speed change across the section within
    ``max_change`` (straight tracks only where the fit was linear).
    """
    cols = np.flatnonzero(valid & (xb >= px.min()) & (xb <= px.max()))
    if len(cols) < 4 or len(band.env) < 2:  # (a one-row envelope scores 0 everywhere: no interior maximum)
        return poly
    xr = xb[cols] - x_mid
    env, t0, dt = band.env, band.t[0], band.dt
    s0 = float(poly.deriv()(0.0))
    c0 = float(poly(0.0))
    scale = np.linspace(1 - rel, 1 + rel, n_rel)
    shifts = np.arange(-max_shift_s, max_shift_s + 1e-9, 0.5 * dt)
    curv = (
        (np.linspace(-max_change, max_change, n_curv) * s0 / max(length, 1.0))
        if poly.order >= 2
        else np.zeros(1)
    )
    # the (scale, curvature, shift, channel) grid a few scales at a time, so that its ~20 float64 / float32
    # passes stay in cache; element for element the same arithmetic as on the whole grid, and each score a
    # mean over the channels of one contiguous row as there. The envelope values come from flat gathers of
    # the covered channels (``nxt``: the next row). r grows with the shift (rounding is monotonic), so the
    # first and last shifts tell whether the chunk stays inside the record (nearly always): no edge masking.
    n_rows, n_cols = len(env), len(cols)
    flat = env[:, cols].ravel()
    nxt = flat[n_cols:]
    step = max(1, 65536 // (len(curv) * len(shifts) * n_cols))
    score = np.empty((n_rel, len(curv), len(shifts)), dtype=np.result_type(env.dtype, np.float32))
    for i0 in range(0, n_rel, step):
        base = (
            c0
            + shifts[None, None, :, None]
            + (scale[i0 : i0 + step] * s0)[:, None, None, None] * xr
            + curv[None, :, None, None] * xr**2
        )
        r = (base - t0) / dt
        r0 = np.floor(r)
        f = (r - r0).astype(np.float32)
        r0 = r0.astype(np.intp)
        edge = r0[:, :, 0].min() < 0 or r0[:, :, -1].max() >= n_rows - 1
        k = (np.clip(r0, 0, n_rows - 2) if edge else r0) * n_cols + np.arange(n_cols)
        vals = (1 - f) * flat.take(k, mode="clip") + f * nxt.take(k, mode="clip")  # clip: no bounds check
        if edge:
            vals = np.where((r0 >= 0) & (r0 < n_rows - 1), vals, 0.0)
        score[i0 : i0 + step] = vals.mean(axis=3)
    i, k, j = np.unravel_index(int(np.argmax(score)), score.shape)
    if i in (0, n_rel - 1):
        return poly  # no interior maximum: keep the fit
    return np.poly1d([curv[k], scale[i] * s0, c0 + shifts[j]])


def _follow_and_fit(band: Band, poly, xb, valid, x_mid, length, p: DetectParams):
    """(band, poly, x, t, strength, envelope) of the ridge followed near ``poly`` in one band, or None."""
    pts = None
    for half_window_s in (p.search_s, 0.5 * p.search_s):
        pts = _follow(band, poly, xb, valid, x_mid, half_window_s)
        if pts is None or len(pts[0]) < 4:
            return None
        px, pt, pe = pts
        quad = np.ptp(px) >= 0.4 * length and len(px) >= 8
        poly = robust_fit(px - x_mid, pt, pe, quadratic=quad, tol_s=max(band.dt, 0.1))
        if poly is None:
            return None
    px, pt, pe = pts
    good = np.abs(poly(px - x_mid) - pt) <= max(2 * band.dt, 0.25)
    if good.sum() < 4:
        return None
    return band, poly, px[good], pt[good], float(np.sum(pe[good]) / band.sigma), pe[good]


def _follow(band: Band, poly, xb, valid, x_mid, half_window_s):
    """Ridge points (x, t, envelope) near the predicted track t = poly(x - x_mid) in a band image."""
    env, tb = band.env, band.t
    n_rows = env.shape[0]
    thr = 0.6 * band.thr
    # per column: search rows within +- half_window_s of the prediction
    w_rows = max(2, int(np.ceil(half_window_s / band.dt)))
    cols = np.flatnonzero(valid)
    tp = poly(xb[cols] - x_mid)
    rp = np.round((tp - tb[0]) / band.dt).astype(int)
    offs = np.arange(-w_rows, w_rows + 1)
    rows = rp[:, None] + offs[None, :]
    inside = (rows >= 1) & (rows < n_rows - 1)
    rows_c = np.clip(rows, 1, n_rows - 2)
    vals = env[rows_c, cols[:, None]]
    vals = np.where(inside, vals, -np.inf)
    # the local maximum along time nearest to the prediction: close vehicles (platoons) keep separate ridges
    left = np.concatenate([np.full((len(cols), 1), -np.inf), vals[:, :-1]], axis=1)
    right = np.concatenate([vals[:, 1:], np.full((len(cols), 1), -np.inf)], axis=1)
    peak = (vals >= left) & (vals > right) & (vals >= thr)
    peak[:, 0] = peak[:, -1] = False
    dist = np.where(peak, np.abs(offs)[None, :] - 1e-3 * vals / max(thr, 1e-9), np.inf)
    k = np.argmin(dist, axis=1)
    best = vals[np.arange(len(cols)), k]
    r = rows_c[np.arange(len(cols)), k]
    ok = np.isfinite(dist[np.arange(len(cols)), k])
    cols, r, best = cols[ok], r[ok], best[ok]
    if len(cols) == 0:
        return None
    y0, y1, y2 = env[r - 1, cols], env[r, cols], env[r + 1, cols]
    den = y0 - 2 * y1 + y2
    frac = np.where(den < 0, 0.5 * (y0 - y2) / np.where(den < 0, den, -1), 0.0)
    frac = np.clip(frac, -0.5, 0.5)
    tt = np.interp(r + frac, np.arange(n_rows), tb)
    return xb[cols], tt, best


def robust_fit(
    x: np.ndarray, t: np.ndarray, w: np.ndarray, *, quadratic: bool, tol_s: float
) -> np.poly1d | None:
    deg = 2 if quadratic else 1
    keep = np.ones(len(x), dtype=bool)
    poly = None
    for _ in range(4):
        if keep.sum() < deg + 2:
            return None
        coef = np.polyfit(x[keep], t[keep], deg, w=np.sqrt(w[keep]))
        poly = np.poly1d(coef)
        r = np.abs(poly(x) - t)
        s = max(1.4826 * np.median(r[keep]), tol_s)
        new = r <= 3 * s
        if np.array_equal(new, keep):
            break
        keep = new
    return poly


def claim_s(k: dict, p: DetectParams) -> float:
    """Seconds either side of track ``k`` within which a ridge is that vehicle's own: half its pulse duration
    (long for a bridge span's response), at least ``0.35 * p.merge_eps_s``."""
    return max(0.35 * p.merge_eps_s, 0.5 * k.get("pulse_m", p.pulse_m) / (k["speed_kmh"] * KMH))


def dedupe_tracks(tracks: list[dict], p: DetectParams) -> list[dict]:
    """Explain away: drop a track whose ridge points mostly lie on a stronger track of the same direction.

    This removes the same vehicle found again in a neighbouring speed band, and the ghost tracks a strong
    truck leaves in bands of other speeds, while vehicles that only cross a stronger one (overtaking) keep
    their points elsewhere and survive.
    """
    tracks = sorted(tracks, key=rank)
    kept: list[dict] = []
    for tr in tracks:
        xs, ts = tr["pts"]
        claimed = np.zeros(len(xs), dtype=bool)
        ghost = np.zeros(len(xs), dtype=bool)
        for k in kept:
            kx, _ = k["pts"]
            inside = (xs >= kx.min() - 10.0) & (xs <= kx.max() + 10.0)
            near = inside & (np.abs(k["poly"](xs) - ts) <= claim_s(k, p))
            if k["direction"] == tr["direction"]:
                claimed |= near
            elif tr["strength"] < p.ghost_ratio * 0.5 * k["strength"]:
                # a much weaker track of the other direction built from a strong vehicle's own ridge: its echo
                ghost |= near
        if claimed.mean() <= 0.5 and (claimed | ghost).mean() <= 0.6:
            kept.append(tr)
    return kept


def merge_parallel(
    tracks: list[dict],
    xb: np.ndarray,
    valid: np.ndarray,
    x_mid: float,
    p: DetectParams,
    *,
    max_vehicle_m: float = 25.0,
    join_fraction: float = 0.6,
    bands: Sequence[Band] | None = None,
) -> list[dict]:
    """One vehicle, one track: merge same-direction tracks of nearly the same speed (fitted speeds within
    ``p.merge_speed_change`` as a log ratio) whose ridges are joined by signal all the way between them, as
    the axle groups of a long vehicle, its vibration halo or the sign-flipping lobes of its strain are; keep
    both where the envelope dips between them (two vehicles, even 1.2 s apart).

    Only tracks closer than the time a ``max_vehicle_m`` long vehicle takes to pass are compared (25 m by
    default, on every site: a tractor-trailer with its strain spreading; a 30-45 m tram's bogies can stay
    apart), and never more than ``p.max_merge_s`` apart (2 s: two vehicles of a slow platoon follow closer
    than a long vehicle takes to pass). With ``p.lobe_merge`` a track whose strain has the opposite sign of
    a stronger one (:func:`track_polarity`) is merged too, even where the envelope dips between them: it is
    that vehicle's lobe, and the vehicle keeps the stronger track's time. With ``p.pair_merge_m`` a track of
    the same sign and comparable strength (at least :data:`PAIR_STRENGTH` of the stronger) within that
    distance is merged at the midpoint of the two: they are the lobes ahead of and behind one vehicle whose
    centre was missed (once per vehicle: a vehicle that already merged a track takes no pair).
    """
    tracks = sorted(tracks, key=rank)
    kept: list[dict] = []
    for tr in tracks:
        host, kind = None, ""
        for k in kept:
            apart = abs(np.log(k["speed_kmh"] / tr["speed_kmh"]))
            if k["direction"] != tr["direction"] or apart > p.merge_speed_change:
                continue
            kind = _same_vehicle(k, tr, xb, valid, x_mid, p, max_vehicle_m, join_fraction, bands)
            if kind:
                host = k
                break
        if host is None:
            kept.append(tr)
            continue
        host["merged"] += 1 + tr.get("merged", 0)
        shift = 0.0
        if kind == "pair":
            # the two lobes of one sign flank the vehicle's (missed) centre
            shift = 0.5 * (tr["t_mid"] - host["t_mid"])
        elif kind == "joined" and tr["strength"] >= 0.5 * host["strength"]:
            # comparable parts (axle groups, bogies): the vehicle passes at their load-weighted centre
            w0, w1 = host["strength"], tr["strength"]
            shift = w1 / (w0 + w1) * (tr["t_mid"] - host["t_mid"])
        if shift:
            host["poly"] = host["poly"] + np.poly1d([shift])
            host["t_mid"] += shift
            host["t_in"] += shift
            host["t_out"] += shift
    return kept


def _same_vehicle(k, tr, xb, valid, x_mid, p: DetectParams, max_vehicle_m, join_fraction, bands) -> str:
    """Why the weaker track ``tr`` is part of the kept vehicle ``k`` of its speed and direction ("joined",
    "lobe", "pair"), or "" when it is another vehicle."""
    dt_s = abs(tr["t_mid"] - k["t_mid"])
    v = k["speed_kmh"] * KMH
    sign = k.get("polarity", 0.0) * tr.get("polarity", 0.0)
    window_s = min(max_vehicle_m / v, p.max_merge_s) if p.max_merge_s > 0 else max_vehicle_m / v
    if dt_s <= window_s:
        # a peeled track has its own ridge once the other's response is explained: no signal joins them
        if (
            not (tr.get("peeled") or k.get("peeled"))
            and _joined(k, tr, xb, valid, x_mid, bands) >= join_fraction
        ):
            return "joined"
        if p.lobe_merge and sign <= -(LOBE_POLARITY**2):
            # the opposite-signed lobe of a stronger vehicle's quasi-static strain: the same vehicle,
            # reported at the stronger ridge
            return "lobe"
    if (
        p.pair_merge_m > 0
        and dt_s <= p.pair_merge_m / v
        and sign >= LOBE_POLARITY**2
        and tr["strength"] >= PAIR_STRENGTH * k["strength"]
        and not k.get("merged", 0)
    ):
        # two lobes of one sign and comparable strength: one vehicle whose centre ridge was missed
        return "pair"
    return ""


def track_polarity(
    tr: dict,
    z: np.ndarray,
    t: np.ndarray,
    dt: float,
    xb: np.ndarray,
    dxb: float,
    x_mid: float,
    p: DetectParams,
) -> float:
    """Sign of the strain along a track: the median, over its ridge points, of the sign of the strain pulse
    band-passed at the track's pulse duration (difference of Gaussians centred on the ridge time), times the
    fraction of points that agree; 0 when the points disagree as often as they agree.

    A load on the ground strains the fibre one way beneath it and the other way in the lobes on either side
    (Boussinesq; a derivative-free "Mexican hat" along the fibre): two parallel tracks of one speed with
    opposite signs within a vehicle's length are one vehicle's centre and lobe.
    """
    px, pt = tr["pts"]
    if len(px) == 0:
        return 0.0
    v = tr["speed_kmh"] * KMH
    tau = max(tr.get("pulse_m", p.pulse_m) / max(v, 0.1) / dt, 1.0)
    s1, s2 = max(0.5 * tau, 0.5), 3.0 * tau
    half = int(np.ceil(3 * s2))
    offs = np.arange(-half, half + 1)
    rows0 = np.round((pt - t[0]) / dt).astype(int)
    cols = np.clip(np.round((px + x_mid - xb[0]) / dxb).astype(int), 0, len(xb) - 1)
    frac = (pt - t[0]) / dt - rows0
    u = offs[None, :] - frac[:, None]
    k = np.exp(-0.5 * (u / s1) ** 2) / s1 - np.exp(-0.5 * (u / s2) ** 2) / s2
    rows = rows0[:, None] + offs[None, :]
    inside = (rows >= 0) & (rows < len(z))
    vals = np.where(inside, z[np.clip(rows, 0, len(z) - 1), cols[:, None]], 0.0)
    resp = np.sum(k * vals, axis=1)
    sg = np.sign(resp)
    agree = float(np.mean(sg == np.sign(np.sum(sg)))) if np.sum(sg) != 0 else 0.5
    return float(np.sign(np.sum(sg)) * max(0.0, 2 * agree - 1))


def _joined(a, b, xb, valid, x_mid, bands=None) -> float:
    """Fraction of the shared channels on which the envelope between tracks a and b never drops below 80 % of
    the weaker ridge (in the band image of the stronger track a, at the short pulse scale: the long one would
    join two vehicles of a platoon)."""
    band = a["band_obj"]
    if bands:
        same = [
            b
            for b in bands
            if b.direction == band.direction and abs(b.v_lo - band.v_lo) < 1e-6 and b.pulse_m <= band.pulse_m
        ]
        if same:
            band = min(same, key=lambda b: b.pulse_m)
    env, t0, dt = band.env, band.t[0], band.dt
    lo, hi = max(a["x_lo"], b["x_lo"]), min(a["x_hi"], b["x_hi"])
    cols = np.flatnonzero(valid & (xb >= lo) & (xb <= hi))
    if len(cols) < 3:
        return 0.0
    ta, tb = a["poly"](xb[cols] - x_mid), b["poly"](xb[cols] - x_mid)
    frac = np.linspace(0.0, 1.0, 7)
    rows = np.round((ta[:, None] + (tb - ta)[:, None] * frac[None, :] - t0) / dt).astype(int)
    inside = (rows >= 0) & (rows < len(env))
    vals = env[np.clip(rows, 0, len(env) - 1), cols[:, None]]
    vals = np.where(inside, vals, 0.0)
    ends = np.minimum(vals[:, 0], vals[:, -1])
    ok = vals[:, 1:-1].min(axis=1) >= 0.8 * ends
    return float(np.mean(ok & inside.all(axis=1)))


def near_others(t_mid: np.ndarray) -> np.ndarray:
    """Per vehicle (mid-section times ``t_mid``, s): does another one pass mid-section within ``NEAR_S``."""
    t = np.asarray(t_mid, dtype=float)
    if len(t) < 2:
        return np.zeros(len(t), dtype=bool)
    gap = np.abs(t[:, None] - t[None, :])
    np.fill_diagonal(gap, np.inf)
    return gap.min(axis=1) < NEAR_S


def set_flags(tracks: list[dict]) -> None:
    near = near_others(np.array([tr["t_mid"] for tr in tracks]))
    for i, tr in enumerate(tracks):
        on = {
            "merged": tr.get("merged", 0),
            "partial": tr["coverage"] < 0.9,
            "speed_change": abs(tr["speed_change"]) > 0.1,
            "near": near[i],
            "peeled": tr.get("peeled", False),
        }
        tr["flags"] = ",".join(name for name, flag in on.items() if flag)
