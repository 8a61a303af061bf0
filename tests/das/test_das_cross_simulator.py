"""The packaged defaults on scenes of two independently written simulators (small version of the benchmark).

``benchmarks/das_cross_simulator.py`` prints the full table (20 unseen scenes per simulator and site, parameters
chosen on either simulator); this test runs unseen scenes (seeds 500-502: seeds 500-599 are used nowhere else;
one highway scene, three urban ones) with the packaged defaults (chosen on the half-space simulator's
development seeds 100-107) and the site preset, and holds the floors below. Measured (development machine):

* bump highway (seed 500) P 1.00 R 0.93; bump urban (500-502) P 1.00 R 0.88;
* half-space highway (500) P 0.83 R 0.36; half-space urban (500-502) P 0.57 R 0.07.

Floors are these values minus the scene-to-scene spread seen on the development seeds (0.1 for recall; 0.15
for half-space precision, which rests on a handful of detections). Half-space urban recall is near zero on
these three scenes (fibre 3.8 m from the lanes and the noisiest interrogator in the drawn range for 500): the
issue-11 targets (P, R >= 0.97) are NOT MET on the half-space simulator. At its signal level even an oracle that
knows each vehicle's track separates only ~75 % (highway) and ~50 % (urban) of the development vehicles from
noise tracks at 1 % false alarms (see the handoff note); the floors hold today's state, not a quality claim.
"""

from __future__ import annotations

import pytest

from terralab.das import evaluate

SEEDS = {"highway": [500], "urban": [500, 501, 502]}


@pytest.mark.parametrize("simulator, site, precision, recall, max_dups", [
    ("bump", "highway", 0.9, 0.83, 0),
    ("bump", "urban", 0.9, 0.78, 0),
    ("halfspace", "highway", 0.68, 0.26, 1),
    ("halfspace", "urban", 0.42, 0.05, 1),
])
def test_defaults_on_both_simulators_meet_the_stated_floors(simulator, site, precision, recall, max_dups):
    pooled, _ = evaluate.evaluate_scenes(simulator, site, SEEDS[site],
                                         detect_kwargs={"site": site, "classify": False})
    assert pooled["n_true"] >= 10
    assert pooled["precision"] >= precision, pooled
    assert pooled["recall"] >= recall, pooled
    assert pooled["duplicates"] <= max_dups, pooled
    # speed MAE: bump 0.58 / 0.31 km/h measured; half-space 2.62 / 1.60 (the 2 km/h target is NOT MET there)
    assert pooled["speed_mae_kmh"] <= (1.0 if simulator == "bump" else 3.0), pooled
