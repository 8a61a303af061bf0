"""The half-space simulator's fields: elastic half-space solutions, axle kernels and one vehicle's rendering.

Quasi-static strain from Boussinesq's point load at Odemark's equivalent depth, Flamant's plane-strain line
load (a check), the gauge-averaged strain kernel of an axle, and the Rayleigh-wave vibration a vehicle
radiates; plus the coupling and coloured-noise fields of a record. The physics is set out in
:mod:`terralab.das.halfspace`.

Examples
--------
Boussinesq's strain along the fibre 1 m below a 10 kN wheel: extension right under it, compression 2 m
ahead; and the equivalent depth of a fibre 1 m below 10 cm of asphalt over 30 cm of base:

>>> from terralab.das.halfspace_render import boussinesq_strain_xx, odemark_depth
>>> float(boussinesq_strain_xx(0.0, 0.0, 1.0, 1e4, 5e7, 0.3)) > 0
True
>>> float(boussinesq_strain_xx(2.0, 0.0, 1.0, 1e4, 5e7, 0.3)) < 0
True
>>> depth, modulus = odemark_depth(1.0, [(0.1, 5e9), (0.3, 3e8)], 1e8)
>>> round(depth, 2), modulus
(1.32, 100000000.0)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .halfspace_fleet import Vehicle

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

    from .scene_options import HalfspaceOptions

__all__ = [
    "RenderSetup",
    "add_coloured_noise",
    "add_interrogator_noise",
    "axle_kernel",
    "boussinesq_strain_xx",
    "boussinesq_ux",
    "coupling_field",
    "flamant_strain_xx",
    "odemark_depth",
    "render_vehicle",
    "upsample",
]


def boussinesq_ux(
    x: ArrayLike, y: ArrayLike, z: ArrayLike, load_n: ArrayLike, shear_modulus_pa: float, poisson: float
) -> np.ndarray:
    """Displacement (m) along x at (x, y, depth z) under a vertical surface point load ``load_n`` (N) at the
    origin.

    Boussinesq's solution (Johnson 1985, eq. 3.22a): ``P/(4 pi G) [x z / R^3 - (1 - 2 nu) x / (R (R + z))]``.
    """
    x, y, z = np.asarray(x, dtype=float), np.asarray(y, dtype=float), np.asarray(z, dtype=float)
    r = np.sqrt(x * x + y * y + z * z)
    r = np.maximum(r, 1e-6)
    return load_n / (4 * np.pi * shear_modulus_pa) * (x * z / r**3 - (1 - 2 * poisson) * x / (r * (r + z)))


def boussinesq_strain_xx(
    x: ArrayLike, y: ArrayLike, z: ArrayLike, load_n: ArrayLike, shear_modulus_pa: float, poisson: float
) -> np.ndarray:
    """Point strain d u_x / d x (extension positive) of :func:`boussinesq_ux`, differentiated analytically."""
    x, y, z = np.asarray(x, dtype=float), np.asarray(y, dtype=float), np.asarray(z, dtype=float)
    r = np.maximum(np.sqrt(x * x + y * y + z * z), 1e-6)
    t1 = z / r**3 - 3 * x * x * z / r**5
    t2 = 1.0 / (r * (r + z)) - x * x * (2 * r + z) / (r**3 * (r + z) ** 2)
    return load_n / (4 * np.pi * shear_modulus_pa) * (t1 - (1 - 2 * poisson) * t2)


def odemark_depth(
    depth_m: float, pavement: Sequence[tuple[float, float]], ground_pa: float, *, factor: float = 0.9
) -> tuple[float, float]:
    """Equivalent depth (m) and modulus (Pa) of the medium around a fibre at ``depth_m`` below a pavement.

    ``pavement`` lists the layers from the top as ``(thickness_m, young_pa)``; below them lies the ground of
    modulus ``ground_pa``. Each layer above the fibre becomes ``factor * h * (E / E_fibre) ** (1/3)`` of the
    fibre's own medium (Odemark 1949; Ullidtz 1987 recommends 0.9), the layer holding the fibre counts with
    its true thickness down to the fibre. Returns ``(equivalent_depth_m, fibre_medium_pa)``.
    """
    layers = [(float(h), float(e)) for h, e in pavement]
    top, medium, above = 0.0, float(ground_pa), []
    for h, e in layers:
        if depth_m < top + h:  # the fibre lies inside this layer
            medium = e
            break
        above.append((h, e))
        top += h
    z = depth_m - top
    for h, e in above:
        z += factor * h * (e / medium) ** (1.0 / 3.0)
    return float(z), float(medium)


def flamant_strain_xx(
    x: ArrayLike, z: ArrayLike, load_n_per_m: ArrayLike, young_pa: float, poisson: float
) -> np.ndarray:
    """Plane-strain eps_xx at (x, depth z) under a line load (N/m) on the surface (Flamant 1892).

    Stresses (compression negative): ``s_xx = -2 q x^2 z / (pi r^4)``, ``s_zz = -2 q z^3 / (pi r^4)``;
    plane strain: ``eps_xx = ((1 - nu^2) s_xx - nu (1 + nu) s_zz) / E``.
    """
    x, z = np.asarray(x, dtype=float), np.asarray(z, dtype=float)
    r2 = x * x + z * z
    sxx = -2 * load_n_per_m * x * x * z / (np.pi * r2 * r2)
    szz = -2 * load_n_per_m * z**3 / (np.pi * r2 * r2)
    return ((1 - poisson**2) * sxx - poisson * (1 + poisson) * szz) / young_pa


def coupling_field(
    rng: np.random.Generator, n: int, dx: float, corr_m: float, rng_range: tuple[float, float]
) -> np.ndarray:
    """Spatially correlated coupling factor in [lo, hi]: a smoothed log-normal field along the fibre."""
    from scipy import ndimage

    lo, hi = rng_range
    w = rng.standard_normal(n + 64)
    w = ndimage.gaussian_filter1d(w, max(corr_m / dx, 0.5))[32 : 32 + n]
    w = w / (w.std() + 1e-12)
    c = np.exp(0.5 * (np.log(hi) - np.log(lo)) / 2.0 * w) * np.sqrt(lo * hi)
    return np.clip(c, lo, hi)


_RAIL_OFFSETS = np.array([-1.8, -1.2, -0.6, 0.0, 0.6, 1.2, 1.8])


def _rail_weights(beta: float = 1.0 / 0.9) -> np.ndarray:
    u = np.abs(_RAIL_OFFSETS)
    w = np.exp(-beta * u) * (np.cos(beta * u) + np.sin(beta * u))
    return w / w.sum()


def axle_kernel(
    lat_m: float,
    track_m: float,
    rail: bool,
    *,
    depth: float,
    gauge: float,
    shear: float,
    poisson: float,
    u: np.ndarray,
) -> np.ndarray:
    """Gauge-averaged strain per N of axle load at along-fibre offsets ``u`` from the axle (both wheels).

    The Boussinesq field only depends on the offset between channel and wheel, so one kernel per lateral
    position serves every time step (np.interp instead of the closed form at every sample).
    """
    k = np.zeros_like(u)
    for lat in (lat_m - 0.5 * track_m, lat_m + 0.5 * track_m):
        up = boussinesq_ux(u + 0.5 * gauge, lat, depth, 0.5, shear, poisson)
        um = boussinesq_ux(u - 0.5 * gauge, lat, depth, 0.5, shear, poisson)
        k += (up - um) / gauge
    if rail:  # the rail spreads each wheel load over neighbouring sleepers
        du = u[1] - u[0]
        w = _rail_weights()
        spread = np.zeros_like(k)
        for off, wj in zip(_RAIL_OFFSETS, w):
            spread += wj * np.roll(k, round(float(off / du)))
        k = spread
    return k


@dataclass(frozen=True)
class RenderSetup:
    """What rendering each vehicle of one record needs: time grids, fibre geometry and the ground."""

    t_grid: np.ndarray  # s, grid of the simulated trajectories
    t_gen: np.ndarray  # s, samples at fs_gen
    x: np.ndarray  # m, channel positions
    fibre_y: float  # m, lateral offset of the fibre
    depth: float  # m, fibre depth
    depth_eq: float  # m, Odemark equivalent depth
    gauge: float  # m, gauge length
    shear: float  # Pa, shear modulus of the equivalent medium
    poisson: float
    reach: float  # m, quasi-static strain is rendered this far from an axle
    vib_reach: float  # m, vibration is rendered this far
    c_r: float  # m/s, Rayleigh speed
    q: float  # quality factor
    g_soil: float  # Pa, soil shear modulus (vibration amplitude)
    fs_gen: float  # Hz, rate of t_gen
    length: float  # m, section length


def render_vehicle(out: np.ndarray, v: Vehicle, setup: RenderSetup, rng: np.random.Generator) -> None:
    """Add one vehicle's strain rate (quasi-static + Rayleigh) to ``out`` (time at fs_gen, channel)."""
    t_gen, length, vib_reach = setup.t_gen, setup.length, setup.vib_reach
    ok = np.isfinite(v.s_traj)
    tt = setup.t_grid[ok]
    st = v.s_traj[ok]
    # travel coordinate of the section's ends, seen from the front axle, with the reach of each effect
    inside = (t_gen >= tt[0]) & (t_gen <= tt[-1])
    if inside.sum() < 4:
        return
    g0 = int(np.argmax(inside))
    g1 = g0 + int(inside.sum())
    s_gen = np.interp(t_gen[g0:g1], tt, st)
    near = (s_gen > -vib_reach - v.length_m) & (s_gen < length + vib_reach + v.length_m)
    if near.sum() < 4:
        return
    g0, g1 = g0 + int(np.argmax(near)), g0 + len(near) - int(np.argmax(near[::-1]))
    tg = t_gen[g0:g1]
    s_front = np.interp(tg, tt, st)
    centroid = float(np.sum(v.axles_m * v.axle_kn) / np.sum(v.axle_kn))
    centre = (s_front - centroid) if v.direction > 0 else length - (s_front - centroid)
    dyn = _dynamic_force(v, len(tg), setup.fs_gen, rng)
    _add_quasi_static(out[g0:g1], v, setup, s_front, centre, dyn)
    _add_rayleigh(out[g0:g1], v, setup, tg, centre, dyn)


