"""The bump simulator's signals: each vehicle's strain-rate bumps and the low-rate fields (noise, bridge
modes).

Used by :func:`terralab.das.synthetic.traffic`.

Examples
--------
One listed truck of the named urban scene, drawn onto a silent fibre: the strain rate at mid-section peaks
as the truck passes it, 10 s into the record:

>>> import numpy as np, pandas as pd
>>> from terralab.das.bump_fleet import explicit_schedule
>>> from terralab.das.bump_render import add_vehicle
>>> truck = pd.DataFrame(
...     {"time_s": [10.0], "speed_kmh": [40.0], "direction": [1], "vehicle_class": ["truck"]})
>>> x = 5.0 * np.arange(20)
>>> (veh,) = explicit_schedule(np.random.default_rng(0), truck, length_m=95.0, far_lane_coupling=(0.6, 0.85))
>>> data = np.zeros((20 * 625, 20), dtype=np.float32)
>>> add_vehicle(data, veh, x=x, x_mid=47.5, fs_hz=625.0, r=2, fs_gen=312.5, gain=np.ones(20),
...             sigma=np.full(20, 3.3), spans=None, strain_per_kn=2e-8)
>>> t_peak = np.argmax(np.abs(data[:, 10])) / 625.0
>>> bool(abs(t_peak - 10.0) < 1.0)
True
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .bump_fleet import Vehicle, tau_at

__all__ = ["add_low_rate_field", "add_vehicle"]


def add_vehicle(
    data: np.ndarray,
    v: Vehicle,
    *,
    x: np.ndarray,
    x_mid: float,
    fs_hz: float,
    r: int,
    fs_gen: float,
    gain: np.ndarray,
    sigma: np.ndarray,
    spans: tuple[np.ndarray, float] | None,
    strain_per_kn: float,
) -> None:
    """Add one vehicle's strain rate to ``data`` in place (computed at fs_gen, linearly interpolated)."""
    n_t, n_ch = data.shape
    reach = (
        4.0 * float(sigma.max()) + float(np.ptp(v.axle_offsets)) + (spans[0][1] - spans[0][0] if spans else 0)
    )
    length = x[-1] - x[0]
    ta = tau_at(v, -(length / 2 + reach))
    tb = tau_at(v, length / 2 + reach)
    k0 = int(np.floor((v.t_mid_s + ta) * fs_gen)) - 2
    k1 = int(np.ceil((v.t_mid_s + tb) * fs_gen)) + 2
    k0 = max(k0, 0)
    k1 = min(k1, int(np.ceil(n_t / r)) + 1)
    if k1 - k0 < 3:
        return
    tk = np.arange(k0, k1) / fs_gen
    tau = tk - v.t_mid_s
    s = v.v_mid * tau + 0.5 * v.accel * tau * tau
    # past a turning point (strong braking) the vehicle stays put instead of reversing
    vel = v.v_mid + v.accel * tau
    if np.any(vel <= 0):
        stop = np.argmax(vel <= 0) if v.accel < 0 else None
        if stop is not None and stop > 0:
            s[stop:] = s[stop - 1]
    centre = x_mid + v.direction * s  # distance of the load centre
    rng = np.random.default_rng(abs(hash((round(v.t_mid_s, 6), v.direction))) % (2**32))
    n_ax = len(v.axle_loads_kn)
    # dynamic load: narrow-band around vib_freq_hz, plus a slow body bounce
    dyn = np.zeros((len(tk), n_ax))
    for f in v.vib_freq_hz * np.array([0.93, 1.0, 1.07]):
        dyn += np.sin(2 * np.pi * f * tk[:, None] + rng.uniform(0, 2 * np.pi, n_ax)[None, :])
    dyn *= v.vib_factor / np.sqrt(1.5)
    dyn += 0.05 * np.sin(2 * np.pi * rng.uniform(1.0, 2.0) * tk[:, None] + rng.uniform(0, 6.3, n_ax)[None, :])
    loads = v.axle_loads_kn[None, :] * (1.0 + dyn)  # (t, axle)
    pos = centre[:, None] - v.direction * v.axle_offsets[None, :]  # (t, axle)
    amp = strain_per_kn * v.lane_coupling
    group = 64
    for c0 in range(0, n_ch, group):
        c1 = min(n_ch, c0 + group)
        lo, hi = x[c0] - reach, x[c1 - 1] + reach
        inside = (centre >= lo) & (centre <= hi)
        if not inside.any():
            continue
        i0 = max(int(np.argmax(inside)) - 1, 0)
        i1 = min(len(inside) - int(np.argmax(inside[::-1])) + 1, len(tk))
        xs = x[c0:c1]
        u = xs[None, None, :] - pos[i0:i1, :, None]  # (t, axle, ch)
        bump = np.exp(-0.5 * (u / sigma[None, None, c0:c1]) ** 2)
        if spans is not None:
            edges, beta = spans
            bump = bump - beta * _bending(xs, pos[i0:i1], edges)
        strain = -amp * np.einsum("ta,tac->tc", loads[i0:i1], bump) * gain[None, c0:c1]
        rate = np.gradient(strain, axis=0) * fs_gen
        _add_interp(data, rate, k_start=k0 + i0, r=r, c0=c0)


