"""Line finding: speed-band detection images, thin ridges, Hough line segments and their DBSCAN clusters.

Steps 3-7 of the detector (:mod:`terralab.das.detect`): each speed band and direction gets a velocity-tuned
envelope image (:func:`band_image`), ridges that a band of another speed or direction explains better are
dropped (:func:`suppress_non_winners`), the remaining ridges give Hough segments (:func:`band_segments`), and
segments of one vehicle are clustered (:func:`cluster_segments`).

Examples
--------
The speed bands of the urban site's detector settings (edges in m/s):

>>> from terralab.das.lines import speed_band_edges
>>> from terralab.das.params import resolve_params
>>> edges = speed_band_edges(resolve_params(None, {"site": "urban"}))
>>> len(edges) - 1, round(float(edges[0]) * 3.6, 1), round(float(edges[-1]) * 3.6, 1)
(4, 5.0, 80.0)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .params import DetectParams

from .params import KMH

__all__ = [
    "Band",
    "band_image",
    "band_segments",
    "cluster_segments",
    "directional_smooth",
    "matched_bandpass",
    "ridges",
    "speed_band_edges",
    "suppress_non_winners",
    "velocity_fan",
]


@dataclass
class Band:
    """One speed band and direction: its image (envelope), noise level, threshold, ridges and segments."""

    v_lo: float
    v_hi: float
    direction: int
    m: int  # lf rows per band row
    dt: float  # s per band row
    slope: float  # |columns per row| at the band centre
    t: np.ndarray  # band row times (s)
    env: np.ndarray  # |smoothed| image
    sigma: float
    thr: float
    ridge: np.ndarray
    pulse_m: float = 6.0
    segments: list = field(default_factory=list)
    cplx: np.ndarray | None = None  # the complex (analytic) image whose modulus is env
    chain: tuple = ()  # (tau_rows, fan lo, fan hi, smoothing sigma in columns): to model a track's response
    win: np.ndarray | None = None  # ridge pixels that no band of another speed or direction explains better


def speed_band_edges(p: DetectParams) -> np.ndarray:
    """Edges (m/s) of the speed bands that split ``p``'s speed range at ratios of about ``p.band_ratio``."""
    return np.geomspace(
        p.speed_min_kmh * KMH,
        p.speed_max_kmh * KMH,
        int(np.ceil(np.log(p.speed_max_kmh / p.speed_min_kmh) / np.log(p.band_ratio))) + 1,
    )


def band_image(
    z: np.ndarray,
    t: np.ndarray,
    dt: float,
    xb: np.ndarray,
    dxb: float,
    valid: np.ndarray,
    v_lo: float,
    v_hi: float,
    direction: int,
    p: DetectParams,
    pulse_m: float,
    scales: tuple[np.ndarray, float] | None = None,
) -> Band:
    """Envelope, noise level, threshold and thin ridges of one speed band and direction.

    ``scales`` (per-channel scale of the band-passed image, envelope sigma), taken from another record (a
    noise-only one, for oracle scoring), replaces the scales this image would estimate from itself; the band
    keeps the ones it used in ``band.scales``.
    """
    v_c = np.sqrt(v_lo * v_hi)
    m_max = max(1, int(np.floor(p.max_lf_step_s / dt)))
    m = int(np.clip(np.round(dxb / (v_c * dt)), 1, m_max))
    n_rows = len(z) // m
    if m > 1:
        img = z[: n_rows * m].reshape(n_rows, m, -1).mean(axis=1)
        tb = t[: n_rows * m].reshape(n_rows, m).mean(axis=1)
    else:
        img, tb = z, t
    dtb = dt * m
    slope = v_c * dtb / dxb  # columns per row at the band centre
    px_per_ms = dtb / dxb  # (columns per row) per (m/s)
    # the chain's settings: pulse duration (rows), fan edges (columns per row), smoothing (columns)
    chain = (pulse_m / v_c / dtb, v_lo / 1.2 * px_per_ms, v_hi * 1.2 * px_per_ms, p.smoothing_m / dxb)
    tau, fan_lo, fan_hi, sigma_cols = chain
    img, chan_scale = matched_bandpass(img, valid, tau, mad=None if scales is None else scales[0])
    img = velocity_fan(img, valid, direction, fan_lo, fan_hi)
    smooth = directional_smooth(img, valid, slope, direction, sigma_cols)
    env = np.abs(smooth)
    # env is the modulus of a complex (analytic) Gaussian noise field: Rayleigh, median = 1.1774 sigma
    sig = float(np.median(env[:, valid]) / 1.1774) if valid.any() else 1.0
    sig = sig if sig > 0 else 1.0
    if scales is not None:
        sig = scales[1]
    thr = p.threshold_sigma * sig
    ridge = ridges(env, thr, along_time=slope >= 1.0)
    ridge[:, ~valid] = False
    band = Band(
        v_lo=v_lo,
        v_hi=v_hi,
        direction=direction,
        m=m,
        dt=dtb,
        slope=slope,
        t=tb,
        env=env,
        sigma=sig,
        thr=thr,
        ridge=ridge,
        pulse_m=pulse_m,
        cplx=smooth if p.peel_sigma > 0 else None,
        chain=chain,
    )
    band.scales = (chan_scale, sig)
    return band


