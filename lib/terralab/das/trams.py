"""Long vehicles after classification: one tram from the tracks of its bogies, one truck from a long heavy
vehicle's two lobes.

A tram's bogies stand 25-45 m apart, far beyond a road vehicle's axle groups, and on the ground each gives a
strain signature of its own: the search finds one track per bogie, all at the tram's speed, and none of them
passes where the tram's load centre does (on the half-space street development scenes 13 of 21 strong trams
were missed so, each leaving two or three tracks 1.6-3.5 s either side of it). Where trams run
(``DetectParams.trams``) and vehicles are classified, :func:`merge_tram_groups` joins consecutive vehicles of
one direction and speed (within :data:`TRAM_SPEED_RATIO`) that span at most ``tram_group_m`` of travel, when
the classifier calls each of them heavy (truck or tram) and at least one of them a tram, and no other vehicle
of their direction passes between them: one tram at the midpoint of the first and the last (the load centre
of a tram with a bogie at each end). A track between them more than :data:`ABSORB_SPEED` off their speed and
weaker than both is the tram's own (a line fitted through its long signature at a wrong speed) and joins it.
A road vehicle's axle groups are one track already (:func:`terralab.das.tracks.merge_parallel`); two trucks
following each other are not merged, since neither is called a tram (nor when they are equally strong: the
members of a platoon share one speed, so equal speed and strength are no tram signature).

:func:`absorb_tram_halos` then drops the tracks a tram leaves ahead of and behind itself: a bogie's lobe,
its ground vibration (a tram's signature reaches 20-60 m beyond it), found as a track at the tram's
speed that the classifier calls a car or a truck. On the half-space street development scenes 12 false
detections (4 duplicates, 8 ghosts) sat at a detected tram's speed (within 1 %) 17-62 m from it, against one
true vehicle (a car 39 m behind a tram). A vehicle of the tram's direction passing between them, another
speed (:data:`TRAM_SPEED_RATIO`) or more than ``tram_group_m`` of travel keeps a track.
The rule trusts the classifier's "tram"; in a slow queue every vehicle moves at one speed, and there a
truck called a tram can take a real car behind it (bump test scene 503: 25 m behind, at 13 km/h).

:func:`merge_heavy_pairs` does the same for a long road vehicle (a 16-20 m tractor-trailer): the same-signed
strain lobes ahead of and behind it lie 27-43 m apart, beyond :func:`terralab.das.tracks.merge_parallel`'s
25 m pair rule, and are found as two tracks of one speed. Two consecutive vehicles of one direction, both
called a truck with confidence (:data:`HEAVY_P_TRUCK`), at one speed (:data:`HEAVY_SPEED_RATIO`), of
comparable strength and ``pair_merge_m`` to ``heavy_pair_m`` apart are one truck at their midpoint.

Examples
--------
Two tracks of one tram 3.2 s apart at 36 km/h (32 m), a car after them:

>>> import pandas as pd
>>> from terralab.das import DetectParams
>>> from terralab.das.trams import merge_tram_groups
>>> v = pd.DataFrame({"t_mid": [10.0, 13.2, 20.0], "t_in": [5.0, 8.2, 15.0], "t_out": [15.0, 18.2, 25.0],
...                   "speed_kmh": [36.0, 36.4, 36.0], "direction": [1, 1, 1],
...                   "vehicle_class": ["tram", "truck", "car"], "snr": [20.0, 25.0, 5.0],
...                   "flags": ["near", "near", ""]})
>>> out = merge_tram_groups(v, DetectParams(trams=True))
>>> out[["t_mid", "vehicle_class", "flags"]].values.tolist()
[[11.6, 'tram', 'merged'], [20.0, 'car', '']]
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .params import KMH, set_flag
from .tracks import PAIR_STRENGTH, near_others

if TYPE_CHECKING:
    import pandas as pd

    from .params import DetectParams

__all__ = [
    "ABSORB_SPEED",
    "HEAVY_P_TRUCK",
    "HEAVY_SPEED_RATIO",
    "TRAM_SPEED_RATIO",
    "absorb_tram_halos",
    "merge_heavy_pairs",
    "merge_tram_groups",
]

#: Largest relative speed difference of two tracks of one tram (the bogies of a rigid vehicle pass at one
#: speed; the detector's speeds of one vehicle differ by 1-5 %).
TRAM_SPEED_RATIO = 0.05
#: A track passing between two tracks of a tram at a speed more than this fraction off theirs, and weaker
#: than both, is the tram's own (its middle bogie or its vibration fitted at a wrong speed) and joins it.
ABSORB_SPEED = 0.1
#: Smallest ``p_truck`` of both tracks of a heavy vehicle's lobe pair (:func:`merge_heavy_pairs`).
HEAVY_P_TRUCK = 0.75
#: Largest relative speed difference of the two lobes of one heavy vehicle.
HEAVY_SPEED_RATIO = 0.03

_LARGEST = ("x_hi", "coverage", "score", "snr", "p_truck")


def merge_tram_groups(vehicles: pd.DataFrame, p: DetectParams) -> pd.DataFrame:
    """The detector's internal vehicle table (sorted by ``t_mid``, classified) with each tram's bogie tracks
    merged into one row (see the module); unchanged where ``p.trams`` or ``p.classify`` is off or
    ``p.tram_group_m`` is 0. The merged row is the tram at the midpoint of its first and last track, at their
    mean speed, with the features of its strongest track and the flag "merged"; the "near" flags of every row
    are re-read afterwards."""
    cols = _tram_columns(vehicles, p)
    if cols is None:
        return vehicles
    v, t, speed, direction, cls = cols
    snr = v["snr"].to_numpy(dtype=float)
    groups, used = [], np.zeros(len(v), dtype=bool)
    for i in range(len(v)):
        if used[i] or cls[i] == "car":
            continue
        group, between = _group(i, t, speed, direction, cls, snr, used, p.tram_group_m)
        if len(group) > 1 and any(cls[k] == "tram" for k in group):
            used[group + between] = True
            groups.append((group, between))
    if not groups:
        return vehicles
    return _merge_rows(v, [(group, between, "tram") for group, between in groups])


def absorb_tram_halos(vehicles: pd.DataFrame, p: DetectParams) -> pd.DataFrame:
    """The table of :func:`merge_tram_groups` with the tracks a tram leaves around itself dropped: a vehicle
    of the tram's direction and speed (:data:`TRAM_SPEED_RATIO`), not a tram, within ``p.tram_group_m`` of
    travel ahead of or behind it, with no other vehicle of that direction between them, is the tram's own (a
    bogie's lobe or its ground vibration, found as a track of its own). The tram keeps its time and flags (no
    "merged": nothing placed it, so it is re-centred as any lone vehicle is); the "near" flags are re-read.
    Same conditions to run as :func:`merge_tram_groups`."""
    cols = _tram_columns(vehicles, p)
    if cols is None:
        return vehicles
    v, t, speed, direction, cls = cols
    drop: set[int] = set()
    for i in np.flatnonzero(cls == "tram"):
        order = np.flatnonzero(direction == direction[i])
        pos = int(np.searchsorted(order, i))
        for side in (order[pos + 1 :], order[:pos][::-1]):
            for j in side.tolist():
                far = abs(t[j] - t[i]) * speed[i] * KMH > p.tram_group_m
                if far or cls[j] == "tram" or abs(np.log(speed[j] / speed[i])) > TRAM_SPEED_RATIO:
                    break  # another vehicle of the direction: nothing beyond it is the tram's
                drop.add(j)
    if not drop:
        return vehicles
    out = v.drop(index=sorted(drop)).reset_index(drop=True)
    out["flags"] = set_flag(out["flags"], "near", near_others(out["t_mid"].to_numpy(dtype=float)))
    return out


def _tram_columns(vehicles: pd.DataFrame, p: DetectParams):
    """(table with a fresh index, t_mid, speed_kmh, direction, vehicle_class) where the tram rules run (trams,
    classes and ``p.tram_group_m`` on, two vehicles or more); None elsewhere."""
    if not (p.trams and p.classify and p.tram_group_m > 0) or len(vehicles) < 2:
        return None
    v = vehicles.reset_index(drop=True)
    return (
        v,
        v["t_mid"].to_numpy(dtype=float),
        v["speed_kmh"].to_numpy(dtype=float),
        v["direction"].to_numpy(),
        v["vehicle_class"].to_numpy(),
    )


def merge_heavy_pairs(vehicles: pd.DataFrame, p: DetectParams) -> pd.DataFrame:
    """The detector's internal vehicle table (sorted by ``t_mid``, classified) with each pair of tracks that
    are one long heavy vehicle's lobes merged into one truck at their midpoint (see ``p.heavy_pair_m``);
    unchanged where ``p.classify`` is off or ``p.heavy_pair_m`` is 0.

    Two consecutive vehicles of one direction, both called a truck with ``p_truck`` of at least
    :data:`HEAVY_P_TRUCK`, at one speed (:data:`HEAVY_SPEED_RATIO`), the weaker at least
    :data:`~terralab.das.tracks.PAIR_STRENGTH` times as strong as the other, between ``p.pair_merge_m`` and
    ``p.heavy_pair_m`` of travel apart."""
    if not (p.classify and p.heavy_pair_m > 0) or len(vehicles) < 2 or "p_truck" not in vehicles:
        return vehicles
    v = vehicles.reset_index(drop=True)
    t = v["t_mid"].to_numpy(dtype=float)
    speed = v["speed_kmh"].to_numpy(dtype=float)
    direction = v["direction"].to_numpy()
    heavy = (v["vehicle_class"].to_numpy() == "truck") & (v["p_truck"].to_numpy(dtype=float) >= HEAVY_P_TRUCK)
    snr = v["snr"].to_numpy(dtype=float)
    groups = []
    for d in np.unique(direction):
        last = -1  # the later member of the previous pair: a track joins one pair at most
        order = np.flatnonzero(direction == d)
        for i, j in zip(order[:-1].tolist(), order[1:].tolist()):  # consecutive: nothing passes between
            if (
                i != last
                and heavy[i]
                and heavy[j]
                and p.pair_merge_m <= (t[j] - t[i]) * speed[i] * KMH <= p.heavy_pair_m
                and abs(np.log(speed[j] / speed[i])) <= HEAVY_SPEED_RATIO
                and min(snr[i], snr[j]) >= PAIR_STRENGTH * max(snr[i], snr[j])
            ):
                groups.append(([i, j], [], "truck"))
                last = j
    return _merge_rows(v, groups) if groups else vehicles


def _merge_rows(v: pd.DataFrame, groups: list[tuple[list[int], list[int], str]]) -> pd.DataFrame:
    """``v`` with each (members, absorbed, class) group one row: the vehicle at the midpoint of its first and
    last member, at their mean speed, with the features of its strongest member, the largest extent and
    scores, the class given and the flag "merged"; absorbed rows are dropped; "near" flags re-read."""
    speed = v["speed_kmh"].to_numpy(dtype=float)
    drop = []
    for group, between, cls in groups:
        first, last = group[0], group[-1]
        strongest = max(group, key=lambda k: v.at[k, "snr"])
        row = v.loc[strongest].copy()
        for c in ("t_mid", "t_in", "t_out"):
            if c in v:
                row[c] = 0.5 * (v.at[first, c] + v.at[last, c])
        row["speed_kmh"] = float(np.mean(speed[group]))
        if "x_lo" in v:
            row["x_lo"] = v.loc[group, "x_lo"].min()
        for c in _LARGEST:
            if c in v:
                row[c] = v.loc[group, c].max()
        row["vehicle_class"] = cls
        row["flags"] = set_flag([row.get("flags", "")], "merged", [True])[0]
        v.loc[first] = row
        drop.extend(group[1:] + between)
    out = v.drop(index=drop).sort_values("t_mid").reset_index(drop=True)
    if "flags" in out:
        # "near" re-read: merged rows moved, absorbed ones are gone
        out["flags"] = set_flag(out["flags"], "near", near_others(out["t_mid"].to_numpy(dtype=float)))
    return out


def _group(i, t, speed, direction, cls, snr, used, group_m) -> tuple[list[int], list[int]]:
    """The tracks of one tram starting with track ``i``: the following tracks of its direction and speed
    (:data:`TRAM_SPEED_RATIO`) within ``group_m`` of travel, none called a car, and the tracks passing between
    them at another speed (more than :data:`ABSORB_SPEED` off) that are weaker than both its neighbours in the
    group (the tram's own middle bogie or vibration, fitted at a wrong speed). Any other vehicle of the
    direction ends the group."""
    group, between, pending = [i], [], []
    for j in range(i + 1, len(t)):
        if direction[j] != direction[i] or used[j]:
            continue
        if (t[j] - t[i]) * speed[i] * KMH > group_m:
            break
        off = abs(np.log(speed[j] / speed[i]))
        if off <= TRAM_SPEED_RATIO and cls[j] != "car":
            if any(snr[k] >= min(snr[group[-1]], snr[j]) for k in pending):
                break  # a vehicle as strong as the tram's tracks passes between them
            group.append(j)
            between += pending
            pending = []
        elif off > ABSORB_SPEED:
            pending.append(j)
        else:
            break  # another vehicle of this direction and speed passes in between
    return group, between
