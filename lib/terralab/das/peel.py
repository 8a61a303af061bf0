"""Peeling: a second search on the residual of the band images once the first pass's tracks are explained.

A car 2-3 s behind or ahead of a stronger vehicle of its speed sits on that vehicle's envelope flank with no
ridge of its own. The band chain (:mod:`terralab.das.lines`) is linear up to the modulus, so a track's
contribution to a band is the chain's response to a pulse along that track; subtracting it leaves the weaker
car's ridge. Tracks of this pass (``"peeled"``) rank after every first-pass track in the merge and dedupe
rules (:mod:`terralab.das.tracks`): they never displace, absorb or outrank a first-pass vehicle.

Off by default (``DetectParams.peel_sigma`` 0) but on with ``site="highway"`` and ``site="urban"``
(:data:`~terralab.das.params.PEEL_SITES`): it raised F1 on bump scenes and half-space highways, and on
streets with the detector of ``merge_speed_change`` (not with an earlier one; figures in
:class:`~terralab.das.params.DetectParams`); a single modelled pulse leaves the axle groups and lobes of
buses, trucks and trams in the residual, which on an earlier detector became false street tracks.

Examples
--------
A street scene of the bump simulator (a test seed): the second pass adds two platoon cars, both true, and no
false track (before ``merge_speed_change`` both had one: a car at 38 km/h reported twice, 0.7 s apart).

>>> from terralab import das
>>> data, truth = das.synthetic.random_scene("bump", "urban", 503)
>>> off = das.detect_vehicles(data, site="urban", classify=False, peel_sigma=0.0)
>>> on = das.detect_vehicles(data, site="urban", classify=False)
>>> len(off), len(on), int(on["flags"].str.contains("peeled").sum())
(22, 24, 2)
>>> len(das.match(off, truth)), len(das.match(on, truth))
(22, 24)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import scipy.fft

from .lines import Band, band_segments, directional_smooth, matched_bandpass, ridges, velocity_fan
from .params import KMH, LOBE_POLARITY

if TYPE_CHECKING:
    from .params import DetectParams

#: A track is modelled in the bands of its direction whose speeds reach within this factor of its own (its
#: band and the neighbours). 1.2 x 1.35 = 1.62, where the bands' f-k fans pass nothing (1.2 x outside the
#: band, then a 1.35 x cosine taper), added one half-space highway duplicate on the development seeds (19,
#: not 18) and was no faster.
FAN_REACH = 2.0
#: A peeled track must pass mid-section within this many seconds of a first-pass track of its direction
#: (:func:`flanks`): a platoon's headways (the flank cars the pass is for were 2.2-3.4 s from their
#: neighbour). Set on that physics before any run, with :data:`FLANK_SPEED`; not tuned.
FLANK_S = 5.0
#: ... and at a speed within this log ratio of that track's (a platoon drives at one speed).
FLANK_SPEED = 0.15


def peeled_tracks(
    bands: list[Band],
    tracks: list[dict],
    xb: np.ndarray,
    dxb: float,
    valid: np.ndarray,
    x_mid: float,
    length: float,
    search: Callable[[list[Band]], list[dict]],
    p: DetectParams,
) -> list[dict]:
    """Tracks found by ``search`` (the first pass's track search) in the residual bands of
    :func:`peel_bands`, kept when their median offset from every first-pass track of their direction is at
    least ``p.peel_gap_s`` and ``p.peel_gap_m`` / speed and they lie on the flank of one (:func:`flanks`);
    each is marked ``"peeled"``."""
    res = peel_bands(bands, tracks, xb, valid, x_mid, p)
    if not any(b.ridge.any() for b in res):
        return []
    for i, b in enumerate(res):
        band_segments(b, i, xb, dxb, valid, p)
    out = []
    xs = np.linspace(-0.5 * length, 0.5 * length, 9)
    for tr in search(res):
        same = [k for k in tracks if k["direction"] == tr["direction"]]
        gap = max(p.peel_gap_s, p.peel_gap_m / (tr["speed_kmh"] * KMH))
        if all(np.median(np.abs(k["poly"](xs) - tr["poly"](xs))) >= gap for k in same) and any(
            flanks(tr, k) for k in same
        ):
            tr["peeled"] = True
            out.append(tr)
    return out


def flanks(tr: dict, k: dict) -> bool:
    """Whether the peeled track ``tr`` can be a vehicle hidden on the envelope flank of the first-pass track
    ``k`` of its direction: it passes mid-section within :data:`FLANK_S` of it, at a speed within
    :data:`FLANK_SPEED` (log ratio) of its own, as a car in a platoon does. Elsewhere a residual ridge is what
    the model left of a stronger vehicle's response (on the real bridge record, a 151 km/h track across the
    47.8 km/h vehicle at ``smoothing_m`` x 1.2)."""
    return (
        abs(tr["t_mid"] - k["t_mid"]) <= FLANK_S
        and abs(np.log(tr["speed_kmh"] / k["speed_kmh"])) <= FLANK_SPEED
    )


def signed(tracks: list[dict]) -> list[dict]:
    """The tracks without the peeled ones whose strain has no consistent sign (``"polarity"``, from
    :func:`~terralab.das.tracks.track_polarity`, below :data:`~terralab.das.params.LOBE_POLARITY`): a
    vehicle's quasi-static strain has one; a residual of another's response need not (on the real bridge
    record a 69 km/h peeled track at ``pulse_m`` x 1.2, polarity 0.12)."""
    return [tr for tr in tracks if not tr.get("peeled") or abs(tr["polarity"]) >= LOBE_POLARITY]


def peel_bands(
    bands: list[Band], tracks: list[dict], xb: np.ndarray, valid: np.ndarray, x_mid: float, p: DetectParams
) -> list[Band]:
    """Residual bands: the tracks' modelled responses subtracted from the complex band images.

    A track is modelled only in the short-pulse bands of its direction whose speeds are near its own (v_lo / 2
    to 2 v_hi: its band and the neighbours), scaled per channel by a complex least-squares amplitude fitted
    around the track (strongest track first, on what the stronger ones left). Residual ridges count above
    ``p.peel_sigma`` band sigmas and ``p.peel_rel`` times the modulus subtracted at the pixel (a stronger
    vehicle's response is never modelled exactly), where the band won the ghost competition in the original
    images. Long-pulse bands (their residuals of half-space trucks' lobes became false tracks) and bands with
    no track to subtract keep no ridge and cost nothing.
    """
    out = []
    order = sorted(tracks, key=lambda d: -d["strength"])
    for b in bands:
        near = [
            tr
            for tr in order
            if tr["direction"] == b.direction
            and b.v_lo / FAN_REACH < tr["speed_kmh"] * KMH < FAN_REACH * b.v_hi
        ]
        if b.pulse_m > p.pulse_m or b.cplx is None or not near:
            out.append(dataclasses.replace(b, ridge=np.zeros_like(b.ridge), segments=[], cplx=None))
            continue
        res = b.cplx.copy()
        mod = np.zeros(res.shape, dtype=np.float32)
        for tr in near:
            _peel_track(res, mod, b, tr, xb, valid, x_mid, tr["speed_kmh"] * KMH, p)
        env = np.abs(res)
        ridge = ridges(env, p.peel_sigma * b.sigma, along_time=b.slope >= 1.0) & b.win
        ridge &= env >= p.peel_rel * mod
        ridge[:, ~valid] = False
        out.append(dataclasses.replace(b, env=env, ridge=ridge, segments=[], cplx=None))
    return out


def _peel_track(res, mod, b: Band, tr: dict, xb, valid, x_mid, v, p: DetectParams) -> None:
    """Subtract one track's modelled response from the complex band image ``res`` (in place) and add its
    modulus to ``mod``."""
    tau, lo, hi, sig = b.chain
    cols = np.flatnonzero(valid)
    q = (tr["poly"](xb[cols] - x_mid) - b.t[0]) / b.dt  # fractional band rows of the track
    L = int(np.ceil(12 * max(tau, 1.0))) + 4
    r0 = int(np.floor(q.min())) - L
    n = int(np.ceil(q.max())) + L - r0 + 1
    if r0 + n <= 0 or r0 >= len(res):
        return
    width = max(0.5, 0.5 * p.pulse_m / v / b.dt)
    d2 = (np.arange(n)[:, None] - (q - r0)[None, :]) ** 2
    h = np.zeros((n, len(xb)), dtype=np.float32)
    s1 = 0.5 * tau if 0.5 * tau >= 0.5 else 0.0
    if width >= 1.0 and (s1 == 0.0 or s1 >= 1.0):
        # the band-pass of :func:`~terralab.das.lines.matched_bandpass` (a difference of Gaussians along
        # time) applied to the Gaussian pulse, in closed form (within 1e-4 of the filtered samples)
        for s, sign in ((s1, 1.0), (3.0 * max(tau, 1.0), -1.0)):
            w2 = width**2 + s**2
            h[:, cols] += sign * width / np.sqrt(w2) * np.exp(-0.5 * d2 / w2)
    else:  # pulses of a row or two: sampling matters
        h[:, cols] = np.exp(-0.5 * d2 / width**2)
        h = matched_bandpass(h, valid, tau, mad=np.ones(len(cols)))[0]
    h = velocity_fan(h, valid, b.direction, lo, hi, fft=scipy.fft)
    h = directional_smooth(h, valid, b.slope, b.direction, sig)
    a0, a1 = max(r0, 0), min(r0 + n, len(res))
    hs = h[a0 - r0 : a1 - r0][:, cols]
    obs = res[a0:a1, cols]
    mag = np.abs(hs)
    core = mag >= 0.5 * mag.max(axis=0, keepdims=True)
    num = np.sum(np.where(core, np.conj(hs) * obs, 0), axis=0)
    den = np.sum(np.where(core, mag**2, 0), axis=0)
    amp = np.where(den > 0, num / np.where(den > 0, den, 1), 0)
    model = amp[None, :] * hs
    res[a0:a1, cols] = obs - model
    mod[a0:a1, cols] += np.abs(model)


def rank(tr: dict) -> tuple:
    """Order of the merge and dedupe rules: first-pass tracks strongest first, then the peeled ones (their
    strength is read on a residual: on the real bridge record a 151 km/h peeled track measured 139 there and
    displaced the 47.8 km/h vehicle's 108)."""
    return (bool(tr.get("peeled")), -tr["strength"])


def outranks(k: dict, tr: dict) -> bool:
    """Whether ``k`` may explain ``tr`` away: a peeled track never does a first-pass one."""
    return not k.get("peeled") or bool(tr.get("peeled"))
