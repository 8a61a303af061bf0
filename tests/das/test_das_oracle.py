"""The oracle ceilings: the along-track statistic scanned over a record (``das.oracle.scan_statistic``) is the
oracle's own statistic, and ``scan_ceiling`` turns the scans' false peaks into a recall ceiling."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from terralab import das
from terralab.errors import InvalidInputError


def _one_car_scene():
    from terralab.das import synthetic

    car = pd.DataFrame({"time_s": [15.0], "speed_kmh": [40.0], "direction": [1], "vehicle_class": ["car"]})
    return synthetic.urban_street(duration_s=30, n_channels=40, seed=2, vehicles=car)


@pytest.mark.parametrize("reduce", ["median", "mean"])
def test_the_scan_is_the_oracle_statistic_on_every_straight_track_and_peaks_at_the_car(reduce):
    from terralab.das import oracle

    data, truth = _one_car_scene()
    _, details = das.detect_vehicles(data, site="urban", return_products=True, classify=False)
    xb, valid = details["distance"], details["valid"]
    cols = np.flatnonzero(valid)
    x_mid = 0.5 * (float(data.distance[0]) + float(data.distance[-1]))
    v = 40.0 / 3.6
    band = next(b for b in details["bands"] if b.direction == 1 and b.v_lo <= v < b.v_hi)
    scan = oracle.scan_statistic(band, cols, xb[cols], x_mid, np.array([v]), reduce)
    t_car = (truth["time"].iloc[0].value - details["t_ref_ns"]) / 1e9
    assert np.isneginf(scan[0]) and np.isneginf(scan[-1])  # tracks that leave the record are not scanned
    assert abs(band.t[int(np.argmax(scan))] - t_car) < 0.3
    for row in np.flatnonzero(np.isfinite(scan)):
        tc = band.t[row] + (xb[cols] - x_mid) / v
        assert scan[row] == pytest.approx(oracle.track_statistic(band, tc, v, cols, reduce), rel=1e-6)
    assert scan.max() > 5 * np.median(scan[np.isfinite(scan)])


def _scan(vehicles, peaks, statistic="mean"):
    return {"statistic": statistic, "vehicles": np.asarray(vehicles, float), "null_peaks": np.asarray(peaks)}


def test_the_ceiling_lets_through_the_false_peaks_a_precision_allows_over_all_scenes():
    from terralab.das import oracle

    scans = [_scan([5.0, 4.0, np.nan], [3.5, 1.5]), _scan([3.0, 2.0, 1.0], [2.5])]
    # 5 scored vehicles: precision 0.8 allows 1 false peak (threshold = the second largest, 2.5), 0.97 none
    loose = oracle.scan_ceiling(scans, precision=0.8).to_dict("records")[0]
    assert loose == {
        "n_scenes": 2,
        "n_scored": 5,
        "threshold": 2.5,
        "false_peaks": 1,
        "recall_ceiling": pytest.approx(0.6),
    }
    strict = oracle.scan_ceiling(scans).to_dict("records")[0]
    assert (strict["threshold"], strict["false_peaks"], strict["recall_ceiling"]) == (3.5, 0, 0.4)
    everything = oracle.scan_ceiling([_scan([1.0, 2.0], [])], precision=0.5).to_dict("records")[0]
    assert everything["recall_ceiling"] == 1.0 and everything["false_peaks"] == 0


@pytest.mark.parametrize(
    ("scans", "precision", "message"),
    [
        ([], 0.97, "at least one"),
        ([_scan([1.0], [0.5])], 1.0, "strictly between 0 and 1"),
        ([_scan([1.0], [0.5])], 0.0, "strictly between 0 and 1"),
        ([_scan([1.0], [0.5]), _scan([1.0], [0.5], "median")], 0.97, "one statistic at a time"),
    ],
)
def test_the_ceiling_refuses_what_it_cannot_pool(scans, precision, message):
    from terralab.das import oracle

    with pytest.raises(InvalidInputError, match=message):
        oracle.scan_ceiling(scans, precision=precision)


def test_a_scene_scan_scores_every_vehicle_and_its_ceiling_falls_with_the_precision():
    from terralab.das import oracle, synthetic

    data, truth = synthetic.random_scene("halfspace", "urban", 503)
    noise = oracle.noise_only("halfspace", "urban", 503)
    with pytest.raises(InvalidInputError, match="statistics must be some of"):
        oracle.scan_scene(data, truth, noise, statistics=("max",))
    scans = oracle.scan_scene(data, truth, noise, site="urban")
    assert sorted(scans) == ["mean", "median"]
    for stat, sc in scans.items():
        assert sc["statistic"] == stat and len(sc["vehicles"]) == len(truth)
        assert np.isfinite(sc["vehicles"]).mean() > 0.9
        peaks = sc["null_peaks"]
        assert len(peaks) > 50 and np.all(np.diff(peaks) <= 0)
        ceilings = [
            oracle.scan_ceiling([sc], precision=p).to_dict("records")[0]["recall_ceiling"]
            for p in (0.5, 0.97, 0.999)
        ]
        assert ceilings[0] >= ceilings[1] >= ceilings[2]
    # the median's per-vehicle statistic is the oracle's
    table = oracle.oracle_detectability(data, truth, noise, site="urban")
    per_vehicle = np.asarray(table.attrs["per_vehicle"])
    assert np.array_equal(np.isfinite(per_vehicle), np.isfinite(scans["median"]["vehicles"]))
    ok = np.isfinite(per_vehicle)
    assert np.corrcoef(per_vehicle[ok], scans["median"]["vehicles"][ok])[0, 1] > 0.999


def test_a_vehicle_alone_reads_as_in_the_scene_unless_a_neighbour_lifts_it():
    from terralab.das import evaluate, oracle, synthetic

    small = {"duration_s": 40.0, "n_channels": 150}
    data, truth = synthetic.random_scene("halfspace", "highway", 503, **small)
    noise = oracle.noise_only("halfspace", "highway", 503, **small)
    with pytest.raises(InvalidInputError, match="statistics must be some of"):
        oracle.isolated_statistics(truth, noise, "highway", 503, statistics=("max",), **small)
    in_scene = oracle.scan_scene(data, truth, noise, site="highway")
    alone = oracle.isolated_statistics(truth, noise, "highway", 503, **small)
    between, _, _, same = evaluate.pair_gaps(truth, truth, 0.0, 0.0)
    headway = np.where(same, np.abs(between), np.inf)
    np.fill_diagonal(headway, np.inf)
    lone = headway.min(axis=1) >= 4.0
    # (a weak vehicle alone sits on the noise record's noise, not its own: compare the strong ones)
    strong = lone & (in_scene["median"]["vehicles"] > 10.0)
    assert strong.sum() >= 2 and (~lone).sum() >= 3
    for stat in ("median", "mean"):
        assert len(alone[stat]) == len(truth) and np.isfinite(alone[stat]).all()
        np.testing.assert_allclose(alone[stat][strong], in_scene[stat]["vehicles"][strong], rtol=0.05)
    # in a platoon a weaker vehicle's statistic in the scene reads its neighbour's flank
    lifted = in_scene["median"]["vehicles"][~lone] / alone["median"][~lone]
    assert lifted.max() > 1.3