def suppress_non_winners(bands: list[Band], n_lf: int, tolerance: float = 0.9) -> None:
    """Non-maximum suppression over speed and direction: a ridge pixel of a band survives only where no
    competing band has a clearly stronger noise-normalised envelope (ratio below ``tolerance``).

    A strong vehicle leaks into bands of other speeds and, through coupling differences and the standing
    response of bridge spans, into the other direction; those ghosts are weaker than the vehicle in its own
    band at the same place and time, so they lose here, while two real vehicles only compete where their
    tracks cross. Neighbouring speed bands of the same direction do not compete: a vehicle near a band edge
    is legitimately seen in both (duplicates are resolved later, per track).
    """
    if len(bands) < 2:
        return
    n_cols = bands[0].env.shape[1]
    speed_id = {}
    for b in bands:
        speed_id.setdefault(round(b.v_lo, 6), len(speed_id))
    expanded = []
    for b in bands:
        e = np.repeat(b.env / b.sigma, b.m, axis=0)[:n_lf]
        if len(e) < n_lf:
            e = np.concatenate([e, np.repeat(e[-1:], n_lf - len(e), axis=0)], axis=0)
        expanded.append(e)
    for i, b in enumerate(bands):
        si = speed_id[round(b.v_lo, 6)]
        best = np.zeros((n_lf, n_cols), dtype=np.float32)
        for j, c in enumerate(bands):
            if c.direction == b.direction and abs(speed_id[round(c.v_lo, 6)] - si) <= 1:
                continue
            np.maximum(best, expanded[j], out=best)
        rows = np.minimum(np.arange(len(b.t)) * b.m + b.m // 2, n_lf - 1)
        b.win = (b.env / b.sigma) >= tolerance * best[rows]
        b.ridge &= b.win


def band_segments(
    band: Band, band_id: int, xb: np.ndarray, dxb: float, valid: np.ndarray, p: DetectParams
) -> None:
    """Probabilistic Hough line segments of a band's ridge image, over the band's speeds only."""
    from skimage.transform import probabilistic_hough_line

    n_valid = int(valid.sum())
    if n_valid < 2 or not band.ridge.any():
        return
    slope, tb, dtb = band.slope, band.t, band.dt
    n_full = n_valid * max(1.0, 1.0 / slope)  # ridge pixels of a full-section track
    extent = len(xb) * max(1.0, 1.0 / slope)
    speeds = np.exp(np.arange(np.log(band.v_lo / 1.1), np.log(band.v_hi * 1.1), np.log1p(p.speed_resolution)))
    theta = np.unique(-np.arctan(band.direction * speeds * dtb / dxb))
    lines = probabilistic_hough_line(
        band.ridge,
        threshold=max(4, int(p.hough_votes * n_full)),
        line_length=max(3, int(p.min_segment * extent)),
        line_gap=max(2, int(np.ceil(p.max_gap * extent))),
        theta=theta,
        rng=p.seed,
    )
    for (c0, r0), (c1, r1) in lines:
        if c0 == c1 or r0 == r1:
            continue
        xa, xb_ = xb[c0], xb[c1]
        ta, tb_ = tb[r0], tb[r1]
        speed = abs((xb_ - xa) / (tb_ - ta))
        if np.sign((xb_ - xa) / (tb_ - ta)) != band.direction or not (
            band.v_lo / 1.25 <= speed <= band.v_hi * 1.25
        ):
            continue
        if xa > xb_:
            xa, xb_, ta, tb_ = xb_, xa, tb_, ta
        band.segments.append((xa, ta, xb_, tb_, band_id))


def matched_bandpass(
    img: np.ndarray, valid: np.ndarray, tau_rows: float, mad: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Band-pass along time matched to a strain pulse lasting ``tau_rows`` rows, then unit noise per channel.

    A difference of Gaussians keeps the pulse (a vehicle's strain bump) and removes the slow drift and red
    noise that dominate integrated DAS data below the pulse's frequencies. Returns the image and the
    per-channel scale it was divided by (``mad``, when given, is used instead of the image's own).
    """
    from scipy import ndimage

    out = img
    if 0.5 * tau_rows >= 0.5:
        out = ndimage.gaussian_filter1d(img, 0.5 * tau_rows, axis=0, mode="nearest")
    out = out - ndimage.gaussian_filter1d(img, 3.0 * max(tau_rows, 1.0), axis=0, mode="nearest")
    if mad is None:
        mad = np.median(np.abs(out[:, valid]), axis=0) * 1.4826
    res = np.zeros_like(out)
    good = mad > 0
    vcols = np.flatnonzero(valid)
    res[:, vcols[good]] = out[:, vcols[good]] / mad[good]
    return res.astype(np.float32, copy=False), mad


def velocity_fan(
    img: np.ndarray,
    valid: np.ndarray,
    direction: int,
    v_lo_px: float,
    v_hi_px: float,
    taper: float = 1.35,
    fft: Any = np.fft,
) -> np.ndarray:
    """f-k fan filter: keep apparent velocities of one travel direction within [v_lo_px, v_hi_px].

    Velocities are in columns per row. Tracks of the other direction, of far other speeds, and near-infinite
    apparent velocities (common-mode noise, the simultaneous strain of a whole bridge span) are removed; a
    cosine taper over a factor ``taper`` beyond each edge avoids ringing. ``fft``: the FFT module
    (:mod:`scipy.fft` keeps float32 in single precision, twice as fast).
    """
    n_rows, n_cols = img.shape
    pr, pc = max(8, n_rows // 10), max(4, n_cols // 4)
    pad = np.zeros((n_rows + 2 * pr, n_cols + 2 * pc), dtype=np.float32)
    pad[pr : pr + n_rows, pc : pc + n_cols] = img
    spec = fft.rfft2(pad, axes=(1, 0))  # real FFT along time (axis 0), full along distance
    ft = np.fft.rfftfreq(pad.shape[0])[:, None]
    kx = np.fft.fftfreq(pad.shape[1])[None, :]
    # a track g(c - s r) puts its energy where ft = -s kx
    with np.errstate(divide="ignore", invalid="ignore"):
        v = np.where(kx != 0, -ft / kx, np.inf) * direction
    lv = np.log(np.where(v > 0, v, 1e-12))
    lo, hi, tp = np.log(v_lo_px), np.log(v_hi_px), np.log(taper)
    w = np.ones_like(lv)
    below = lv < lo
    above = lv > hi
    w[below] = 0.5 * (1 + np.cos(np.pi * np.clip((lo - lv[below]) / tp, 0, 1)))
    w[above] = 0.5 * (1 + np.cos(np.pi * np.clip((lv[above] - hi) / tp, 0, 1)))
    w[v <= 0] = 0.0
    w[(ft == 0) & (kx == 0)] = 0.0
    # analytic signal along time (negative temporal frequencies dropped): its modulus is one smooth envelope
    # per vehicle, where |band-passed strain| would show side ridges from the filter's side lobes
    n_t = pad.shape[0]
    full = np.zeros((n_t, pad.shape[1]), dtype=np.complex64)
    half = spec * w
    half[1:] *= 2.0
    if n_t % 2 == 0:
        half[-1] *= 0.5
    full[: half.shape[0]] = half
    out = fft.ifft2(full, axes=(1, 0))
    out = out[pr : pr + n_rows, pc : pc + n_cols].astype(np.complex64)
    out[:, ~valid] = 0.0
    return out


def directional_smooth(
    img: np.ndarray, valid: np.ndarray, slope: float, direction: int, sigma_cols: float
) -> np.ndarray:
    """Gaussian smoothing along tracks of ``slope`` columns per row, noise-normalised (unit variance)."""
    n_rows, n_cols = img.shape
    K = max(1, int(np.ceil(3 * sigma_cols)))
    ks = np.arange(-K, K + 1)
    w = np.exp(-0.5 * (ks / max(sigma_cols, 1e-6)) ** 2).astype(np.float32)
    shifts = direction * ks / slope  # rows to move per column offset
    P = int(np.ceil(np.abs(shifts).max())) + 2
    pad = np.zeros((n_rows + 2 * P, n_cols + 2 * K), dtype=img.dtype)
    pad[P : P + n_rows, K : K + n_cols] = img
    vpad = np.zeros(n_cols + 2 * K, dtype=np.float32)
    vpad[K : K + n_cols] = valid
    out = np.zeros((n_rows, n_cols), dtype=img.dtype)
    wsq = np.zeros(n_cols, dtype=np.float32)
    for k, wk, sh in zip(ks, w, shifts):
        r0 = int(np.floor(sh))
        f = np.float32(sh - r0)
        cols = slice(K + k, K + k + n_cols)
        a = pad[P + r0 : P + r0 + n_rows, cols]
        if f > 1e-6:
            b = pad[P + r0 + 1 : P + r0 + 1 + n_rows, cols]
            out += wk * ((1 - f) * a + f * b)
        else:
            out += wk * a
        wsq += wk * wk * vpad[cols]
    with np.errstate(divide="ignore", invalid="ignore"):
        out /= np.sqrt(np.where(wsq > 0, wsq, 1.0))[None, :]
    return out


def ridges(env: np.ndarray, thr: float, *, along_time: bool) -> np.ndarray:
    """Thin ridges: above threshold and a local maximum along time (steep tracks) or distance (slow ones)."""
    axis = 0 if along_time else 1
    prev = np.roll(env, 1, axis=axis)
    nxt = np.roll(env, -1, axis=axis)
    ridge = (env >= thr) & (env >= prev) & (env > nxt)
    if axis == 0:
        ridge[0, :] = ridge[-1, :] = False
    else:
        ridge[:, 0] &= env[:, 0] > env[:, 1] if env.shape[1] > 1 else True
        ridge[:, -1] &= env[:, -1] >= env[:, -2] if env.shape[1] > 1 else True
    return ridge


def cluster_segments(
    segs: Sequence[tuple[float, ...]], eps_s: float, speed_weight_s: float = 4.0
) -> np.ndarray:
    from sklearn.cluster import DBSCAN

    n = len(segs)
    if n == 1:
        return np.zeros(1, dtype=int)
    arr = np.asarray(segs, dtype=float)
    ax0, at0, ax1, at1 = (arr[:, i] for i in range(4))
    slope = (at1 - at0) / (ax1 - ax0)
    lo = np.maximum(ax0[:, None], ax0[None, :])
    hi = np.minimum(ax1[:, None], ax1[None, :])
    overlap = hi > lo
    # sample 5 points over the shared range, or the middle of the gap
    fr = np.linspace(0, 1, 5)
    xs = np.where(overlap[..., None], lo[..., None] + (hi - lo)[..., None] * fr, ((lo + hi) / 2)[..., None])
    ta = at0[:, None, None] + slope[:, None, None] * (xs - ax0[:, None, None])
    tb = at0[None, :, None] + slope[None, :, None] * (xs - ax0[None, :, None])
    d = np.mean(np.abs(ta - tb), axis=2)
    # vehicles crossing (overtaking) share points but not speeds: add the speed mismatch, in seconds
    d = d + speed_weight_s * np.abs(np.log(np.abs(slope[:, None] / slope[None, :])))
    d = 0.5 * (d + d.T)
    np.fill_diagonal(d, 0.0)
    return DBSCAN(eps=eps_s, min_samples=1, metric="precomputed").fit(d).labels_
