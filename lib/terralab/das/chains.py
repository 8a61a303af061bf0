"""Ghost chains: tracks whose strain has no consistent sign and that are no vehicle.

Step 9 of the detector (:mod:`terralab.das.detect`), after the merge rules of :mod:`terralab.das.tracks`: a
line the search stitched through other ridges (a platoon's vehicles, a strong vehicle's lobes, the span-sized
strain blocks of a bridge deck) has no consistent strain sign (:func:`~terralab.das.tracks.track_polarity`),
while a vehicle on the ground does. :func:`drop_incoherent` drops such tracks that bend across a platoon,
:func:`drop_crossing_chains` the faster ones that cut across a stronger vehicle of their direction or pivot on
a vehicle at mid-section. Neither ever drops a track with a sign, nor one with no neighbour: on the real
bridge record no track has a sign, the real vehicle included.

Examples
--------
A sign-less track at twice a vehicle's speed, crossing it where both pass mid-section, pivots on that
vehicle's response and is dropped; with a strain sign of its own it would be a vehicle:

>>> import numpy as np
>>> from terralab.das import DetectParams
>>> from terralab.das.chains import drop_crossing_chains
>>> x = np.linspace(-50.0, 50.0, 21)
>>> def track(speed_kmh, strength, polarity):
...     poly = np.poly1d([3.6 / speed_kmh, 7.0])
...     return {"t_mid": 7.0, "speed_kmh": speed_kmh, "strength": strength, "polarity": polarity,
...             "direction": 1, "pulse_m": 6.0, "poly": poly, "pts": (x, poly(x))}
>>> kept = drop_crossing_chains([track(48.0, 90.0, 0.0), track(102.0, 115.0, 0.0)], DetectParams())
>>> [tr["speed_kmh"] for tr in kept]
[48.0]
>>> len(drop_crossing_chains([track(48.0, 90.0, 0.0), track(102.0, 115.0, 0.8)], DetectParams()))
2
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .params import LOBE_POLARITY
from .peel import outranks
from .tracks import NEAR_S, claim_s

if TYPE_CHECKING:
    from .params import DetectParams

__all__ = ["CROSS_SPEED", "drop_crossing_chains", "drop_incoherent"]

#: Smallest speed excess (relative) of a track over the vehicle it crosses for :func:`drop_crossing_chains`
#: to call it a chain stitched from that vehicle's ridge.
CROSS_SPEED = 0.25


def drop_incoherent(tracks: list[dict], p: DetectParams) -> list[dict]:
    """The tracks without those that bend and have no sign, within a platoon: a track whose speed changes by
    more than ``p.incoherent_speed_change`` across the section, whose strain has no consistent sign
    (:func:`~terralab.das.tracks.track_polarity` below :data:`LOBE_POLARITY`) and which passes mid-section
    within :data:`~terralab.das.tracks.NEAR_S` of a track of its direction that has a consistent sign (a
    vehicle) is a ridge chain hopping between the vehicles of a platoon or of a queue at a signal, not a
    vehicle. A track with no such neighbour is always kept: on the real bridge record no track has a
    consistent sign (the deck is no half-space), and the real vehicle, which bends with the spans, would
    otherwise be dropped in favour of a straighter ghost."""
    if not p.incoherent_speed_change > 0:
        return list(tracks)
    return _drop_signless(
        tracks,
        lambda tr, k: (
            k["direction"] == tr["direction"]
            and abs(tr["speed_change"]) > p.incoherent_speed_change
            and abs(k["t_mid"] - tr["t_mid"]) <= NEAR_S
            and _has_sign(k)
        ),
    )


def drop_crossing_chains(tracks: list[dict], p: DetectParams) -> list[dict]:
    """The tracks without the ghost chains that cut across a stronger vehicle of their own direction or pivot
    on a vehicle at mid-section.

    A track whose strain has no consistent sign (:func:`~terralab.das.tracks.track_polarity` below
    :data:`LOBE_POLARITY`), that is more than :data:`CROSS_SPEED` faster than another track ``k`` and whose
    fitted t(x) crosses k's inside the channels both cover, is a line the search stitched through k's ridge
    (its lobes, its neighbours in a queue) and is dropped when

    - k has its direction and is at least ``p.crossing_ratio`` times stronger, wherever they cross; or
    - k is not much weaker (at least ``1 / p.crossing_ratio`` of its strength) and they pass mid-section
      within k's own ridge time (:func:`~terralab.das.tracks.claim_s`): a line pivoting on k's response,
      which supports lines of any slope through k's centre (the standing strain of a bridge span under its
      vehicle). A vehicle overtakes a much slower one right at mid-section only by chance. In the other
      direction only when k has no sign either (two sign-less lines through one point, as on a bridge
      deck): vehicles meet at mid-section all the time on a two-way road, and there a vehicle with a sign
      met a sign-less real car of the bump simulator (unseen seed 1008).

    A real vehicle that overtakes another keeps its strain sign and stays (on the bump simulator's urban
    scenes cars overtake trucks, and none is lost on the development seeds). 0 disables.
    """
    if not p.crossing_ratio > 0:
        return list(tracks)

    def crosses(a: dict, b: dict) -> bool:
        xa, xb_ = a["pts"][0], b["pts"][0]
        inside = (xa >= xb_.min()) & (xa <= xb_.max())
        if inside.sum() < 3:
            return False
        d = a["poly"](xa[inside]) - b["poly"](xa[inside])
        return bool(d.min() * d.max() < 0)

    def stitched(tr: dict, k: dict) -> bool:
        if not (tr["speed_kmh"] > (1.0 + CROSS_SPEED) * k["speed_kmh"] and crosses(tr, k)):
            return False
        same_direction = k["direction"] == tr["direction"]
        if same_direction and k["strength"] >= p.crossing_ratio * tr["strength"]:
            return True
        if not same_direction and _has_sign(k):
            return False
        pivot = abs(tr["t_mid"] - k["t_mid"]) <= claim_s(k, p)
        return pivot and p.crossing_ratio * k["strength"] >= tr["strength"]

    return _drop_signless(tracks, stitched)


def _has_sign(tr: dict) -> bool:
    """Whether a track's strain has a consistent sign (:func:`~terralab.das.tracks.track_polarity` at least
    :data:`LOBE_POLARITY`): a vehicle on the ground, not a chain."""
    return abs(tr.get("polarity", 0.0)) >= LOBE_POLARITY


def _drop_signless(tracks: list[dict], beside) -> list[dict]:
    """The tracks without those whose strain has no consistent sign (:func:`_has_sign`) and that have another
    track ``k`` with ``beside(track, k)`` (``beside`` says which directions count): the one rule behind
    :func:`drop_incoherent` and :func:`drop_crossing_chains`."""

    def chain(tr: dict) -> bool:
        return not _has_sign(tr) and any(k is not tr and outranks(k, tr) and beside(tr, k) for k in tracks)

    return [tr for tr in tracks if not chain(tr)]
