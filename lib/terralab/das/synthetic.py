"""Synthetic DAS traffic records with known ground truth.

:func:`traffic` makes a strain-rate record ``xr.DataArray (time, distance)`` of cars and trucks crossing a
fibre section, and the truth table of every vehicle. The physics is simple but not idealised:

* **quasi-static load**: each axle load presses the fibre; the strain under a point load is a Gaussian bump
  (width: ground/pavement spreading, widened by the gauge length), and on a bridge each span adds a bending
  strain (influence line of a simply supported span). Strain rate is its time derivative, so it scales with
  speed;
* **vibration**: every axle load carries a dynamic part (narrow-band around a vehicle's suspension/wheel-hop
  frequency); trucks are heavier, longer, have more axles and vibrate lower, but car and truck ranges overlap;
* **kinematics**: vehicles may brake or accelerate across the section (curved tracks), drive in platoons with
  2-3 s headways, overtake, and travel both ways (the far lane couples more weakly);
* **fibre**: per-channel coupling (gain and pulse width), dead channels (zeros), NaN channels and noisy
  channels;
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

from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InvalidInputError
from ..progress import progress_bar
from .bump_fleet import Vehicle, explicit_schedule, random_schedule, truth_table
from .bump_render import add_low_rate_field, add_vehicle
from .halfspace import halfspace_scene, halfspace_traffic
from .scene_options import BumpOptions, scene_options
from .truth import strain_rate_record

if TYPE_CHECKING:
    import pandas as pd
    import xarray as xr

__all__ = [
    "QUIET_NOISE",
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
#: Instrument noise at 1 % of the lowest white and coloured level each simulator draws in
#: :func:`random_scene` (its ``quiet=True``): the same scene almost without instrument noise (what a detector
#: then still loses is lost to the signatures themselves, not to the noise floor).
QUIET_NOISE: dict[str, dict[str, float]] = {
    "halfspace": {"white_noise": 2e-9, "coloured_noise": 1e-10},
    "bump": {"white_noise": 2.5e-9, "coloured_noise": 2e-10},
}


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


def traffic(
    *,
    duration_s: float = 120.0,
    fs_hz: float = 1000.0,
    dx_m: float = 1.0,
    n_channels: int = 400,
    start_time: Any = "2024-05-01T08:00:00",
    distance_start_m: float = 0.0,
    vehicles: pd.DataFrame | None = None,
    scene_name: str = "custom",
    seed: int = 0,
    progress: bool = False,
    **options: Any,
) -> tuple[xr.DataArray, pd.DataFrame]:
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
        Explicit vehicles with columns ``time_s`` (s after start, when the vehicle's load centre passes the
        middle of the section), ``speed_kmh``, ``direction`` (+1/-1), ``vehicle_class`` ("car"/"truck") and
        optionally ``speed_change`` (fractional change of speed across the section). Default: a random
        schedule drawn from ``rate_per_min``, ``truck_fraction``, ``speed_kmh``, ``speed_change``,
        ``platoon_fraction`` and ``overtaking_fraction``; every vehicle is inside the record for its whole
        crossing.
    scene_name : str
        Stored in the record's ``attrs["scene"]``.
    seed : int
        Random seed; the same seed gives the same record.
    progress : bool
        Show a progress bar over the vehicles.
    **options
        The scene's knobs below, the fields of :class:`~terralab.das.scene_options.BumpOptions` (which holds
        their defaults).

    Other Parameters
    ----------------
    rate_per_min, truck_fraction : float
        Vehicles per minute (both directions) and the share of trucks of the random schedule.
    speed_kmh : (float, float)
        Range of the speeds at mid-section of the random schedule.
    speed_change, speed_change_fraction : float
        Largest fractional speed change across the section (drawn uniformly within +-``speed_change``), and
        the share of the schedule's vehicles that change speed.
    platoon_fraction, overtaking_fraction : float
        Share of the schedule's leading vehicles followed by one or two more at 2-3 s headways, and share
        passed by a faster overtaking car.
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

    Returns
    -------
    data : xarray.DataArray
        Strain rate (1/s), float32, dims ``("time", "distance")``; attrs list the bad channels and modes.
    truth : pandas.DataFrame
        One row per vehicle: ``vehicle_id``, ``time`` (datetime64[ns], load centre at mid-section),
        ``speed_kmh`` (at mid-section), ``direction``, ``vehicle_class``, ``t_enter``, ``t_exit``,
        ``speed_change``, ``n_axles``, ``length_m``, ``gross_load_kn``, ``vib_freq_hz``, ``platoon_id``,
        ``overtaking``.

    Raises
    ------
    InvalidInputError
        An option that is none of the knobs (the message lists them), non-positive ``fs_hz``, ``dx_m`` or
        ``duration_s``, fewer than two channels, or a ``vehicles`` table without the columns it needs.
    """
    import pandas as pd

    opts = scene_options(BumpOptions, options, "traffic")
    if fs_hz <= 0 or dx_m <= 0 or duration_s <= 0:
        raise InvalidInputError("fs_hz, dx_m and duration_s must be positive")
    if n_channels < 2:
        raise InvalidInputError("n_channels must be at least 2")
    rng = np.random.default_rng(seed)
    n_t = round(float(duration_s * fs_hz))
    x = distance_start_m + dx_m * np.arange(n_channels)
    section = (x[0], x[-1])
    length = x[-1] - x[0]
    t0 = np.datetime64(pd.Timestamp(start_time).to_datetime64(), "ns")

    fleet = _schedule(rng, vehicles, opts, duration_s=duration_s, length_m=length)
    data = _noise(rng, opts, n_t=n_t, x=x, fs_hz=fs_hz, dx_m=dx_m)
    _add_vehicles(data, rng, fleet, opts, x=x, fs_hz=fs_hz, progress=progress)
    dead, nan, noisy = _bad_channels(
        data, rng, (opts.dead_channels, opts.nan_channels, opts.noisy_channels), opts.white_noise
    )

    da = strain_rate_record(
        data,
        t0,
        x,
        fs_hz=fs_hz,
        dx_m=dx_m,
        gauge_length_m=opts.gauge_length_m,
        scene=scene_name,
        seed=int(seed),
        dead_channels_m=x[dead].tolist(),
        nan_channels_m=x[nan].tolist(),
        noisy_channels_m=x[noisy].tolist(),
        modes_hz=[float(m[0]) for m in opts.modes],
        gaps="[]",
    )
    truth = truth_table(fleet, t0=t0, length_m=length)
    truth.attrs["section_m"] = tuple(float(s) for s in section)
    return da, truth


