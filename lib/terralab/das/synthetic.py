"""Synthetic DAS traffic records with known ground truth.

:func:`traffic` makes a strain-rate record ``xr.DataArray (time, distance)`` of cars and trucks crossing a fibre
section, and the truth table of every vehicle. The physics is simple but not idealised:

* **quasi-static load**: each axle load presses the fibre; the strain under a point load is a Gaussian bump
  (width: ground/pavement spreading, widened by the gauge length), and on a bridge each span adds a bending
  strain (influence line of a simply supported span). Strain rate is its time derivative, so it scales with
  speed;
* **vibration**: every axle load carries a dynamic part (narrow-band around a vehicle's suspension/wheel-hop
  frequency); trucks are heavier, longer, have more axles and vibrate lower, but car and truck ranges overlap;
* **kinematics**: vehicles may brake or accelerate across the section (curved tracks), drive in platoons with
  2-3 s headways, overtake, and travel both ways (the far lane couples more weakly);
* **fibre**: per-channel coupling (gain and pulse width), dead channels (zeros), NaN channels and noisy channels;
* **noise**: white incoherent noise, coloured (red) spatially correlated noise, common-mode noise, and for
  bridges the ambient vibration of a few structural modes (known frequencies, for :mod:`terralab.das.modal`).

A second simulator written independently from different physics (elastic half-space strain under every wheel,
Rayleigh waves, car-following traffic with a vehicle zoo including trams) lives in
:mod:`terralab.das.halfspace` and is exposed here as :func:`halfspace_scene` / :func:`halfspace_traffic`.
:func:`random_scene` draws a scene with random parameters from either simulator ("bump": this module,
"halfspace": the other), the way the cross-simulator benchmark and tests use them.

Two named scenes reproduce the settings the detector must handle with the same defaults:
:func:`highway_bridge` (1 m channels, 1000 Hz, 60-110 km/h) and :func:`urban_street` (5 m channels, 625 Hz,
10-60 km/h).

Examples
--------
>>> from terralab.das import synthetic
>>> data, truth = synthetic.highway_bridge(duration_s=60, n_channels=200, seed=1)   # doctest: +SKIP
>>> truth[["time", "speed_kmh", "direction", "vehicle_class"]].head()               # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InvalidInputError
from ..progress import progress_bar
from .halfspace import halfspace_scene, halfspace_traffic
from .params import KMH
from .truth import TRUTH_COLUMNS

__all__ = [
    "SCENES",
    "SIMULATORS",
    "halfspace_scene",
    "halfspace_traffic",
    "highway_bridge",
    "random_scene",
    "scene",
    "traffic",
    "urban_street",
]

SIMULATORS = ("bump", "halfspace")


SCENES: dict[str, dict[str, Any]] = {
    "highway_bridge": {
        "fs_hz": 1000.0,
        "dx_m": 1.0,
        "n_channels": 400,
        "speed_kmh": (60.0, 110.0),
        "rate_per_min": 14.0,
        "truck_fraction": 0.3,
        "gauge_length_m": 4.0,
        "bump_width_m": 2.5,
        "span_m": 40.0,
        "span_bending": 0.35,
        "modes": ((2.35, 0.015, 2.0e-8), (3.9, 0.012, 1.5e-8), (6.2, 0.01, 1.0e-8)),
        "duration_s": 120.0,
    },
    "urban_street": {
        "fs_hz": 625.0,
        "dx_m": 5.0,
        "n_channels": 60,
        "speed_kmh": (10.0, 60.0),
        "rate_per_min": 6.0,
        "truck_fraction": 0.2,
        "gauge_length_m": 10.0,
        "bump_width_m": 3.0,
        "span_m": None,
        "span_bending": 0.0,
        "modes": (),
        "duration_s": 240.0,
        "far_lane_coupling": (0.6, 0.85),
    },
}


@dataclass
class _Vehicle:
    t_mid_s: float
    v_mid: float  # m/s at the middle of the section
    direction: int
    vclass: str
    accel: float  # m/s^2 along the travel direction
    axle_offsets: np.ndarray  # m behind the load centroid (negative = ahead)
    axle_loads_kn: np.ndarray
    vib_freq_hz: float
    vib_factor: float
    lane_coupling: float
    length_m: float
    platoon_id: int = -1
    overtaking: bool = False


def traffic(
    *,
    duration_s: float = 120.0,
    fs_hz: float = 1000.0,
    dx_m: float = 1.0,
    n_channels: int = 400,
    start_time: Any = "2024-05-01T08:00:00",
    distance_start_m: float = 0.0,
    vehicles=None,
    rate_per_min: float = 12.0,
    truck_fraction: float = 0.25,
    speed_kmh: tuple[float, float] = (60.0, 110.0),
    speed_change: float = 0.15,
    speed_change_fraction: float = 0.4,
    platoon_fraction: float = 0.3,
    overtaking_fraction: float = 0.1,
    far_lane_coupling: tuple[float, float] = (0.55, 0.85),
    gauge_length_m: float = 4.0,
    bump_width_m: float = 2.5,
    span_m: float | None = None,
    span_bending: float = 0.0,
    strain_per_kn: float = 2e-8,
    gain_spread: float = 0.35,
    width_spread: float = 0.2,
    white_noise: float = 5e-7,
    coloured_noise: float = 4e-8,
    coloured_corner_hz: float = 0.5,
    correlation_length_m: float = 20.0,
    common_mode_noise: float = 4e-8,
    modes: Sequence[tuple[float, float, float]] = (),
    dead_channels: int = 2,
    nan_channels: int = 1,
    noisy_channels: int = 2,
    scene_name: str = "custom",
    seed: int = 0,
    progress: bool = False,
):
    """Make a synthetic DAS traffic record and its ground truth.

    Parameters
    ----------
    duration_s, fs_hz : float
        Record length (s) and sampling rate (Hz).
    dx_m : float
        Channel spacing (m); ``n_channels`` channels from ``distance_start_m``.
    start_time : datetime-like
        Time of the first sample.
    vehicles : pandas.DataFrame, optional
        Explicit vehicles with columns ``time_s`` (s after start, when the vehicle's load centre passes the middle
        of the section), ``speed_kmh``, ``direction`` (+1/-1), ``vehicle_class`` ("car"/"truck") and optionally
        ``speed_change`` (fractional change of speed across the section). Default: a random schedule drawn from
        ``rate_per_min``, ``truck_fraction``, ``speed_kmh``, ``speed_change``, ``platoon_fraction`` and
        ``overtaking_fraction``; every vehicle is inside the record for its whole crossing.
    far_lane_coupling : (float, float)
        Range of the coupling factor of vehicles driving towards decreasing distance (the far lane).
    gauge_length_m, bump_width_m : float
        Gauge length and the half-width (std, m) of the strain bump under an axle.
    span_m, span_bending : float
        Bridge span length (m) and the bending strain at mid-span relative to the local bump (0: no bridge).
    strain_per_kn : float
        Peak local strain per kN of axle load.
    gain_spread, width_spread : float
        Log-normal spread of the channel coupling gain; relative spread of the per-channel bump width.
    white_noise, coloured_noise, common_mode_noise : float
        Noise RMS in 1/s: incoherent white noise at ``fs_hz``; red noise (flat below ``coloured_corner_hz``,
        falling as 1/f above) correlated over ``correlation_length_m``; a common-mode series on all channels.
    modes : sequence of (freq_hz, damping_ratio, rms_1_per_s)
        Structural modes of the section, excited by ambient noise (mode shapes: sin(n*pi*x/L)).
    dead_channels, nan_channels, noisy_channels : int
        Numbers of channels that read zero, NaN, or 10 times the white noise.
    seed : int
        Random seed; the same seed gives the same record.

    Returns
    -------
    data : xarray.DataArray
        Strain rate (1/s), float32, dims ``("time", "distance")``; attrs list the bad channels and modes.
    truth : pandas.DataFrame
        One row per vehicle: ``vehicle_id``, ``time`` (datetime64[ns], load centre at mid-section), ``speed_kmh``
        (at mid-section), ``direction``, ``vehicle_class``, ``t_enter``, ``t_exit``, ``speed_change``,
        ``n_axles``, ``length_m``, ``gross_load_kn``, ``vib_freq_hz``, ``platoon_id``, ``overtaking``.
    """
    import pandas as pd
    import xarray as xr

    if fs_hz <= 0 or dx_m <= 0 or duration_s <= 0:
        raise InvalidInputError("fs_hz, dx_m and duration_s must be positive")
    if n_channels < 2:
        raise InvalidInputError("n_channels must be at least 2")
    rng = np.random.default_rng(seed)
    n_t = round(float(duration_s * fs_hz))
    x = distance_start_m + dx_m * np.arange(n_channels)
    section = (x[0], x[-1])
    length = x[-1] - x[0]
    x_mid = 0.5 * (x[0] + x[-1])
    t0 = np.datetime64(pd.Timestamp(start_time).to_datetime64(), "ns")

    if vehicles is None:
        fleet = _random_schedule(
            rng,
            duration_s=duration_s,
            length_m=length,
            rate_per_min=rate_per_min,
            truck_fraction=truck_fraction,
            speed_kmh=speed_kmh,
            speed_change=speed_change,
            speed_change_fraction=speed_change_fraction,
            platoon_fraction=platoon_fraction,
            overtaking_fraction=overtaking_fraction,
            far_lane_coupling=far_lane_coupling,
        )
    else:
        fleet = _explicit_schedule(rng, vehicles, length_m=length, far_lane_coupling=far_lane_coupling)

    # --- noise -------------------------------------------------------------------------------------
    data = rng.standard_normal((n_t, n_channels), dtype=np.float32)
    data *= np.float32(white_noise)
    _add_low_rate_field(
        data,
        rng,
        fs_hz=fs_hz,
        dx_m=dx_m,
        coloured=coloured_noise,
        corner_hz=coloured_corner_hz,
        corr_m=correlation_length_m,
        common=common_mode_noise,
        modes=modes,
        x=x,
    )

    # --- vehicles ----------------------------------------------------------------------------------
    gain = np.exp(gain_spread * rng.standard_normal(n_channels)).astype(np.float64)
    width = bump_width_m * np.clip(1.0 + width_spread * rng.standard_normal(n_channels), 0.5, 1.6)
    sigma = np.sqrt(width**2 + gauge_length_m**2 / 12.0)
    spans = None
    if span_m and span_bending > 0:
        edges = np.arange(x[0], x[-1] + span_m, span_m)
        spans = (edges, span_bending)
    r = max(1, int(fs_hz // 250))  # vehicle signals are computed at <= ~250 Hz, then interpolated
    fs_gen = fs_hz / r
    for veh in progress_bar(fleet, desc="synthetic vehicles", enabled=progress):
        _add_vehicle(
            data,
            veh,
            x=x,
            x_mid=x_mid,
            fs_hz=fs_hz,
            r=r,
            fs_gen=fs_gen,
            gain=gain,
            sigma=sigma,
            spans=spans,
            strain_per_kn=strain_per_kn,
        )

    # --- bad channels ------------------------------------------------------------------------------
    bad = rng.choice(
        np.arange(1, n_channels - 1),
        size=min(n_channels - 2, dead_channels + nan_channels + noisy_channels),
        replace=False,
    )
    dead = np.sort(bad[:dead_channels])
    nan = np.sort(bad[dead_channels : dead_channels + nan_channels])
    noisy = np.sort(bad[dead_channels + nan_channels :])
    data[:, dead] = 0.0
    data[:, nan] = np.nan
    for c in noisy:
        data[:, c] += rng.standard_normal(n_t, dtype=np.float32) * np.float32(10 * white_noise)

    times = t0 + np.round(np.arange(n_t) * (1e9 / fs_hz)).astype("timedelta64[ns]")
    da = xr.DataArray(
        data,
        dims=("time", "distance"),
        coords={"time": times, "distance": x},
        name="strain_rate",
        attrs={
            "units": "1/s",
            "measurand": "strain_rate",
            "gauge_length_m": float(gauge_length_m),
            "sampling_rate_hz": float(fs_hz),
            "channel_spacing_m": float(dx_m),
            "format": "synthetic",
            "scene": scene_name,
            "seed": int(seed),
            "dead_channels_m": x[dead].tolist(),
            "nan_channels_m": x[nan].tolist(),
            "noisy_channels_m": x[noisy].tolist(),
            "modes_hz": [float(m[0]) for m in modes],
            "gaps": "[]",
        },
    )
    truth = _truth_table(fleet, t0=t0, length_m=length)
    truth.attrs["section_m"] = tuple(float(s) for s in section)
    return da, truth


def scene(name: str, **overrides):
    """A named scene (see ``SCENES``) with keyword overrides; returns ``(data, truth)``."""
    if name not in SCENES:
        raise InvalidInputError(f"unknown scene {name!r}; choose one of {sorted(SCENES)}")
    params = {**SCENES[name], **overrides}
    params.setdefault("scene_name", name)
    return traffic(**params)


def highway_bridge(**overrides):
    """Highway bridge: 1 m channels, 1000 Hz, 60-110 km/h both ways, 40 m spans, three structural modes."""
    return scene("highway_bridge", **overrides)


def urban_street(**overrides):
    """Urban street: 5 m channels, 625 Hz, 10-60 km/h both ways, no bridge."""
    return scene("urban_street", **overrides)


def random_scene(simulator: str, site: str, seed: int, **overrides):
    """A scene whose parameters are drawn at random from ``seed``: ``(data, truth)``.

    ``simulator`` is "bump" (this module: Gaussian strain bumps, bridge spans, AR(1) noise) or "halfspace"
    (:mod:`terralab.das.halfspace`: Boussinesq strain, Rayleigh waves, car-following); ``site`` is "highway"
    (1 m channels, 1000 Hz) or "urban" (5 m channels, 625 Hz). For "bump", noise levels, coupling spread, load
    scale, truck share and fibre length are drawn as in the classifier's training scenes.
    """
    if simulator == "halfspace":
        return halfspace_scene(site, seed, **overrides)
    if simulator != "bump":
        raise InvalidInputError(f"simulator must be one of {SIMULATORS}, got {simulator!r}")
    if site not in ("highway", "urban"):
        raise InvalidInputError(f"site must be 'highway' or 'urban', got {site!r}")
    rng = np.random.default_rng([seed, 104729])
    over: dict[str, Any] = {
        "seed": int(seed),
        "truck_fraction": float(rng.uniform(0.2, 0.45)),
        "white_noise": float(5e-7 * rng.uniform(0.5, 2.0)),
        "coloured_noise": float(4e-8 * rng.uniform(0.5, 2.0)),
        "gain_spread": float(rng.uniform(0.2, 0.5)),
        "strain_per_kn": float(2e-8 * rng.uniform(0.6, 1.6)),
    }
    if site == "highway":
        over.update(n_channels=int(rng.integers(250, 401)), duration_s=90.0)
        name = "highway_bridge"
    else:
        over.update(
            n_channels=int(rng.integers(40, 81)), duration_s=180.0, rate_per_min=float(rng.uniform(5, 9))
        )
        name = "urban_street"
    over.update(overrides)
    return scene(name, **over)


# --------------------------------------------------------------------------------------------------
# schedules
# --------------------------------------------------------------------------------------------------
def _make_vehicle(
    rng,
    vclass: str,
    *,
    t_mid: float,
    v: float,
    direction: int,
    dv_frac: float,
    length_m: float,
    lane_coupling: float,
) -> _Vehicle:
    if vclass == "car":
        wheelbase = rng.uniform(2.4, 3.0)
        offsets = np.array([0.0, wheelbase])
        gross = float(np.clip(rng.lognormal(np.log(15.0), 0.3), 7.0, 40.0))
        loads = gross * np.array([0.55, 0.45])
        veh_len = wheelbase + rng.uniform(1.5, 2.2)
        vib_f = rng.uniform(5.0, 20.0)
    else:
        n_axles = int(rng.choice([2, 3, 4, 5], p=[0.3, 0.25, 0.2, 0.25]))
        spacing = [rng.uniform(3.2, 5.5)]
        while len(spacing) < n_axles - 1:
            spacing.append(rng.choice([1.3, rng.uniform(3.5, 7.0)]))
        offsets = np.concatenate([[0.0], np.cumsum(spacing)])
        gross = float(np.clip(rng.lognormal(np.log(80.0), 0.5), 30.0, 400.0))
        w = rng.uniform(0.7, 1.3, n_axles)
        w[0] *= 0.6
        loads = gross * w / w.sum()
        veh_len = offsets[-1] + rng.uniform(2.0, 3.5)
        vib_f = rng.uniform(2.5, 10.0)
    centroid = float(np.sum(offsets * loads) / np.sum(loads))
    accel = dv_frac * v * v / max(length_m, 1.0)
    return _Vehicle(
        t_mid_s=t_mid,
        v_mid=v,
        direction=direction,
        vclass=vclass,
        accel=accel,
        axle_offsets=offsets - centroid,
        axle_loads_kn=loads,
        vib_freq_hz=float(vib_f),
        vib_factor=float(rng.uniform(0.05, 0.2)),
        lane_coupling=lane_coupling,
        length_m=float(veh_len),
    )


def _crossing_half_times(v: _Vehicle, length_m: float) -> tuple[float, float]:
    """Seconds from entering to mid-section and from mid-section to leaving."""
    return _tau_at(v, -length_m / 2), _tau_at(v, length_m / 2)


def _tau_at(v: _Vehicle, s: float) -> float:
    """Signed time (s) relative to mid-section when the load centre is at travel coordinate s (m)."""
    a, v0 = v.accel, v.v_mid
    if abs(a) < 1e-9:
        return s / v0
    disc = v0 * v0 + 2 * a * s
    if disc <= 0:
        return np.sign(s) * 1e9
    return (-v0 + np.sqrt(disc)) / a


def _random_schedule(
    rng,
    *,
    duration_s,
    length_m,
    rate_per_min,
    truck_fraction,
    speed_kmh,
    speed_change,
    speed_change_fraction,
    platoon_fraction,
    overtaking_fraction,
    far_lane_coupling,
):
    vmin, vmax = (float(s) * KMH for s in speed_kmh)
    far = rng.uniform(*far_lane_coupling)
    fleet: list[_Vehicle] = []
    margin = 4.0
    n_expected = rate_per_min * duration_s / 60.0
    platoon_counter = 0
    for direction in (1, -1):
        lane_c = 1.0 if direction == 1 else far
        n_leaders = rng.poisson(n_expected / 2 / (1 + platoon_fraction * 1.5))
        t_cands = np.sort(rng.uniform(0, duration_s, n_leaders))
        for t in t_cands:
            vclass = "truck" if rng.random() < truck_fraction else "car"
            hi = vmax if vclass == "car" else vmin + 0.8 * (vmax - vmin)
            v = rng.uniform(vmin, hi)
            dv = rng.uniform(-speed_change, speed_change) if rng.random() < speed_change_fraction else 0.0
            group = [
                _make_vehicle(
                    rng,
                    vclass,
                    t_mid=t,
                    v=v,
                    direction=direction,
                    dv_frac=dv,
                    length_m=length_m,
                    lane_coupling=lane_c,
                )
            ]
            if rng.random() < platoon_fraction:
                platoon_counter += 1
                group[0].platoon_id = platoon_counter
                for _ in range(int(rng.integers(1, 3))):
                    prev = group[-1]
                    headway = max(rng.uniform(2.0, 3.0), (prev.length_m + 8.0) / prev.v_mid)
                    fc = "truck" if rng.random() < truck_fraction else "car"
                    nv = prev.v_mid * rng.uniform(0.98, 1.02)
                    f = _make_vehicle(
                        rng,
                        fc,
                        t_mid=prev.t_mid_s + headway,
                        v=nv,
                        direction=direction,
                        dv_frac=dv,
                        length_m=length_m,
                        lane_coupling=lane_c,
                    )
                    f.platoon_id = platoon_counter
                    group.append(f)
            elif rng.random() < overtaking_fraction / max(1e-9, 1 - platoon_fraction):
                slow = group[0]
                slow.accel = 0.0
                fast_v = min(slow.v_mid * rng.uniform(1.2, 1.4), 1.3 * vmax)
                xc = rng.choice([-1, 1]) * rng.uniform(0.2, 0.35) * length_m  # crossing point, travel coords
                t_c = slow.t_mid_s + xc / slow.v_mid
                fast = _make_vehicle(
                    rng,
                    "car",
                    t_mid=t_c - xc / fast_v,
                    v=fast_v,
                    direction=direction,
                    dv_frac=0.0,
                    length_m=length_m,
                    lane_coupling=lane_c * rng.uniform(0.7, 0.9),
                )
                fast.overtaking = True
                group.append(fast)
            fleet.extend(group)
    # keep vehicles whose whole crossing is inside the record and that do not sit on top of another
    keep: list[_Vehicle] = []
    for v in sorted(fleet, key=lambda q: q.t_mid_s):
        ta, tb = _crossing_half_times(v, length_m)
        if v.t_mid_s + ta < margin or v.t_mid_s + tb > duration_s - margin:
            continue
        clash = False
        for k in keep:
            if k.direction != v.direction or (k.overtaking or v.overtaking):
                continue
            min_gap = max(1.8, (k.length_m + 6.0) / min(k.v_mid, v.v_mid))
            if abs(k.t_mid_s - v.t_mid_s) < min_gap:
                clash = True
                break
        if not clash:
            keep.append(v)
    # an overtaking car whose partner was dropped is an ordinary car
    return keep


def _explicit_schedule(rng, vehicles, *, length_m, far_lane_coupling):
    import pandas as pd

    df = pd.DataFrame(vehicles)
    need = {"time_s", "speed_kmh", "direction", "vehicle_class"}
    if not need.issubset(df.columns):
        raise InvalidInputError(f"vehicles needs columns {sorted(need)}, got {list(df.columns)}")
    far = float(np.mean(far_lane_coupling))
    fleet = []
    for row in df.itertuples(index=False):
        d = int(row.direction)
        if d not in (1, -1):
            raise InvalidInputError(f"direction must be +1 or -1, got {d}")
        if row.vehicle_class not in ("car", "truck"):
            raise InvalidInputError(f"vehicle_class must be 'car' or 'truck', got {row.vehicle_class!r}")
        dv = float(getattr(row, "speed_change", 0.0) or 0.0)
        fleet.append(
            _make_vehicle(
                rng,
                row.vehicle_class,
                t_mid=float(row.time_s),
                v=float(row.speed_kmh) * KMH,
                direction=d,
                dv_frac=dv,
                length_m=length_m,
                lane_coupling=1.0 if d == 1 else far,
            )
        )
    return fleet


def _truth_table(fleet, *, t0, length_m):
    import pandas as pd

    rows = []
    for i, v in enumerate(sorted(fleet, key=lambda q: q.t_mid_s)):
        ta, tb = _crossing_half_times(v, length_m)
        v_in = v.v_mid + v.accel * ta
        v_out = v.v_mid + v.accel * tb
        rows.append(
            {
                "vehicle_id": i,
                "time": t0 + np.timedelta64(round(float(v.t_mid_s * 1e9)), "ns"),
                "speed_kmh": v.v_mid / KMH,
                "direction": v.direction,
                "vehicle_class": v.vclass,
                "t_enter": t0 + np.timedelta64(round(float((v.t_mid_s + ta) * 1e9)), "ns"),
                "t_exit": t0 + np.timedelta64(round(float((v.t_mid_s + tb) * 1e9)), "ns"),
                "speed_change": (v_out - v_in) / v.v_mid,
                "n_axles": len(v.axle_loads_kn),
                "length_m": v.length_m,
                "gross_load_kn": float(np.sum(v.axle_loads_kn)),
                "vib_freq_hz": v.vib_freq_hz,
                "lane_coupling": v.lane_coupling,
                "platoon_id": v.platoon_id,
                "overtaking": v.overtaking,
            }
        )
    df = pd.DataFrame(rows, columns=TRUTH_COLUMNS)
    for c in ("time", "t_enter", "t_exit"):
        df[c] = pd.to_datetime(df[c]).astype("datetime64[ns]")
    return df


# --------------------------------------------------------------------------------------------------
# signal synthesis
# --------------------------------------------------------------------------------------------------
def _add_vehicle(data, v: _Vehicle, *, x, x_mid, fs_hz, r, fs_gen, gain, sigma, spans, strain_per_kn):
    """Add one vehicle's strain rate to ``data`` in place (computed at fs_gen, linearly interpolated)."""
    n_t, n_ch = data.shape
    reach = (
        4.0 * float(sigma.max()) + float(np.ptp(v.axle_offsets)) + (spans[0][1] - spans[0][0] if spans else 0)
    )
    length = x[-1] - x[0]
    ta = _tau_at(v, -(length / 2 + reach))
    tb = _tau_at(v, length / 2 + reach)
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


def _add_low_rate_field(data, rng, *, fs_hz, dx_m, coloured, corner_hz, corr_m, common, modes, x):
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
