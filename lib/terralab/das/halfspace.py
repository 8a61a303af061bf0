"""A second, independent DAS traffic simulator: elastic half-space strain and Rayleigh waves.

:mod:`terralab.das.synthetic` draws each axle's strain as a Gaussian bump on the fibre. This module shares
none of its code or signature model; it starts from continuum mechanics:

**Quasi-static strain (Boussinesq).** A vertical point load :math:`P` on the surface of a homogeneous,
isotropic elastic half-space (shear modulus :math:`G`, Poisson ratio :math:`\\nu`) displaces a point at
horizontal offset :math:`(x, y)` and depth :math:`z` along :math:`x` by (Boussinesq 1885; Johnson, *Contact
Mechanics*, 1985, eq. 3.22a)

.. math::  u_x = \\frac{P}{4\\pi G}\\left[\\frac{x z}{R^3} - (1-2\\nu)\\frac{x}{R(R+z)}\\right],
           \\qquad R = \\sqrt{x^2+y^2+z^2}.

The fibre runs along :math:`x` at depth :math:`d` and lateral offset :math:`y` from the wheel path. A DAS
channel measures the strain averaged over its gauge length :math:`L_g`, which is exactly a displacement
difference, :math:`\\bar\\varepsilon_{xx}(x) = [u_x(x+L_g/2) - u_x(x-L_g/2)]/L_g`, so no numerical derivative
is needed. The point strain :math:`\\varepsilon_{xx} = \\partial u_x/\\partial x`
(:func:`boussinesq_strain_xx`, used in the tests) is

.. math::  \\varepsilon_{xx} = \\frac{P}{4\\pi G}\\left[\\frac{z}{R^3} - \\frac{3x^2z}{R^5}
           - (1-2\\nu)\\left(\\frac{1}{R(R+z)} - \\frac{x^2(2R+z)}{R^3(R+z)^2}\\right)\\right].

It is extensional under the load and compressive on both sides (the lobes change sign across the load), and
far to the side of the wheel path it changes sign altogether. Integrated along a line it reduces to Flamant's
plane-strain solution (:func:`flamant_strain_xx`; a test checks this). Every wheel of every axle (two per
axle, ``track_m`` apart) is such a load; a tram wheel's load is spread by the rail over neighbouring sleepers
(beam on elastic foundation, Hetényi 1946:
:math:`w(x) \\propto e^{-\\beta|x|}(\\cos\\beta x+\\sin\\beta|x|)`).

**Pavement (Odemark).** The fibre lies in the ground *below* a pavement (asphalt over an unbound granular
base), in a conduit 0.6-1.5 m deep. The stiff layers above it spread the wheel load; Odemark's method of
equivalent thickness (Odemark 1949; Ullidtz, *Pavement Analysis*, 1987) replaces each layer ``i`` above the
fibre by a layer of the fibre's own medium of thickness :math:`h_e = 0.9\\,h_i (E_i/E_f)^{1/3}`, so the strain
at the fibre is Boussinesq's in a half-space of the medium around the fibre (modulus :math:`E_f`, the
subgrade, or the base if the fibre lies in it) at the *equivalent depth* :func:`odemark_depth`. The ranges
drawn per scene are the textbook ones: asphalt 1-10 GPa (Austroads 2004 design moduli: 11.5 GPa at 10 °C,
3.5 GPa at 25 °C, 0.62 GPa at 40 °C), granular base 150-500 MPa (Austroads 2004: 250-500 MPa; "Typical values
of Young's elastic modulus for pavement materials" (Huang, *Pavement Analysis and Design*): crushed stone base
140-550 MPa), subgrade 30-250 MPa (same table: clayey 21-83, silty 34-138, sandy/gravelly 69-414 MPa; SAPEM
2014 ch. 10 table 51: 50-130 MPa recommended for subgrades). The ground's shear modulus implied by the
simulated Rayleigh wave speed (140-320 m/s: 40-150 MPa, E = 100-420 MPa) bounds these from above, as the
small-strain (seismic) modulus exceeds the resilient one.

*Audit (issue 11, das3).* An earlier version drew a single "equivalent half-space" modulus of 0.8-4 GPa at the
true fibre depth: an asphalt modulus down to 1.5 m. That is 10-40 times the modulus implied by the simulator's
own Rayleigh wave speed and made a car's strain at the fibre about ten times too small (1-2e-8 instead of
1-4e-7 right above the fibre; ``benchmarks/das_oracle.py`` gives the before/after detectability).

**Ground vibration (Rayleigh waves).** Each vehicle's dynamic wheel force (body bounce ~1-3 Hz, wheel hop
~8-16 Hz, rail roughness 25-60 Hz for trams) radiates Rayleigh waves at the ground's wave speed :math:`c_R`.
In the far field of a vertical point force (Lamb 1904; Miller & Pursey 1954) the radial displacement is
:math:`u_r \\approx A_R F(t - r/c_R)\\,\\sqrt{k/(2\\pi r)}/G` with material damping
:math:`e^{-\\pi f r/(Q c_R)}`. Along the fibre, a wave arriving at angle :math:`\\varphi` strains it by
:math:`\\varepsilon_{xx} = -\\cos^2\\varphi\\,\\dot u_r/c_R` (plane-wave limit), averaged over the gauge
length (a :math:`\\mathrm{sinc}(f L_g\\cos\\varphi/c_R)` factor). So vibration reaches 20-60 m around each
vehicle and arrives at the ground's speed, hundreds of m/s, not the vehicle's.

**Traffic.** A vehicle zoo (car, van, bus incl. articulated, 2-axle truck, 5-axle tractor-trailer, tram with
bogies) drives lanes in both directions at once. Each lane is simulated with a car-following rule (desired
speed that drifts along the section, bounded acceleration and braking, a safe time gap of at least 1.2 s), so
platoons keep headways >= 1.2 s; urban scenes may have a signal in the section (stop-and-go queues) and side
streets where vehicles enter or leave mid-section (their wheel path turns away laterally, so their strain
fades physically).

**Fibre and interrogator.** A spatially correlated coupling factor (strain transfer from ground to fibre,
0.3-1.0) scales everything a channel senses: a passive cable cannot stretch more than the ground around it,
and loosely coupled cables transfer 0.13-0.53 of the rock strain (Forbriger et al. 2024, arXiv 2408.01151, by
a strainmeter array); a buried cable is better coupled. (An earlier version drew 0.4-1.6.) Dead, saturated
(clipped) and NaN channels; white instrument noise, power-law coloured noise correlated along the fibre, and
common-mode bursts (laser phase noise). The white strain-rate noise, 2e-7 to 1.2e-6 1/s per sample at
625-1000 Hz (9e-9 to 7e-8 (1/s)/sqrt(Hz), i.e. 1.4-11 nanostrain/sqrt(Hz) at 1 Hz), spans one to seven times
the high-frequency floor of a real ASN OptoDAS record with a 10 m gauge (``das/optodas_fixture`` in the shared
data: 1e-8 (1/s)/sqrt(Hz) at 100-200 Hz); the quiet end of real field fibres, the noisy end of long telecom
links. Output is strain rate (1/s), float32.

:func:`halfspace_scene` draws every parameter at random per seed for a ``"highway"`` or ``"urban"`` site (same
channel spacings and rates as the other simulator's highway and urban scenes); :func:`halfspace_traffic` takes
them explicitly. The truth table has the columns of :func:`terralab.das.synthetic.traffic`'s plus ``kind``
(the zoo member), ``coverage`` (fraction of the section the wheel path covers), ``stopped`` and ``turning``.

Examples
--------
A half-space urban scene (every parameter drawn from the seed) with one listed car:

>>> import pandas as pd
>>> from terralab.das import halfspace
>>> car = pd.DataFrame({"time_s": [10.0], "speed_kmh": [40.0], "direction": [1], "kind": ["car"]})
>>> data, truth = halfspace.halfspace_scene("urban", 1, duration_s=20.0, n_channels=20, vehicles=car)
>>> data.attrs["simulator"], data.sizes["distance"], list(truth["kind"])
('halfspace', 20, ['car'])
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InvalidInputError
from ..progress import progress_bar
from .halfspace_fleet import (
    ZOO,
    Vehicle,
    listed_fleet,
    random_fleet,
    simulate_lane,
    traffic_signals,
    tram_fleet,
)
from .halfspace_render import (
    RenderSetup,
    add_interrogator_noise,
    boussinesq_strain_xx,
    boussinesq_ux,
    coupling_field,
    flamant_strain_xx,
    odemark_depth,
    render_vehicle,
    upsample,
)
from .params import KMH
from .scene_options import HalfspaceOptions, scene_options
from .truth import HALFSPACE_TRUTH_COLUMNS, strain_rate_record

if TYPE_CHECKING:
    import pandas as pd
    import xarray as xr

__all__ = [
    "ZOO",
    "boussinesq_strain_xx",
    "boussinesq_ux",
    "flamant_strain_xx",
    "halfspace_scene",
    "halfspace_traffic",
    "odemark_depth",
    "random_parameters",
    "vehicle_signals",
]


# --------------------------------------------------------------------------------------------------
# the simulator
# --------------------------------------------------------------------------------------------------
def random_parameters(site: str, seed: int) -> dict[str, Any]:
    """Every scene parameter of :func:`halfspace_traffic`, drawn at random for ``site``
    ("highway"/"urban")."""
    if site not in ("highway", "urban"):
        raise InvalidInputError(f"site must be 'highway' or 'urban', got {site!r}")
    rng = np.random.default_rng([seed, 7919])
    common = {
        "depth_m": float(rng.uniform(0.6, 1.5)),
        "poisson": float(rng.uniform(0.25, 0.4)),
        # the ground below the pavement (subgrade): see the module docstring for the sources of every range
        "young_pa": float(np.exp(rng.uniform(np.log(30e6), np.log(250e6)))),
        "rayleigh_speed_ms": float(rng.uniform(140.0, 320.0)),
        "quality_factor": float(rng.uniform(12.0, 40.0)),
        "soil_shear_modulus_pa": float(np.exp(rng.uniform(np.log(4e7), np.log(1.5e8)))),
        "coupling_range": (0.3, 1.0),
        "coupling_corr_m": float(rng.uniform(4.0, 30.0)),
        "white_noise": float(np.exp(rng.uniform(np.log(2e-7), np.log(1.2e-6)))),
        "coloured_noise": float(np.exp(rng.uniform(np.log(1e-8), np.log(5e-8)))),
        "coloured_exponent": float(rng.uniform(0.7, 1.6)),
        "noise_corr_m": float(rng.uniform(5.0, 40.0)),
        "burst_rate_per_min": float(rng.uniform(0.0, 3.0)),
        "burst_amplitude": float(np.exp(rng.uniform(np.log(5e-7), np.log(5e-6)))),
        "dead_channels": int(rng.integers(0, 4)),
        "saturated_channels": int(rng.integers(0, 3)),
        "nan_channels": int(rng.integers(0, 2)),
        "speed_drift": float(rng.uniform(0.0, 0.2)),
        "platoon_fraction": float(rng.uniform(0.2, 0.5)),
        "seed": int(seed),
    }
    if site == "highway":
        common.update(
            fs_hz=1000.0,
            dx_m=1.0,
            gauge_length_m=float(rng.choice([2.0, 4.0, 8.0])),
            pavement=_pavement(seed, asphalt_m=(0.15, 0.30), base_m=(0.2, 0.45)),
            n_channels=int(rng.integers(250, 401)),
            duration_s=90.0,
            lanes=((1, 1.75), (1, 5.25), (-1, -1.75), (-1, -5.25)),
            fibre_y_m=float(rng.uniform(-3.0, 3.0)),
            speed_kmh=(float(rng.uniform(65, 80)), float(rng.uniform(105, 125))),
            rate_per_min=float(rng.uniform(8.0, 18.0)),
            mix={"car": 0.62, "van": 0.1, "bus": 0.04, "truck": 0.09, "tractor_trailer": 0.15},
            signal=False,
            side_streets=False,
            tram=False,
        )
    else:
        common.update(
            fs_hz=625.0,
            dx_m=5.0,
            gauge_length_m=float(rng.choice([5.0, 10.0])),
            pavement=_pavement(seed, asphalt_m=(0.06, 0.18), base_m=(0.15, 0.35)),
            n_channels=int(rng.integers(40, 81)),
            duration_s=180.0,
            lanes=((1, 1.75), (-1, -1.75)),
            fibre_y_m=float(rng.uniform(-4.5, 4.5)),
            speed_kmh=(float(rng.uniform(20, 30)), float(rng.uniform(45, 60))),
            rate_per_min=float(rng.uniform(5.0, 10.0)),
            mix={
                "car": 0.64,
                "van": 0.12,
                "bus": 0.07,
                "articulated_bus": 0.04,
                "truck": 0.1,
                "tractor_trailer": 0.03,
            },
            signal=bool(rng.random() < 0.5),
            side_streets=bool(rng.random() < 0.6),
            tram=bool(rng.random() < 0.5),
        )
    return common


def _pavement(seed: int, *, asphalt_m, base_m):
    """Asphalt over an unbound granular base, (thickness m, modulus Pa) from the top (ranges: module
    docstring).

    Drawn from a generator of its own so that adding the pavement left every other scene draw as it was."""
    r = np.random.default_rng([seed, 7919, 2])
    return (
        (float(r.uniform(*asphalt_m)), float(np.exp(r.uniform(np.log(1e9), np.log(10e9))))),
        (float(r.uniform(*base_m)), float(np.exp(r.uniform(np.log(150e6), np.log(500e6))))),
    )


def halfspace_scene(site: str, seed: int, **overrides: Any) -> tuple[xr.DataArray, pd.DataFrame]:
    """A half-space scene with every parameter drawn at random from ``seed``; returns ``(data, truth)``.

    ``site`` is "highway" (1 m channels, 1000 Hz, 65-125 km/h, four lanes) or "urban" (5 m channels, 625 Hz,
    20-60 km/h, two lanes, maybe a tram line, a signal and side streets). Keyword arguments override draws.
    """
    return halfspace_traffic(**_scene_params(site, seed, overrides))


def vehicle_signals(site: str, seed: int, **overrides: Any) -> Iterator[tuple[int | None, np.ndarray]]:
    """Each vehicle of the scene :func:`halfspace_scene` makes (same ``site``, ``seed`` and ``overrides``)
    alone and noise-free: per vehicle rendered, in the scene's order, ``(row, strain_rate)``: its row in the
    scene's truth table (None for a vehicle the record holds only partly) and its (time, channel) strain rate
    in the record's units, with the scene's coupling and its own dynamic forces. The signals add up to the
    scene without the interrogator's noise and bad channels; one of them on the scene's noise is what a
    detector that removed every other vehicle perfectly would see
    (:func:`terralab.das.oracle.isolated_statistics`)."""
    import pandas as pd

    params = _scene_params(site, seed, overrides)
    shape = [params.pop(k) for k in ("duration_s", "fs_hz", "dx_m", "n_channels")]
    vehicles, seed = params.pop("vehicles", None), params.pop("seed")
    options = {k: v for k, v in params.items() if k not in ("start_time", "scene_name", "progress")}
    opts, rng, render, rows, geometry = _drive(*shape, vehicles, seed, options)
    n_t = round(float(shape[0] * shape[1]))
    setup, coupling, r_gen = _render_setup(rng, opts, geometry, fs_hz=shape[1], n_t=n_t, dx_m=shape[2])
    by_time = pd.Series([r["time_s"] for r in rows], dtype=float).sort_values().index  # the truth's order
    whole = [i for i in by_time if rows[i]["complete"]]
    row_of = {i: k for k, i in enumerate(whole)}
    for i, v in enumerate(render):
        gen = np.zeros((len(setup.t_gen), len(setup.x)), dtype=np.float32)
        render_vehicle(gen, v, setup, rng)
        gen *= coupling[None, :].astype(np.float32)
        yield row_of.get(i), upsample(gen, r_gen, n_t)


def _scene_params(site: str, seed: int, overrides: dict[str, Any]) -> dict[str, Any]:
    """:func:`halfspace_traffic`'s arguments for :func:`halfspace_scene`."""
    params = random_parameters(site, seed)
    unknown = set(overrides) - set(params) - {"start_time", "progress", "vehicles"}
    if unknown:
        raise InvalidInputError(f"unknown half-space parameter(s) {sorted(unknown)}; valid: {sorted(params)}")
    params.update(overrides)
    params["scene_name"] = f"halfspace_{site}"
    return params