def _schedule(
    rng: np.random.Generator,
    vehicles: pd.DataFrame | None,
    opts: BumpOptions,
    *,
    duration_s: float,
    length_m: float,
) -> list[Vehicle]:
    """The listed ``vehicles``, or a random schedule drawn from the options."""
    if vehicles is not None:
        return explicit_schedule(rng, vehicles, length_m=length_m, far_lane_coupling=opts.far_lane_coupling)
    return random_schedule(
        rng,
        duration_s=duration_s,
        length_m=length_m,
        rate_per_min=opts.rate_per_min,
        truck_fraction=opts.truck_fraction,
        speed_kmh=opts.speed_kmh,
        speed_change=opts.speed_change,
        speed_change_fraction=opts.speed_change_fraction,
        platoon_fraction=opts.platoon_fraction,
        overtaking_fraction=opts.overtaking_fraction,
        far_lane_coupling=opts.far_lane_coupling,
    )


def _noise(
    rng: np.random.Generator, opts: BumpOptions, *, n_t: int, x: np.ndarray, fs_hz: float, dx_m: float
) -> np.ndarray:
    """The record's noise (float32, time x channel): white, red, common-mode and the structural modes."""
    data = rng.standard_normal((n_t, len(x)), dtype=np.float32)
    data *= np.float32(opts.white_noise)
    add_low_rate_field(
        data,
        rng,
        fs_hz=fs_hz,
        dx_m=dx_m,
        coloured=opts.coloured_noise,
        corner_hz=opts.coloured_corner_hz,
        corr_m=opts.correlation_length_m,
        common=opts.common_mode_noise,
        modes=opts.modes,
        x=x,
    )
    return data