def _dynamic_force(v: Vehicle, n: int, fs_gen: float, rng) -> np.ndarray:
    """Dynamic wheel force relative to the load: narrow-band body bounce and wheel hop (tram: rail
    roughness)."""
    spec_f = np.fft.rfftfreq(n, 1 / fs_gen)
    dyn = np.zeros(n)
    for f0 in v.dyn_freqs:
        amp = np.exp(-0.5 * ((spec_f - f0) / (0.15 * f0)) ** 2)
        sig = np.fft.irfft(amp * np.exp(2j * np.pi * rng.random(len(spec_f))), n=n)
        dyn += 0.5 * sig / (sig.std() + 1e-12)
    dyn *= v.dyn_ratio
    return dyn


def _add_quasi_static(out, v: Vehicle, setup: RenderSetup, s_front, centre, dyn) -> None:
    """Add the quasi-static strain rate: one kernel per axle (its lateral path), shifted along the fibre as
    the axle moves; ``out`` holds the vehicle's rows."""
    x, reach, gauge, length, fibre_y = setup.x, setup.reach, setup.gauge, setup.length, setup.fibre_y
    kernel = {"depth": setup.depth_eq, "gauge": gauge, "shear": setup.shear, "poisson": setup.poisson}
    lo_c = int(np.searchsorted(x, centre.min() - reach - v.length_m))
    hi_c = int(np.searchsorted(x, centre.max() + reach + v.length_m))
    if hi_c <= lo_c:
        return
    xs = x[lo_c:hi_c]
    ug = np.arange(-reach - gauge - 2.0, reach + gauge + 2.0, 0.02)
    strain = np.zeros((len(s_front), len(xs)))
    s_ax = s_front[:, None] - v.axles_m[None, :]
    along = s_ax if v.direction > 0 else length - s_ax
    turning = v.s_enter is not None or v.s_leave is not None
    base = axle_kernel(v.lane_y - fibre_y, v.track_m, v.rail, u=ug, **kernel)
    for a in range(len(v.axles_m)):
        load_n = v.axle_kn[a] * 1e3
        if not turning:
            strain += load_n * np.interp(xs[None, :] - along[:, a : a + 1], ug, base, left=0.0, right=0.0)
            continue
        # a turning vehicle's path leaves (or joins) the lane: lateral offset changes with position
        lat = np.full(len(s_front), v.lane_y)
        if v.s_enter is not None:
            lat = lat + v.side * np.clip(v.s_enter + 12.0 - s_ax[:, a], 0.0, 12.0) * 1.5
        if v.s_leave is not None:
            lat = lat + v.side * np.clip(s_ax[:, a] - v.s_leave, 0.0, None) * 1.5
        for lat_v in np.unique(np.round(lat, 0)):
            rows = np.round(lat, 0) == lat_v
            if abs(lat_v - fibre_y) > reach:
                continue
            kern = axle_kernel(lat_v - fibre_y, v.track_m, v.rail, u=ug, **kernel)
            strain[rows] += load_n * np.interp(
                xs[None, :] - along[rows, a : a + 1], ug, kern, left=0.0, right=0.0
            )
    strain *= (1.0 + dyn)[:, None]
    out[:, lo_c:hi_c] += (np.gradient(strain, axis=0) * setup.fs_gen).astype(np.float32)