def halfspace_traffic(
    *,
    duration_s: float,
    fs_hz: float,
    dx_m: float,
    n_channels: int,
    vehicles: pd.DataFrame | None = None,
    start_time: Any = "2024-06-01T07:30:00",
    scene_name: str = "halfspace",
    seed: int = 0,
    progress: bool = False,
    **options: Any,
) -> tuple[xr.DataArray, pd.DataFrame]:
    """Make a half-space DAS traffic record (strain rate, 1/s) and its truth table (see the module docstring).

    Parameters are physical: ``depth_m`` and ``fibre_y_m`` place the fibre (below the surface; across the
    road, lanes at ``lanes = ((direction, y_m), ...)``); ``young_pa``/``poisson`` the ground below the
    pavement (``pavement``: layers ``(thickness_m, young_pa)`` from the top, empty for bare ground; the strain
    at the fibre is Boussinesq's at Odemark's equivalent depth, :func:`odemark_depth`); ``rayleigh_speed_ms``,
    ``quality_factor`` and ``soil_shear_modulus_pa`` the ground that carries vibration; ``mix`` the share of
    each :data:`ZOO` member (``tram=True`` adds a tram line in the middle). ``vehicles`` (optional DataFrame
    with ``time_s`` (arrival at mid-section at the desired speed), ``speed_kmh``, ``direction``, ``kind``)
    replaces the random schedule. ``seed`` fixes every random draw.

    The record's shape (``duration_s``, ``fs_hz``, ``dx_m``, ``n_channels``), ``vehicles``, ``start_time``,
    ``scene_name``, ``seed`` and ``progress`` are named parameters; every other one is a keyword option, a
    field of :class:`~terralab.das.scene_options.HalfspaceOptions` (which holds the defaults; the fields
    without one must be given, :func:`random_parameters` draws them all).

    Raises
    ------
    InvalidInputError
        An option that is no field of :class:`~terralab.das.scene_options.HalfspaceOptions` (the message lists
        them) or a required one missing, fewer than two channels, non-positive ``fs_hz``, ``dx_m`` or
        ``duration_s``, or a ``vehicles`` table without the columns it needs.
    """
    import pandas as pd

    opts, rng, render, rows, geometry = _drive(duration_s, fs_hz, dx_m, n_channels, vehicles, seed, options)
    n_t = round(float(duration_s * fs_hz))
    x, length = geometry["x"], float(geometry["x"][-1])
    data, coupling = _render(rng, render, opts, geometry, fs_hz=fs_hz, n_t=n_t, dx_m=dx_m, progress=progress)
    dead, sat, nan = add_interrogator_noise(data, rng, opts, fs_hz=fs_hz, dx_m=dx_m, duration_s=duration_s)

    t0 = np.datetime64(pd.Timestamp(start_time).to_datetime64(), "ns")
    da = strain_rate_record(
        data,
        t0,
        x,
        fs_hz=fs_hz,
        dx_m=dx_m,
        gauge_length_m=opts.gauge_length_m,
        scene=scene_name,
        simulator="halfspace",
        seed=int(seed),
        dead_channels_m=x[dead].tolist(),
        saturated_channels_m=x[sat].tolist(),
        nan_channels_m=x[nan].tolist(),
        coupling=coupling.astype(float).tolist(),
        gaps="[]",
        fibre_depth_m=float(opts.depth_m),
        fibre_offset_m=float(opts.fibre_y_m),
        equivalent_depth_m=float(geometry["depth_eq"]),
        fibre_medium_pa=float(geometry["medium_pa"]),
    )
    return da, _complete_truth(rows, t0, length)


