"""The bump simulator's vehicles: one vehicle's draw, random and listed schedules, and the truth table.

Used by :func:`terralab.das.synthetic.traffic`; every draw comes from the caller's generator.

Examples
--------
A random schedule with the named highway scene's traffic, and its truth table:

>>> import numpy as np
>>> from terralab.das.bump_fleet import random_schedule, truth_table
>>> from terralab.das.synthetic import SCENES
>>> hw = SCENES["highway_bridge"]
>>> fleet = random_schedule(
...     np.random.default_rng(0), duration_s=120.0, length_m=400.0, rate_per_min=hw["rate_per_min"],
...     truck_fraction=hw["truck_fraction"], speed_kmh=hw["speed_kmh"], speed_change=0.15,
...     speed_change_fraction=0.4, platoon_fraction=0.3, overtaking_fraction=0.1,
...     far_lane_coupling=(0.55, 0.85))
>>> truth = truth_table(fleet, t0=np.datetime64("2024-05-01T08:00:00", "ns"), length_m=400.0)
>>> sorted(set(truth["direction"])), bool(truth["speed_kmh"].between(50, 130).all())
([-1, 1], True)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InvalidInputError
from .params import KMH
from .truth import TRUTH_COLUMNS

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Vehicle", "explicit_schedule", "random_schedule", "tau_at", "truth_table"]


@dataclass
class Vehicle:
    """One simulated vehicle: passage time and speed at mid-section, axles and loads, vibration, lane."""

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
) -> Vehicle:
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
    return Vehicle(
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


def _crossing_half_times(v: Vehicle, length_m: float) -> tuple[float, float]:
    """Seconds from entering to mid-section and from mid-section to leaving."""
    return tau_at(v, -length_m / 2), tau_at(v, length_m / 2)


def tau_at(v: Vehicle, s: float) -> float:
    """Signed time (s) relative to mid-section when the load centre is at travel coordinate s (m)."""
    a, v0 = v.accel, v.v_mid
    if abs(a) < 1e-9:
        return s / v0
    disc = v0 * v0 + 2 * a * s
    if disc <= 0:
        return np.sign(s) * 1e9
    return (-v0 + np.sqrt(disc)) / a


def random_schedule(
    rng: np.random.Generator,
    *,
    duration_s: float,
    length_m: float,
    rate_per_min: float,
    truck_fraction: float,
    speed_kmh: tuple[float, float],
    speed_change: float,
    speed_change_fraction: float,
    platoon_fraction: float,
    overtaking_fraction: float,
    far_lane_coupling: tuple[float, float],
) -> list[Vehicle]:
    """A random schedule of both directions: Poisson leaders, some followed by a platoon or overtaken by a
    faster car; only vehicles whose whole crossing lies in the record and that keep a gap to the one ahead."""
    vmin, vmax = (float(s) * KMH for s in speed_kmh)
    far = rng.uniform(*far_lane_coupling)
    fleet: list[Vehicle] = []
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
            leader = _make_vehicle(
                rng,
                vclass,
                t_mid=t,
                v=v,
                direction=direction,
                dv_frac=dv,
                length_m=length_m,
                lane_coupling=lane_c,
            )
            group = [leader]
            if rng.random() < platoon_fraction:
                platoon_counter += 1
                group += _platoon(rng, leader, platoon_counter, truck_fraction, dv_frac=dv, length_m=length_m)
            elif rng.random() < overtaking_fraction / max(1e-9, 1 - platoon_fraction):
                group.append(_overtaker(rng, leader, vmax, length_m=length_m))
            fleet.extend(group)
    return _inside_and_apart(fleet, length_m, duration_s, margin=4.0)


def _platoon(
    rng: np.random.Generator,
    leader: Vehicle,
    platoon_id: int,
    truck_fraction: float,
    *,
    dv_frac: float,
    length_m: float,
) -> list[Vehicle]:
    """One or two vehicles following ``leader`` at 2-3 s headways; ``leader`` joins platoon ``platoon_id``."""
    leader.platoon_id = platoon_id
    group = [leader]
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
            direction=leader.direction,
            dv_frac=dv_frac,
            length_m=length_m,
            lane_coupling=leader.lane_coupling,
        )
        f.platoon_id = platoon_id
        group.append(f)
    return group[1:]


def _overtaker(rng: np.random.Generator, slow: Vehicle, vmax: float, *, length_m: float) -> Vehicle:
    """A car 20-40 % faster than ``slow`` (which then keeps its speed) that passes it within the section."""
    slow.accel = 0.0
    fast_v = min(slow.v_mid * rng.uniform(1.2, 1.4), 1.3 * vmax)
    xc = rng.choice([-1, 1]) * rng.uniform(0.2, 0.35) * length_m  # crossing point, travel coords
    t_c = slow.t_mid_s + xc / slow.v_mid
    fast = _make_vehicle(
        rng,
        "car",
        t_mid=t_c - xc / fast_v,
        v=fast_v,
        direction=slow.direction,
        dv_frac=0.0,
        length_m=length_m,
        lane_coupling=slow.lane_coupling * rng.uniform(0.7, 0.9),
    )
    fast.overtaking = True
    return fast


def _inside_and_apart(
    fleet: list[Vehicle], length_m: float, duration_s: float, *, margin: float
) -> list[Vehicle]:
    """The vehicles whose whole crossing is inside the record (``margin`` s from its ends) and that do not sit
    on top of another of the same direction (overtaking pairs excepted), in time order."""
    keep: list[Vehicle] = []
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


def explicit_schedule(
    rng: np.random.Generator,
    vehicles: pd.DataFrame | Any,
    *,
    length_m: float,
    far_lane_coupling: tuple[float, float],
) -> list[Vehicle]:
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


def truth_table(fleet: Sequence[Vehicle], *, t0: np.datetime64, length_m: float) -> pd.DataFrame:
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