def _add_vehicles(
    data: np.ndarray,
    rng: np.random.Generator,
    fleet: list[Vehicle],
    opts: BumpOptions,
    *,
    x: np.ndarray,
    fs_hz: float,
    progress: bool,
) -> None:
    """Add every vehicle's strain rate to ``data`` in place, through each channel's coupling and bump width
    (and the bridge spans' bending, if any)."""
    x_mid = 0.5 * (x[0] + x[-1])
    gain, sigma = _channel_response(
        rng, len(x), (opts.gain_spread, opts.width_spread), opts.bump_width_m, opts.gauge_length_m
    )
    spans = None
    if opts.span_m and opts.span_bending > 0:
        edges = np.arange(x[0], x[-1] + opts.span_m, opts.span_m)
        spans = (edges, opts.span_bending)
    r = max(1, int(fs_hz // 250))  # vehicle signals are computed at <= ~250 Hz, then interpolated
    fs_gen = fs_hz / r
    for veh in progress_bar(fleet, desc="synthetic vehicles", enabled=progress):
        add_vehicle(
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
            strain_per_kn=opts.strain_per_kn,
        )


def _channel_response(rng, n_channels: int, spreads, bump_width_m: float, gauge_length_m: float):
    """(coupling gain, bump standard deviation in m) per channel; ``spreads`` is (gain, width) spread."""
    gain_spread, width_spread = spreads
    gain = np.exp(gain_spread * rng.standard_normal(n_channels)).astype(np.float64)
    width = bump_width_m * np.clip(1.0 + width_spread * rng.standard_normal(n_channels), 0.5, 1.6)
    return gain, np.sqrt(width**2 + gauge_length_m**2 / 12.0)


def _bad_channels(data, rng, counts, white_noise: float):
    """Make ``counts = (dead, nan, noisy)`` random inner channels bad in place; their indices."""
    dead_channels, nan_channels, noisy_channels = counts
    n_t, n_channels = data.shape
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
    return dead, nan, noisy


def scene(name: str, **overrides: Any) -> tuple[xr.DataArray, pd.DataFrame]:
    """A named scene (see ``SCENES``) with keyword overrides; returns ``(data, truth)``."""
    if name not in SCENES:
        raise InvalidInputError(f"unknown scene {name!r}; choose one of {sorted(SCENES)}")
    params = {**SCENES[name], **overrides}
    params.setdefault("scene_name", name)
    return traffic(**params)


def highway_bridge(**overrides: Any) -> tuple[xr.DataArray, pd.DataFrame]:
    """Highway bridge: 1 m channels, 1000 Hz, 60-110 km/h both ways, 40 m spans, three structural modes."""
    return scene("highway_bridge", **overrides)


def urban_street(**overrides: Any) -> tuple[xr.DataArray, pd.DataFrame]:
    """Urban street: 5 m channels, 625 Hz, 10-60 km/h both ways, no bridge."""
    return scene("urban_street", **overrides)


def random_scene(
    simulator: str, site: str, seed: int, *, quiet: bool = False, **overrides: Any
) -> tuple[xr.DataArray, pd.DataFrame]:
    """A scene whose parameters are drawn at random from ``seed``: ``(data, truth)``.

    ``simulator`` is "bump" (this module: Gaussian strain bumps, bridge spans, AR(1) noise) or "halfspace"
    (:mod:`terralab.das.halfspace`: Boussinesq strain, Rayleigh waves, car-following); ``site`` is "highway"
    (1 m channels, 1000 Hz) or "urban" (5 m channels, 625 Hz). For "bump", noise levels, coupling spread, load
    scale, truck share and fibre length are drawn as in the classifier's training scenes. ``quiet`` renders
    the same scene with the instrument noise of :data:`QUIET_NOISE` (explicit ``overrides`` win).
    """
    if simulator not in SIMULATORS:
        raise InvalidInputError(f"simulator must be one of {SIMULATORS}, got {simulator!r}")
    if quiet:
        overrides = {**QUIET_NOISE[simulator], **overrides}
    if simulator == "halfspace":
        return halfspace_scene(site, seed, **overrides)
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