def _drive(duration_s, fs_hz, dx_m, n_channels, vehicles, seed, options):
    """Options checked, the random generator after driving the fleet, the vehicles to render (those whose
    crossing lies inside the record) with their truth rows, and the geometry :func:`_render` needs."""
    opts = scene_options(HalfspaceOptions, options, "halfspace_traffic")
    if n_channels < 2 or fs_hz <= 0 or dx_m <= 0 or duration_s <= 0:
        raise InvalidInputError("need n_channels >= 2 and positive fs_hz, dx_m, duration_s")
    rng = np.random.default_rng(seed)
    x = dx_m * np.arange(n_channels, dtype=float)
    length = float(x[-1])
    depth_eq, medium_pa = odemark_depth(opts.depth_m, opts.pavement, opts.young_pa)
    shear = medium_pa / (2 * (1 + opts.poisson))
    reach = 25.0 + 3 * depth_eq  # quasi-static strain beyond this is < 1e-3 of its peak

    fleet, t_grid = _traffic(rng, vehicles, opts, duration_s=duration_s, length=length, reach=reach)
    # truth: vehicles whose crossing lies inside the record
    rows, render = [], []
    for v in fleet:
        row = _truth_row(v, t_grid, length, duration_s)
        if row is not None:
            render.append(v)
            rows.append(row)
    geometry = {
        "t_grid": t_grid,
        "x": x,
        "depth_eq": depth_eq,
        "shear": shear,
        "reach": reach,
        "medium_pa": medium_pa,
    }
    return opts, rng, render, rows, geometry


