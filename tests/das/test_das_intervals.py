"""Pooled scores of scenes and their intervals over scenes (``terralab.das.intervals``)."""

import numpy as np
import pandas as pd
import pytest

from terralab.das.intervals import INTERVAL_METRICS, paired_difference, pool_scenes, scene_intervals
from terralab.errors import InvalidInputError


def _scenes(errors, n_true, n_detected, class_ok, duplicates=None):
    """Per-scene rows as evaluate_runs(per_scene=True) makes them, from each scene's matched speed errors."""
    rows = []
    for i, (e, nt, nd, ok) in enumerate(zip(errors, n_true, n_detected, class_ok)):
        e, ok = np.asarray(e, dtype=float), np.asarray(ok, dtype=float)
        rows.append(
            {
                "seed": 100 + i,
                "n_true": nt,
                "n_detected": nd,
                "true_positives": len(e),
                "duplicates": 0 if duplicates is None else duplicates[i],
                "speed_mae_kmh": float(np.mean(np.abs(e))) if len(e) else np.nan,
                "class_accuracy": float(np.mean(ok)) if len(e) else np.nan,
            }
        )
    return pd.DataFrame(rows)


def test_pooled_scores_are_those_of_every_matched_vehicle_together():
    errors = [[1.0, -2.0, 0.5], [], [3.0], [0.25, -0.25]]
    class_ok = [[1, 0, 1], [], [1], [1, 1]]
    per_scene = _scenes(errors, [4, 2, 1, 3], [3, 1, 2, 2], class_ok, duplicates=[0, 0, 1, 0])
    pooled = pool_scenes(per_scene)
    every = np.abs(np.concatenate([np.asarray(e) for e in errors]))
    assert pooled["speed_mae_kmh"] == pytest.approx(every.mean())  # a scene without a match counts nowhere
    assert pooled["class_accuracy"] == pytest.approx(np.mean(np.concatenate(class_ok)))
    assert (pooled["n_scenes"], pooled["n_true"], pooled["n_detected"], pooled["duplicates"]) == (4, 10, 8, 1)
    assert pooled["precision"] == pytest.approx(6 / 8) and pooled["recall"] == pytest.approx(6 / 10)
    assert pooled["f1"] == pytest.approx(2 * 6 / 18)
    assert pooled["count_error_pct"] == pytest.approx(20.0)


def test_the_position_error_is_pooled_over_every_matched_vehicle_where_the_scenes_carry_it():
    per_scene = _scenes([[1.0, 2.0, 3.0], [], [4.0]], [3, 1, 1], [3, 0, 1], [[1, 1, 1], [], [1]])
    assert "position_mae_m" not in pool_scenes(per_scene)  # earlier callers' tables are unchanged
    per_scene["position_mae_m"] = [2.0, np.nan, 10.0]  # three vehicles at 2 m, one at 10 m; one scene none
    assert pool_scenes(per_scene)["position_mae_m"] == pytest.approx((3 * 2.0 + 10.0) / 4)


def test_intervals_hold_the_value_narrow_with_more_scenes_and_are_reproducible():
    rng = np.random.default_rng(3)
    n_true = rng.integers(10, 30, 20)
    tp = (n_true * rng.uniform(0.5, 0.9, 20)).astype(int)
    n_det = tp + rng.integers(0, 8, 20)
    per_scene = _scenes([rng.normal(0, 2, k) for k in tp], n_true, n_det, [np.ones(k) for k in tp])
    ci = scene_intervals(per_scene, n_boot=400, seed=1)
    assert list(ci.index) == list(INTERVAL_METRICS) and list(ci.columns) == ["value", "low", "high"]
    pooled = pool_scenes(per_scene)
    for metric in INTERVAL_METRICS:
        assert ci.loc[metric, "value"] == pytest.approx(pooled[metric])
        assert ci.loc[metric, "low"] <= pooled[metric] <= ci.loc[metric, "high"], metric
    assert ci.loc["f1", "high"] - ci.loc["f1", "low"] > 0.01  # 20 uneven scenes: a real spread
    assert scene_intervals(per_scene, n_boot=400, seed=1).equals(ci)
    four_times = pd.concat([per_scene] * 4, ignore_index=True)
    wide = ci.loc["f1", "high"] - ci.loc["f1", "low"]
    narrow = scene_intervals(four_times, n_boot=400, seed=1).loc["f1"]
    assert narrow["high"] - narrow["low"] < 0.7 * wide  # ~1/2 with 4x the scenes
    wider = scene_intervals(per_scene, n_boot=400, seed=1, level=0.99).loc["f1"]
    assert wider["high"] - wider["low"] > wide
    one = scene_intervals(per_scene.iloc[[0, 0, 0]], n_boot=50).loc["precision"]
    assert one["low"] == one["high"] == one["value"]  # the same scene three times: nothing to redraw


def test_paired_difference_of_two_settings_on_the_same_scenes():
    n_true = [10, 12, 8, 11, 9]
    a = _scenes([np.zeros(k) for k in (8, 9, 6, 8, 7)], n_true, n_true, [np.ones(k) for k in (8, 9, 6, 8, 7)])
    b = _scenes(
        [np.zeros(k) for k in (9, 10, 7, 9, 8)], n_true, n_true, [np.ones(k) for k in (9, 10, 7, 9, 8)]
    )
    diff, low, high = paired_difference(a, b, "recall", n_boot=200)
    assert diff == pytest.approx(43 / 50 - 38 / 50)
    assert 0 < low <= diff <= high  # one more vehicle found in every scene: the difference is no accident
    assert paired_difference(a, a, n_boot=50) == (0.0, 0.0, 0.0)


def test_bad_tables_and_settings_raise_clear_errors():
    good = _scenes([[1.0], [2.0]], [2, 2], [1, 1], [[1], [1]])
    with pytest.raises(InvalidInputError, match="lacks \\['true_positives'\\].*per_scene=True"):
        pool_scenes(good.drop(columns="true_positives"))
    with pytest.raises(InvalidInputError, match="empty"):
        scene_intervals(good.iloc[:0])
    with pytest.raises(InvalidInputError, match="level must be in \\(0, 1\\)"):
        scene_intervals(good, level=90)
    with pytest.raises(InvalidInputError, match="n_boot"):
        scene_intervals(good, n_boot=3)
    with pytest.raises(InvalidInputError, match="unknown metric 'auc'"):
        paired_difference(good, good, "auc")
    with pytest.raises(InvalidInputError, match="same scenes"):
        paired_difference(good, good.iloc[:1])
    with pytest.raises(InvalidInputError, match="same scenes"):
        paired_difference(good, good.assign(seed=[7, 8]))