def _add_rayleigh(out, v: Vehicle, setup: RenderSetup, tg, centre, dyn) -> None:
    """Add the Rayleigh waves radiated from the vehicle's load centre by its dynamic force."""
    x, vib_reach, c_r, fs_gen = setup.x, setup.vib_reach, setup.c_r, setup.fs_gen
    depth, gauge = setup.depth, setup.gauge
    lo_c = int(np.searchsorted(x, centre.min() - vib_reach))
    hi_c = int(np.searchsorted(x, centre.max() + vib_reach))
    if hi_c <= lo_c:
        return
    xs = x[lo_c:hi_c]
    force = float(np.sum(v.axle_kn)) * 1e3 * dyn
    # strain rate of the fibre: -(cos^2 phi / c_R) times the second time derivative of u_r
    acc = np.gradient(np.gradient(force)) * fs_gen * fs_gen
    f_c = float(np.mean(v.dyn_freqs))
    k = 2 * np.pi * f_c / c_r
    lat0 = v.lane_y - setup.fibre_y
    for a in range(0, len(xs), 64):
        xc = xs[a : a + 64]
        dxv = xc[None, :] - centre[:, None]
        r = np.sqrt(dxv * dxv + lat0 * lat0 + depth * depth)
        cos2 = (dxv * dxv) / (r * r)
        amp = (
            0.12
            * np.sqrt(k / (2 * np.pi * np.maximum(r, 1.0)))
            / setup.g_soil
            * np.exp(-np.pi * f_c * r / (setup.q * c_r))
        )
        amp *= np.abs(np.sinc(f_c * gauge * np.sqrt(cos2) / c_r))
        amp = np.where(r <= vib_reach, amp, 0.0)
        delayed = np.interp(tg[:, None] - r / c_r, tg, acc, left=0.0, right=0.0)
        out[:, lo_c + a : lo_c + a + len(xc)] += (-cos2 / c_r * amp * delayed).astype(np.float32)


