"""Accuracy measures agree with their definitions and with scikit-learn."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from sklearn.metrics import cohen_kappa_score, f1_score, jaccard_score, precision_score, recall_score

from terralab.errors import InvalidInputError
from terralab.rice import evaluate


def test_scores_match_scikit_learn_on_random_labels():
    rng = np.random.default_rng(0)
    t = rng.integers(0, 5, 2000)
    p = np.where(rng.random(2000) < 0.7, t, rng.integers(0, 5, 2000))
    s = evaluate.scores(t, p)
    np.testing.assert_allclose(s.per_class["precision"], precision_score(t, p, average=None))
    np.testing.assert_allclose(s.per_class["recall"], recall_score(t, p, average=None))
    np.testing.assert_allclose(s.per_class["f1"], f1_score(t, p, average=None))
    np.testing.assert_allclose(s.per_class["iou"], jaccard_score(t, p, average=None))
    assert s.overall_accuracy == pytest.approx((t == p).mean())
    assert s.kappa == pytest.approx(cohen_kappa_score(t, p))
    assert s.macro_f1 == pytest.approx(f1_score(t, p, average="macro"))


def test_unlabelled_truth_and_nodata_predictions_are_not_scored():
    t = xr.DataArray(np.array([[0, 1], [-1, 1]]), dims=("y", "x"))
    p = xr.DataArray(np.array([[0, -1], [1, 1]]), dims=("y", "x"))
    s = evaluate.scores(t, p, class_names=["a", "b"])
    assert s.n == 2 and s.overall_accuracy == 1.0
    assert list(s.confusion.index) == ["a", "b"]
    with pytest.raises(InvalidInputError, match="nothing to score"):
        evaluate.scores(np.array([-1]), np.array([0]))


def test_a_class_never_predicted_has_nan_precision_not_zero():
    s = evaluate.scores(np.array([0, 1, 2]), np.array([0, 1, 1]))
    assert np.isnan(s.per_class.loc["2", "precision"]) and s.per_class.loc["2", "recall"] == 0


def test_sample_at_picks_the_pixel_under_each_point_and_minus_one_outside():
    cmap = xr.DataArray(
        np.arange(12).reshape(3, 4),
        dims=("y", "x"),
        coords={"y": [25.0, 15.0, 5.0], "x": [5.0, 15.0, 25.0, 35.0]},
    )
    pts = pd.DataFrame({"x": [5.1, 34.0, 19.9, 50.0], "y": [24.0, 6.0, 11.0, 5.0]})
    assert evaluate.sample_at(cmap, pts).tolist() == [0, 11, 5, -1]


def test_independent_evaluation_scores_a_class_map_on_points():
    cmap = xr.DataArray(
        np.array([[1, 1], [0, 2]]),
        dims=("y", "x"),
        coords={"y": [1.5, 0.5], "x": [0.5, 1.5]},
        attrs={"class_names": ["crop", "rice", "forest"]},
    )
    pts = pd.DataFrame({"x": [0.5, 1.5, 0.5], "y": [1.5, 0.5, 0.5], "class": [1, 2, 1]})
    s = evaluate.independent_evaluation(cmap, pts)
    assert s.overall_accuracy == pytest.approx(2 / 3)
    assert s.per_class.loc["rice", "recall"] == 0.5


def test_band_model_table_is_laid_out_like_the_paper():
    table = evaluate.band_model_table(
        {("unet", "RGBNES"): 0.66, ("unet", "RGBN"): 0.59, ("dnn", "RGBN"): 0.5}
    )
    assert list(table.columns) == ["RGBN", "RGBNES"] and list(table.index) == ["unet", "dnn"]
    assert table.loc["unet", "RGBNES"] == 0.66 and np.isnan(table.loc["dnn", "RGBNES"])