def _traffic(
    rng: np.random.Generator,
    vehicles: pd.DataFrame | None,
    opts: HalfspaceOptions,
    *,
    duration_s: float,
    length: float,
    reach: float,
) -> tuple[list[Vehicle], np.ndarray]:
    """The fleet (listed or random, trams added) driven along its lanes by the car-following rule, and the
    time grid (s) of the trajectories."""
    x_mid = 0.5 * length
    lanes = [(int(d), float(y)) for d, y in opts.lanes]
    t_grid = np.arange(-40.0, duration_s + 40.0, 0.1)
    s_start, s_end = -reach - 30.0, length + reach + 30.0  # travel coordinate of the front axle
    v_lo, v_hi = (s * KMH for s in opts.speed_kmh)
    signals = traffic_signals(rng, length) if opts.signal else {}
    if vehicles is not None:
        fleet = listed_fleet(rng, vehicles, lanes, x_mid - s_start)
    else:
        fleet = random_fleet(
            rng,
            lanes,
            opts.mix,
            duration_s=duration_s,
            rate_per_min=opts.rate_per_min,
            platoon_fraction=opts.platoon_fraction,
            v_range=(v_lo, v_hi),
            speed_drift=opts.speed_drift,
            side_streets=(opts.side_streets, s_start, length),
        )
        if opts.tram:
            fleet += tram_fleet(rng, duration_s, v_lo, v_hi)
    # one lane per (direction, y); trams run on their own track
    for d, lane_y in lanes + [(1, 0.75), (-1, -0.75)]:
        members = sorted(
            [v for v in fleet if v.direction == d and v.lane_y == lane_y], key=lambda q: q.t_arrive
        )
        if members:
            simulate_lane(
                members,
                t_grid=t_grid,
                s_start=s_start,
                s_end=s_end,
                signal=signals.get(d) if not members[0].rail else None,
                section=(0.0, length),
            )
    return fleet, t_grid


