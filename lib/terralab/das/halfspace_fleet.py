"""The half-space simulator's vehicles: the vehicle zoo, one vehicle's draw, and car-following in a lane.

Used by :func:`terralab.das.halfspace.halfspace_traffic`: the random, listed and tram fleets and the traffic
signals; every draw comes from the caller's generator.

Examples
--------
The vehicle zoo, and a tram of it: on rails, with bogies:

>>> import numpy as np
>>> from terralab.das.halfspace_fleet import ZOO, make_vehicle
>>> sorted(ZOO)
['articulated_bus', 'bus', 'car', 'tractor_trailer', 'tram', 'truck', 'van']
>>> tram = make_vehicle(np.random.default_rng(0), "tram", direction=1, lane_y=0.75, t=0.0, v=10.0, drift=0.0)
>>> tram.rail, tram.label, len(tram.axles_m) >= 4
(True, 'tram', True)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InvalidInputError
from .params import KMH

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "ZOO",
    "Vehicle",
    "listed_fleet",
    "make_vehicle",
    "random_fleet",
    "simulate_lane",
    "traffic_signals",
    "tram_fleet",
]


#: Vehicle zoo: axle positions (m behind the front axle), gross weight (kN), length (m), two-class label.
ZOO: dict[str, dict[str, Any]] = {
    "car": {"label": "car", "gross_kn": (11.0, 20.0), "length_m": (4.0, 4.9)},
    "van": {"label": "car", "gross_kn": (20.0, 35.0), "length_m": (5.0, 6.5)},
    "bus": {"label": "truck", "gross_kn": (110.0, 190.0), "length_m": (11.5, 12.5)},
    "articulated_bus": {"label": "truck", "gross_kn": (160.0, 270.0), "length_m": (17.5, 18.8)},
    "truck": {"label": "truck", "gross_kn": (60.0, 170.0), "length_m": (7.0, 10.0)},
    "tractor_trailer": {"label": "truck", "gross_kn": (150.0, 400.0), "length_m": (16.0, 20.0)},
    "tram": {"label": "tram", "gross_kn": (340.0, 560.0), "length_m": (30.0, 45.0)},
}


@dataclass
class Vehicle:
    """One simulated vehicle: kind, lane, desired speed, axles and loads, and its trajectory once
    simulated."""

    kind: str
    label: str
    direction: int
    lane_y: float
    t_arrive: float  # s, at the lane's start s_start (or the side street for entering vehicles)
    v_des: float  # m/s
    length_m: float
    axles_m: np.ndarray  # behind the front axle
    axle_kn: np.ndarray
    track_m: float
    dyn_ratio: float
    dyn_freqs: tuple
    drift: float  # relative change of desired speed across the section
    s_enter: float | None = None  # side street where it enters (travel coordinate), None: from upstream
    s_leave: float | None = None  # side street where it leaves
    side: int = 1
    platoon_id: int = -1
    s_traj: np.ndarray | None = None  # front-axle travel coordinate on the simulation grid (nan: absent)
    stopped: bool = False
    rail: bool = False


def make_vehicle(
    rng: np.random.Generator, kind: str, *, direction: int, lane_y: float, t: float, v: float, drift: float
) -> Vehicle:
    """A vehicle of ``kind`` (a :data:`ZOO` member) with its length, axles, loads and vibration drawn from
    ``rng``."""
    z = ZOO[kind]
    length = rng.uniform(*z["length_m"])
    gross = rng.uniform(*z["gross_kn"])
    if kind in ("car", "van"):
        wb = rng.uniform(2.45, 2.9) if kind == "car" else rng.uniform(3.0, 3.7)
        axles = np.array([0.0, wb])
        w = np.array([0.55, 0.45])
        freqs = (rng.uniform(1.0, 1.6), rng.uniform(10.0, 16.0))
    elif kind == "bus":
        axles = np.array([0.0, rng.uniform(5.8, 6.8)])
        w = np.array([0.35, 0.65])
        freqs = (rng.uniform(1.0, 1.8), rng.uniform(8.0, 12.0))
    elif kind == "articulated_bus":
        a1 = rng.uniform(5.6, 6.2)
        axles = np.array([0.0, a1, a1 + rng.uniform(6.0, 7.0)])
        w = np.array([0.25, 0.4, 0.35])
        freqs = (rng.uniform(1.0, 1.8), rng.uniform(8.0, 12.0))
    elif kind == "truck":
        axles = np.array([0.0, rng.uniform(3.8, 5.8)])
        w = np.array([0.35, 0.65])
        freqs = (rng.uniform(1.8, 3.2), rng.uniform(8.0, 13.0))
    elif kind == "tractor_trailer":
        d1 = rng.uniform(3.4, 4.0)
        t0 = d1 + 1.3 + rng.uniform(6.5, 8.5)
        axles = np.array([0.0, d1, d1 + 1.3, t0, t0 + 1.3, t0 + 2.6])[: 5 + int(rng.random() < 0.4)]
        w = np.r_[0.6, np.ones(len(axles) - 1)]
        length = max(length, axles[-1] + 1.5)
        freqs = (rng.uniform(1.8, 3.2), rng.uniform(8.0, 13.0))
    elif kind == "tram":
        n_bogie = int(rng.integers(3, 5))
        span = length - 5.0
        centres = np.linspace(2.5, 2.5 + span, n_bogie) - 2.5
        axles = np.sort(np.concatenate([centres - 0.9, centres + 0.9]))
        axles -= axles[0]
        w = np.ones(len(axles))
        freqs = (rng.uniform(8.0, 12.0), rng.uniform(25.0, 60.0))
    else:  # pragma: no cover
        raise InvalidInputError(f"unknown vehicle kind {kind!r}")
    loads = gross * w / w.sum()
    return Vehicle(
        kind=kind,
        label=z["label"],
        direction=direction,
        lane_y=lane_y,
        t_arrive=t,
        v_des=v,
        length_m=float(length),
        axles_m=axles,
        axle_kn=loads,
        track_m=1.435 if kind == "tram" else rng.uniform(1.5, 2.0),
        dyn_ratio=float(rng.uniform(0.03, 0.08) if kind != "tram" else rng.uniform(0.01, 0.025)),
        dyn_freqs=freqs,
        drift=drift,
        rail=kind == "tram",
    )


def simulate_lane(
    vehs: list[Vehicle],
    *,
    t_grid: np.ndarray,
    s_start: float,
    s_end: float,
    signal: tuple[float, Callable[[float], bool]] | None,
    a_max: float = 1.6,
    b_comf: float = 2.5,
    gap_s: float = 1.2,
    s0: float = 2.0,
    section: tuple[float, float] = (0.0, 1.0),
) -> None:
    """Car-following along one lane on ``t_grid``: desired speed, bounded acceleration, braking for a red
    signal, and a safe gap of ``s0 + gap_s * v`` behind the leader (headway >= gap_s). Fills ``s_traj``."""
    dt = float(t_grid[1] - t_grid[0])
    n, m = len(t_grid), len(vehs)
    for v in vehs:
        v.s_traj = np.full(n, np.nan)
    state = np.zeros(m, dtype=int)  # 0 not yet in, 1 driving, 2 gone
    pos = np.zeros(m)
    vel = np.zeros(m)
    sec0, sec1 = section
    for k, t in enumerate(t_grid):
        for i, v in enumerate(vehs):
            if state[i] == 0 and t >= v.t_arrive:
                s_in = v.s_enter if v.s_enter is not None else s_start
                # a vehicle enters only where the lane is clear (else it waits at the entry)
                others = (state == 1) & (pos >= s_in - 1.0) & (pos <= s_in + 40.0)
                ahead_ok = all(
                    pos[j] - vehs[j].length_m - s_in - s0 >= gap_s * v.v_des * 0.8
                    for j in np.flatnonzero(others)
                )
                if ahead_ok:
                    state[i], pos[i] = 1, s_in
                    vel[i] = v.v_des * (0.35 if v.s_enter is not None else 1.0)
        idx = np.flatnonzero(state == 1)
        idx = idx[np.argsort(-pos[idx])]
        leader = -1
        for i in idx:
            v, s, sp = vehs[i], pos[i], vel[i]
            frac = np.clip((s - sec0) / max(sec1 - sec0, 1.0), 0.0, 1.0)
            v_want = v.v_des * (1.0 + v.drift * frac)
            if v.s_leave is not None:  # slow down to turn off
                v_want = min(v_want, np.sqrt((0.35 * v.v_des) ** 2 + 2 * b_comf * max(v.s_leave - s, 0.0)))
            cand = [sp + a_max * dt, v_want]
            if leader >= 0:
                gap = pos[leader] - vehs[leader].length_m - s - s0
                cand.append(max(0.0, gap / gap_s))
            if signal is not None:
                s_sig, red = signal
                to_line = s_sig - s
                if to_line > 0 and red(t) and sp * sp / (2 * 4.0) < to_line:  # can stop (4 m/s^2 at most)
                    cand.append(np.sqrt(2 * b_comf * max(to_line - 1.0, 0.0)))
            new = max(0.0, min(cand))
            if new < 0.5 and sec0 < s < sec1:
                v.stopped = True
            vel[i] = new
            pos[i] = s + new * dt
            v.s_traj[k] = pos[i]
            if (v.s_leave is not None and pos[i] > v.s_leave + 15.0) or pos[i] > s_end:
                state[i] = 2
            else:
                leader = i


def traffic_signals(rng: np.random.Generator, length: float) -> dict:
    """One traffic signal per direction: (stop line, red-at-time predicate) sharing a cycle."""
    signals = {}
    cycle, red_s, phase = rng.uniform(40, 70), rng.uniform(15, 30), rng.uniform(0, 70)
    for d in (1, -1):
        s_sig = rng.uniform(0.6, 0.85) * length
        signals[d] = (s_sig, lambda t, c=cycle, r=red_s, ph=phase: ((t + ph) % c) < r)
    return signals


def listed_fleet(
    rng: np.random.Generator, vehicles: pd.DataFrame, lanes: Sequence[tuple[int, float]], run_in_m: float
) -> list[Vehicle]:
    """The vehicles of a ``vehicles`` table (``time_s`` at mid-section, ``speed_kmh``, ``direction``,
    ``kind``)."""
    import pandas as pd

    fleet = []
    df = pd.DataFrame(vehicles)
    need = {"time_s", "speed_kmh", "direction", "kind"}
    if not need.issubset(df.columns):
        raise InvalidInputError(f"vehicles needs columns {sorted(need)}, got {list(df.columns)}")
    for row in df.itertuples(index=False):
        if row.kind not in ZOO:
            raise InvalidInputError(f"kind must be one of {sorted(ZOO)}, got {row.kind!r}")
        d = int(row.direction)
        if row.kind != "tram" and d not in {dd for dd, _ in lanes}:
            raise InvalidInputError(
                f"vehicle direction {row.direction!r} has no lane; lanes drive in directions "
                f"{sorted({dd for dd, _ in lanes})}: give one of those"
            )
        lane_y = next(y for dd, y in lanes if dd == d) if row.kind != "tram" else 0.75 * d
        v = float(row.speed_kmh) * KMH
        t_arr = float(row.time_s) - run_in_m / v
        fleet.append(make_vehicle(rng, row.kind, direction=d, lane_y=lane_y, t=t_arr, v=v, drift=0.0))
    return fleet


def random_fleet(
    rng: np.random.Generator,
    lanes: Sequence[tuple[int, float]],
    mix: Mapping[str, float],
    *,
    duration_s: float,
    rate_per_min: float,
    platoon_fraction: float,
    v_range: tuple[float, float],
    speed_drift: float,
    side_streets: tuple[bool, float, float],
) -> list[Vehicle]:
    """Poisson arrivals per lane with platoons (and vehicles turning in or out of side streets).

    ``side_streets`` is (on, lane start s_start, section length).
    """
    on_side, s_start, length = side_streets
    v_lo, v_hi = v_range
    kinds = list(mix)
    p_kind = np.array([mix[k] for k in kinds], dtype=float)
    p_kind /= p_kind.sum()
    fleet: list[Vehicle] = []
    n_lanes_dir = {d: sum(1 for dd, _ in lanes if dd == d) for d in (1, -1)}
    pid = 0
    for d, lane_y in lanes:
        rate_s = rate_per_min / 60.0 / 2 / n_lanes_dir[d] / (1 + 1.5 * platoon_fraction)
        t = rng.exponential(1 / rate_s) - 40.0
        while t < duration_s + 10.0:
            kind = str(rng.choice(kinds, p=p_kind))
            v = rng.uniform(v_lo, v_hi) * (0.85 if ZOO[kind]["label"] == "truck" else 1.0)
            drift = rng.uniform(-speed_drift, speed_drift)
            group = [make_vehicle(rng, kind, direction=d, lane_y=lane_y, t=t, v=v, drift=drift)]
            if rng.random() < platoon_fraction:
                pid += 1
                group[0].platoon_id = pid
                for _ in range(int(rng.integers(1, 4))):
                    prev = group[-1]
                    hw = rng.uniform(1.2, 2.5) + prev.length_m / max(prev.v_des, 1.0)
                    f = make_vehicle(
                        rng,
                        str(rng.choice(kinds, p=p_kind)),
                        direction=d,
                        lane_y=lane_y,
                        t=prev.t_arrive + hw,
                        v=prev.v_des * rng.uniform(0.97, 1.03),
                        drift=drift,
                    )
                    f.platoon_id = pid
                    group.append(f)
            if on_side and rng.random() < 0.15:
                veh = group[0]
                if rng.random() < 0.5:
                    veh.s_enter = rng.uniform(0.1, 0.3) * length
                    veh.t_arrive = t + (veh.s_enter - s_start) / veh.v_des
                else:
                    veh.s_leave = rng.uniform(0.7, 0.9) * length
                veh.side = int(rng.choice([-1, 1]))
            fleet.extend(group)
            t = group[-1].t_arrive + rng.exponential(1 / rate_s)
    return fleet


def tram_fleet(rng: np.random.Generator, duration_s: float, v_lo: float, v_hi: float) -> list[Vehicle]:
    """Trams in both directions on the middle track at a regular headway (18-45 km/h)."""
    fleet = []
    headway = rng.uniform(60.0, 150.0)
    for d in (1, -1):
        t = rng.uniform(-30.0, headway - 30.0)
        while t < duration_s + 10.0:
            fleet.append(
                make_vehicle(
                    rng,
                    "tram",
                    direction=d,
                    lane_y=0.75 * d,
                    t=t,
                    v=rng.uniform(max(v_lo, 18 * KMH), min(v_hi, 45 * KMH)),
                    drift=0.0,
                )
            )
            t += headway * rng.uniform(0.8, 1.2)
    return fleet