def upsample(coarse: np.ndarray, r: int, n_t: int) -> np.ndarray:
    """Linear interpolation of (n_gen, ch) samples to r times the rate, float32, n_t rows."""
    if r == 1:
        return np.ascontiguousarray(coarse[:n_t])
    out = np.empty((n_t, coarse.shape[1]), dtype=np.float32)
    for phase in range(r):
        rows = out[phase::r]
        n = len(rows)
        f = np.float32(phase / r)
        rows[:] = coarse[:n] * (1 - f) + coarse[1 : n + 1] * f
    return out


def add_coloured_noise(
    data: np.ndarray,
    rng: np.random.Generator,
    fs_hz: float,
    dx_m: float,
    rms: float,
    exponent: float,
    corr_m: float,
) -> None:
    """Power-law (1/f^exponent) noise, correlated along the fibre over ``corr_m``, made at ~50 Hz."""
    from scipy import ndimage

    if rms <= 0:
        return
    n_t, n_ch = data.shape
    r = max(1, int(fs_hz // 50))
    n_f = int(np.ceil(n_t / r)) + 2
    w = rng.standard_normal((n_f, n_ch))
    w = ndimage.gaussian_filter1d(w, max(corr_m / dx_m, 0.5), axis=1, mode="reflect")
    spec = np.fft.rfft(w, axis=0)
    f = np.fft.rfftfreq(n_f, r / fs_hz)
    f[0] = f[1]
    spec *= (np.maximum(f, 0.1) ** (-exponent / 2))[:, None]
    field = np.fft.irfft(spec, n=n_f, axis=0)
    field *= rms / (field.std() + 1e-30)
    data += upsample(field.astype(np.float32), r, n_t)


def add_interrogator_noise(
    data: np.ndarray,
    rng: np.random.Generator,
    opts: HalfspaceOptions,
    *,
    fs_hz: float,
    dx_m: float,
    duration_s: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Add white, coloured and burst noise in place and make channels bad; (dead, saturated, nan) indices."""
    n_t, n_channels = data.shape
    data += opts.white_noise * rng.standard_normal((n_t, n_channels), dtype=np.float32)
    add_coloured_noise(data, rng, fs_hz, dx_m, opts.coloured_noise, opts.coloured_exponent, opts.noise_corr_m)
    _add_bursts(data, rng, fs_hz, duration_s, (opts.burst_rate_per_min, opts.burst_amplitude))
    return _bad_channels(
        data, rng, (opts.dead_channels, opts.saturated_channels, opts.nan_channels), opts.white_noise
    )


def _add_bursts(data, rng, fs_hz: float, duration_s: float, bursts) -> None:
    """Add short sinusoidal bursts seen on every channel (interrogator artefacts); ``bursts`` is (rate per
    minute, amplitude)."""
    rate_per_min, amplitude = bursts
    n_channels = data.shape[1]
    for _ in range(rng.poisson(rate_per_min * duration_s / 60.0)):
        dur = rng.uniform(0.2, 2.0)
        i0 = int(rng.uniform(0, duration_s - dur) * fs_hz)
        m = int(dur * fs_hz)
        tt = np.arange(m) / fs_hz
        f = rng.uniform(0.5, 20.0)
        burst = amplitude * np.sin(2 * np.pi * f * tt + rng.uniform(0, 6.3)) * np.hanning(m)
        data[i0 : i0 + m] += (burst[:, None] * rng.uniform(0.9, 1.1, n_channels)[None, :]).astype(np.float32)


def _bad_channels(data, rng, counts, white_noise: float):
    """Make ``counts = (dead, saturated, nan)`` random inner channels bad in place; their indices."""
    dead_channels, saturated_channels, nan_channels = counts
    n_channels = data.shape[1]
    n_bad = min(n_channels - 2, dead_channels + saturated_channels + nan_channels)
    bad = rng.choice(np.arange(1, n_channels - 1), size=n_bad, replace=False)
    dead = np.sort(bad[:dead_channels])
    sat = np.sort(bad[dead_channels : dead_channels + saturated_channels])
    nan = np.sort(bad[dead_channels + saturated_channels :])
    data[:, dead] = 0.0
    for c in sat:
        clip = 3.0 * white_noise
        data[:, c] = np.clip(40.0 * data[:, c], -clip, clip)
    data[:, nan] = np.nan
    return dead, sat, nan