def _render(
    rng: np.random.Generator,
    render: list[Vehicle],
    opts: HalfspaceOptions,
    geometry: dict[str, Any],
    *,
    fs_hz: float,
    n_t: int,
    dx_m: float,
    progress: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """The vehicles' strain rate (quasi-static and Rayleigh waves) through the fibre's coupling, float32 at
    ``fs_hz``, and the coupling per channel. ``geometry`` holds ``t_grid``, ``x``, ``depth_eq``, ``shear`` and
    ``reach``."""
    setup, coupling, r_gen = _render_setup(rng, opts, geometry, fs_hz=fs_hz, n_t=n_t, dx_m=dx_m)
    signal_gen = np.zeros((len(setup.t_gen), len(setup.x)), dtype=np.float32)
    for v in progress_bar(render, desc="half-space vehicles", enabled=progress):
        render_vehicle(signal_gen, v, setup, rng)
    signal_gen *= coupling[None, :].astype(np.float32)
    return upsample(signal_gen, r_gen, n_t), coupling


def _render_setup(
    rng, opts: HalfspaceOptions, geometry: dict[str, Any], *, fs_hz: float, n_t: int, dx_m: float
):
    """(render setup, coupling per channel, generation rate divisor) of :func:`_render`."""
    x = geometry["x"]
    r_gen = max(1, int(fs_hz // 250))
    fs_gen = fs_hz / r_gen
    n_gen = int(np.ceil(n_t / r_gen)) + 2
    t_gen = np.arange(n_gen) / fs_gen
    coupling = coupling_field(rng, len(x), dx_m, opts.coupling_corr_m, opts.coupling_range)
    setup = RenderSetup(
        t_grid=geometry["t_grid"],
        t_gen=t_gen,
        x=x,
        fibre_y=opts.fibre_y_m,
        depth=opts.depth_m,
        depth_eq=geometry["depth_eq"],
        gauge=opts.gauge_length_m,
        shear=geometry["shear"],
        poisson=opts.poisson,
        reach=geometry["reach"],
        vib_reach=90.0,
        c_r=opts.rayleigh_speed_ms,
        q=opts.quality_factor,
        g_soil=opts.soil_shear_modulus_pa,
        fs_gen=fs_gen,
        length=float(x[-1]),
    )
    return setup, coupling, r_gen


def _complete_truth(rows: list[dict], t0: np.datetime64, length: float) -> pd.DataFrame:
    """The truth table of the vehicles recorded whole; the partly recorded ones and every vehicle's true track
    go to ``attrs``."""
    truth = _truth(rows, t0)
    keep = truth["complete"].to_numpy(dtype=bool) if len(truth) else np.zeros(0, dtype=bool)
    tracks = list(truth.pop("track_xt")) if "track_xt" in truth.columns else []
    partial = truth[~keep].reset_index(drop=True)
    truth = truth[keep].reset_index(drop=True)
    truth["vehicle_id"] = np.arange(len(truth))
    #: per truth row, the true track ``(t_s, x_m)`` of the load centre (for oracle scoring; not a column)
    truth.attrs["tracks"] = [tr for tr, k in zip(tracks, keep) if k]
    truth.attrs["section_m"] = (0.0, length)
    truth.attrs["outside_record"] = partial  # vehicles only partly recorded: not counted either way
    return truth


def _truth_row(v: Vehicle, t_grid, length: float, duration_s: float) -> dict | None:
    """The truth row of a simulated vehicle that crosses mid-section (None otherwise); ``complete`` is False
    for a vehicle partly outside the record (its signal is there, it is flagged in the truth, not counted)."""
    x_mid = 0.5 * length
    s = v.s_traj
    ok = np.isfinite(s)
    if ok.sum() < 3:
        return None
    centroid = float(np.sum(v.axles_m * v.axle_kn) / np.sum(v.axle_kn))
    sc = s - centroid  # load centre, travel coordinate
    tt, sc_ok = t_grid[ok], sc[ok]
    if sc_ok.max() < x_mid or sc_ok.min() > x_mid:
        return None
    s_cov0 = max(0.0, sc_ok.min()) if v.s_enter is not None else 0.0
    s_cov1 = min(length, sc_ok.max()) if v.s_leave is not None else length
    if v.s_leave is not None:
        s_cov1 = min(s_cov1, v.s_leave)
    i_mid = int(np.argmax(sc_ok >= x_mid))
    t_mid = (
        float(np.interp(x_mid, sc_ok[max(i_mid - 1, 0) : i_mid + 1], tt[max(i_mid - 1, 0) : i_mid + 1]))
        if i_mid > 0
        else float(tt[0])
    )
    j0, j1 = max(i_mid - 5, 0), min(i_mid + 5, len(tt) - 1)
    v_mid = float((sc_ok[j1] - sc_ok[j0]) / (tt[j1] - tt[j0]))
    t_in = float(np.interp(s_cov0, sc_ok, tt)) if v.s_enter is None else float(tt[0])
    t_out = float(np.interp(s_cov1, sc_ok, tt))
    v_in = np.interp(s_cov0 + 5.0, sc_ok, np.gradient(sc_ok, tt))
    v_out = np.interp(s_cov1 - 5.0, sc_ok, np.gradient(sc_ok, tt))
    # the load centre's path along the fibre (s after the record start, m), every 0.5 s: the true track
    step = max(1, round(float(0.5 / (t_grid[1] - t_grid[0]))))
    x_path = sc_ok if v.direction > 0 else length - sc_ok
    return {
        "track_xt": (tt[::step].astype(np.float32), x_path[::step].astype(np.float32)),
        "time_s": t_mid,
        "speed_kmh": v_mid / KMH,
        "direction": v.direction,
        "vehicle_class": v.label,
        "kind": v.kind,
        "t_enter_s": t_in,
        "t_exit_s": t_out,
        "speed_change": float((v_out - v_in) / max(v_mid, 0.1)),
        "n_axles": len(v.axles_m),
        "length_m": v.length_m,
        "gross_load_kn": float(np.sum(v.axle_kn)),
        "vib_freq_hz": float(v.dyn_freqs[1]),
        "lane_coupling": 1.0,
        "platoon_id": v.platoon_id,
        "overtaking": False,
        "lane_y_m": v.lane_y,
        "coverage": (s_cov1 - s_cov0) / length,
        "stopped": v.stopped,
        "turning": v.s_enter is not None or v.s_leave is not None,
        "complete": bool(t_in >= 2.0 and t_out <= duration_s - 2.0),
    }


def _truth(rows, t0):
    import pandas as pd

    cols = HALFSPACE_TRUTH_COLUMNS
    if not rows:
        df = pd.DataFrame(columns=cols)
        for c in ("time", "t_enter", "t_exit"):
            df[c] = pd.Series(dtype="datetime64[ns]")
        return df
    df = pd.DataFrame(rows).sort_values("time_s").reset_index(drop=True)

    def ts(s):
        return t0 + np.round(np.asarray(s, dtype=float) * 1e9).astype("timedelta64[ns]")

    df["time"] = ts(df["time_s"])
    df["t_enter"] = ts(df["t_enter_s"])
    df["t_exit"] = ts(df["t_exit_s"])
    df["vehicle_id"] = np.arange(len(df))
    return df[cols + (["track_xt"] if "track_xt" in df.columns else [])]
