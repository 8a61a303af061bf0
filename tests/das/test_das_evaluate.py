"""Scoring detections against truth: one-to-one matching and its tolerances."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from terralab import das


def _vehicles(times_s, speeds_kmh, directions):
    t0 = pd.Timestamp("2024-01-01")
    return pd.DataFrame(
        {
            "time": t0 + pd.to_timedelta(np.asarray(times_s, dtype=float), unit="s"),
            "speed_kmh": np.asarray(speeds_kmh, dtype=float),
            "direction": np.asarray(directions),
        }
    )


def test_match_pairs_each_vehicle_once_within_the_time_and_speed_tolerances():
    truth = _vehicles([10.0, 11.0, 30.0], [60.0, 60.0, 40.0], [1, 1, -1])
    det = _vehicles([10.9, 10.2, 30.5, 50.0], [61.0, 59.0, 48.0, 50.0], [1, 1, -1, 1])
    m = das.match(det, truth, time_tolerance_s=1.5, speed_tolerance=0.25)
    assert sorted(zip(m["det_index"], m["truth_index"])) == [(0, 1), (1, 0), (2, 2)]
    strict = das.match(det, truth, time_tolerance_s=1.5, speed_tolerance=0.1)
    assert sorted(zip(strict["det_index"], strict["truth_index"])) == [(0, 1), (1, 0)]


def test_former_tolerance_names_still_work_and_warn():
    truth = _vehicles([10.0, 30.0], [60.0, 40.0], [1, -1])
    det = _vehicles([10.2, 30.5], [61.0, 48.0], [1, -1])
    new = das.match(det, truth, time_tolerance_s=0.3, speed_tolerance=0.1)
    with pytest.warns(DeprecationWarning) as caught:
        old = das.match(det, truth, time_tol_s=0.3, speed_tol=0.1)
    assert sorted(str(w.message) for w in caught) == [
        "speed_tol is deprecated; use speed_tolerance",
        "time_tol_s is deprecated; use time_tolerance_s",
    ]
    pd.testing.assert_frame_equal(old, new)
    with pytest.warns(DeprecationWarning, match="speed_tol is deprecated"):
        assert das.evaluate.duplicates(det, truth, speed_tol=0.1) == 0
    with pytest.raises(TypeError, match="time_tol"):
        das.match(det, truth, time_tol=0.3)


def test_score_is_one_row_with_units():
    truth = _vehicles([10.0, 30.0, 50.0], [60.0, 40.0, 80.0], [1, -1, 1])
    det = _vehicles([10.2, 30.5], [63.0, 40.0], [1, 1])
    scores = das.score(det, truth)
    assert len(scores) == 1
    row = scores.iloc[0]
    assert (row["n_true"], row["n_detected"], row["true_positives"]) == (3, 2, 2)
    assert row["precision"] == 1.0 and row["recall"] == pytest.approx(2 / 3)
    assert row["direction_accuracy"] == 0.5
    assert row["speed_error_median_pct"] == pytest.approx(2.5)
    assert scores.attrs["units"]["speed_error_median_pct"] == "%"
    assert scores.attrs["units"]["time_error_median_s"] == "s"


def test_evaluate_runs_gives_one_row_per_run_or_per_run_and_scene():
    runs = {"default": {"site": "highway", "classify": False}}
    pooled = das.evaluate.evaluate_runs("bump", "highway", [100], runs)
    per_scene = das.evaluate.evaluate_runs("bump", "highway", [100], runs, per_scene=True)
    assert list(pooled["run"]) == ["default"] and list(per_scene["seed"]) == [100]
    assert pooled.loc[0, "n_true"] == per_scene.loc[0, "n_true"]
    tp = per_scene.loc[0, "true_positives"]
    assert pooled.loc[0, "recall"] == pytest.approx(tp / per_scene.loc[0, "n_true"])
    assert pooled.attrs["units"]["count_error_pct"] == "%"
    # the position error: where each matched vehicle is at its detected mid-section time
    data, truth = das.synthetic.random_scene("bump", "highway", 100)
    _, pairs = das.evaluate.match_scene(
        das.detect_vehicles(data, **runs["default"]), truth, same_direction=True
    )
    v = truth.loc[pairs["truth_index"], "speed_kmh"].to_numpy() / 3.6
    assert per_scene.loc[0, "position_mae_m"] == pytest.approx(np.mean(np.abs(pairs["dt_s"]) * v))
    assert 0 < pooled.loc[0, "position_mae_m"] < 15 and pooled.attrs["units"]["position_mae_m"] == "m"


def test_a_partly_recorded_vehicle_takes_no_detection_a_whole_vehicle_needs():
    """A vehicle leaving the record (``outside_record``) 1 s after a whole one: matched first, it took the
    detection closest to it, and the whole vehicle counted as missed; one assignment over both gives each
    its own detection, and only the partly recorded vehicle's detection is dropped."""
    from terralab.das.evaluate import match_scene

    truth = _vehicles([10.0], [50.0], [1]).set_axis([7])
    truth.attrs["outside_record"] = _vehicles([11.0], [50.0], [1])
    det = _vehicles([10.9, 11.8], [50.0, 50.0], [1, 1])
    kept, pairs = match_scene(det, truth)
    assert kept.index.tolist() == [0]
    assert list(zip(pairs["det_index"], pairs["truth_index"])) == [(0, 7)]
    # without partly recorded vehicles it is match()
    truth.attrs["outside_record"] = truth.iloc[:0]
    kept, pairs = match_scene(det, truth)
    assert len(kept) == 2 and list(zip(pairs["det_index"], pairs["truth_index"])) == [(0, 7)]


def test_same_direction_matching_counts_a_wrong_direction_report_as_a_miss():
    truth = _vehicles([10.0, 20.0], [50.0, 50.0], [1, -1])
    det = _vehicles([10.2, 20.1], [50.0, 50.0], [1, 1])
    assert len(das.match(det, truth)) == 2
    strict = das.match(det, truth, same_direction=True)
    assert list(zip(strict["det_index"], strict["truth_index"])) == [(0, 0)]