def _bending(xs, pos, edges):
    """Bending strain of simply supported spans at channels xs for loads at pos (t, axle): (t, axle, ch)."""
    span_x = np.clip(np.searchsorted(edges, xs, side="right") - 1, 0, len(edges) - 2)
    span_p = np.searchsorted(edges, pos, side="right") - 1
    a = edges[span_x]
    L = edges[span_x + 1] - a
    xi = (xs - a) / L  # (ch,)
    eta = (pos[..., None] - a[None, None, :]) / L[None, None, :]  # (t, axle, ch)
    il = (
        np.where(xi[None, None, :] <= eta, xi[None, None, :] * (1 - eta), eta * (1 - xi[None, None, :])) * 4.0
    )
    same = span_p[..., None] == span_x[None, None, :]
    return np.where(same & (eta >= 0) & (eta <= 1), il, 0.0)


def _add_interp(data, coarse, *, k_start: int, r: int, c0: int):
    """Add coarse samples (every r-th full-rate sample from k_start*r) linearly interpolated into data."""
    n_t = data.shape[0]
    n_c = coarse.shape[1]
    if r == 1:
        j0 = k_start
        j1 = min(n_t, j0 + len(coarse))
        data[j0:j1, c0 : c0 + n_c] += coarse[: j1 - j0].astype(np.float32)
        return
    coarse = coarse.astype(np.float32, copy=False)
    j0 = k_start * r
    n_k = len(coarse) - 1
    j1 = min(n_t, j0 + n_k * r)
    if j1 <= j0:
        return
    block = data[j0:j1, c0 : c0 + n_c]
    lo, hi = coarse[:-1], coarse[1:]
    for phase in range(r):  # one strided pass per phase keeps temporaries small and float32
        rows = block[phase::r]
        f = np.float32(phase / r)
        rows += lo[: len(rows)] * (1 - f) + hi[: len(rows)] * f


def add_low_rate_field(
    data: np.ndarray,
    rng: np.random.Generator,
    *,
    fs_hz: float,
    dx_m: float,
    coloured: float,
    corner_hz: float,
    corr_m: float,
    common: float,
    modes: Sequence[tuple[float, float, float]],
    x: np.ndarray,
) -> None:
    """Add red spatially correlated noise, common-mode noise and modal vibration (made at ~50 Hz)."""
    from scipy import ndimage, signal

    n_t, n_ch = data.shape
    r = max(1, int(fs_hz // 50))
    fs_f = fs_hz / r
    n_f = int(np.ceil(n_t / r)) + 2
    field = np.zeros((n_f, n_ch))
    warm = int(5 * fs_f / max(corner_hz, 0.05))
    if coloured > 0:
        rho = np.exp(-2 * np.pi * corner_hz / fs_f)
        w = rng.standard_normal((n_f + warm, n_ch))
        w = ndimage.gaussian_filter1d(w, max(corr_m / dx_m, 0.5), axis=1, mode="reflect")
        red = signal.lfilter([1.0], [1.0, -rho], w, axis=0)[warm:]
        field += coloured * red / red.std()
    if common > 0:
        rho = np.exp(-2 * np.pi * corner_hz / fs_f)
        cm = signal.lfilter([1.0], [1.0, -rho], rng.standard_normal(n_f + warm))[warm:]
        field += common * (cm / cm.std())[:, None]
    length = max(x[-1] - x[0], 1.0)
    for n, (f, zeta, rms) in enumerate(modes, start=1):
        if f >= 0.45 * fs_f:
            continue
        b, a = _resonator(f, zeta, fs_f)
        q = signal.lfilter(b, a, rng.standard_normal(n_f + 20 * int(fs_f)))[20 * int(fs_f) :]
        q = np.gradient(q) * fs_f  # strain rate of a modal strain
        shape = np.sin(n * np.pi * (x - x[0]) / length)
        field += rms * (q / q.std())[:, None] * shape[None, :] / np.sqrt(np.mean(shape**2))
    _add_interp(data, field, k_start=0, r=r, c0=0)


def _resonator(f_hz: float, zeta: float, fs: float):
    """Discrete single-degree-of-freedom oscillator with its poles mapped exactly (no bilinear warping)."""
    w = 2 * np.pi * f_hz
    r = np.exp(-zeta * w / fs)
    wd = w * np.sqrt(1 - zeta * zeta) / fs
    return np.array([1.0]), np.array([1.0, -2 * r * np.cos(wd), r * r])
