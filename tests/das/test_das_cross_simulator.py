"""The same defaults on scenes of two independently written simulators (small version of the benchmark).

``benchmarks/das_cross_simulator.py`` prints the full table (20 unseen scenes per simulator and site); this test
runs one unseen scene per simulator and site (seeds 500-599 are used nowhere else) and checks the floors stated
in the README. Measured on seed 500 / 500-501 (development machine): bump highway P 0.98 R 0.85, bump urban
P 1.00 R 0.88; halfspace highway P 1.00 R 0.28, halfspace urban P 1.00 R 0.02. On the half-space simulator the
recall target (0.97) is NOT MET: the Boussinesq strain of a car is a zero-mean wavelet along the fibre that the
detector's 1 Hz low-pass removes; only heavy vehicles remain. The floors below are regression floors for that
state, not claims of quality. Precision holds on these scenes but NOT over the benchmark's 20 scenes
(halfspace highway 0.895, urban 0.527: ghosts and impossible vehicles remain there); the README must quote the
benchmark, not this test, for the half-space rows.
"""

from __future__ import annotations

import pytest

from terralab.das import evaluate

SEED = [500]


@pytest.mark.parametrize("simulator, site, precision, recall", [
    ("bump", "highway", 0.9, 0.75),
    ("bump", "urban", 0.9, 0.75),
    ("halfspace", "highway", 0.9, 0.1),
    ("halfspace", "urban", 0.9, 0.0),
])
def test_defaults_on_both_simulators_meet_the_stated_floors(simulator, site, precision, recall):
    pooled, per_scene = evaluate.evaluate_scenes(simulator, site, SEED)
    assert pooled["n_true"] >= 10
    if pooled["n_detected"]:
        assert pooled["precision"] >= precision, pooled
    assert pooled["recall"] >= recall, pooled
    assert pooled["duplicates"] == 0, pooled
    if pooled["n_detected"] and simulator == "bump":
        assert pooled["speed_mae_kmh"] <= 2.0, pooled
