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
    np.testing.assert_allclose(s["precision"], precision_score(t, p, average=None))
    np.testing.assert_allclose(s["recall"], recall_score(t, p, average=None))
    np.testing.assert_allclose(s["f1"], f1_score(t, p, average=None))
    np.testing.assert_allclose(s["iou"], jaccard_score(t, p, average=None))
    assert s.attrs["overall_accuracy"] == pytest.approx((t == p).mean())
    assert s.attrs["kappa"] == pytest.approx(cohen_kappa_score(t, p))
    assert s.attrs["macro_f1"] == pytest.approx(f1_score(t, p, average="macro"))


def test_unlabelled_truth_and_nodata_predictions_are_not_scored():
    t = xr.DataArray(np.array([[0, 1], [-1, 1]]), dims=("y", "x"))
    p = xr.DataArray(np.array([[0, -1], [1, 1]]), dims=("y", "x"))
    s = evaluate.scores(t, p, class_names=["a", "b"])
    assert s.attrs["n"] == 2 and s.attrs["overall_accuracy"] == 1.0
    assert list(evaluate.score_confusion(s).index) == ["a", "b"]
    with pytest.raises(InvalidInputError, match="nothing to score"):
        evaluate.scores(np.array([-1]), np.array([0]))


def test_a_class_never_predicted_has_nan_precision_not_zero():
    s = evaluate.scores(np.array([0, 1, 2]), np.array([0, 1, 1]))
    assert np.isnan(s.loc["2", "precision"]) and s.loc["2", "recall"] == 0


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
    assert s.attrs["overall_accuracy"] == pytest.approx(2 / 3)
    assert s.loc["rice", "recall"] == 0.5


def test_band_model_table_is_laid_out_like_the_paper():
    table = evaluate.band_model_table(
        {("unet", "RGBNES"): 0.66, ("unet", "RGBN"): 0.59, ("dnn", "RGBN"): 0.5}
    )
    assert list(table.columns) == ["RGBN", "RGBNES"] and list(table.index) == ["unet", "dnn"]
    assert table.loc["unet", "RGBNES"] == 0.66 and np.isnan(table.loc["dnn", "RGBNES"])


def test_scores_are_a_tidy_table_per_class_with_headline_numbers_and_units_in_attrs():
    """The house shape of a score: one row per class, metric columns, units and headline numbers in attrs."""
    t, p = np.array([0, 1, 1, 2, 2, 2]), np.array([0, 1, 2, 2, 2, 0])
    s = evaluate.scores(t, p, class_names=["a", "b", "c"])
    assert isinstance(s, pd.DataFrame) and s.index.name == "class" and list(s.index) == ["a", "b", "c"]
    assert list(s.columns) == ["precision", "recall", "f1", "iou", "support"]
    assert s.attrs["units"]["f1"] == "1" and s.attrs["units"]["support"] == "count"
    assert s.attrs["n"] == 6 and s.attrs["overall_accuracy"] == pytest.approx(4 / 6)
    confusion = evaluate.score_confusion(s)
    pd.testing.assert_frame_equal(confusion, evaluate.confusion_matrix(t, p, class_names=["a", "b", "c"]))
    assert evaluate.summary(s, "x_")["x_f1_c"] == pytest.approx(s.loc["c", "f1"])
    both = pd.concat({"m1": s, "m2": s})  # tables of several models stack
    assert both.shape == (6, 5)
    table = evaluate.compare_scores({"m1": s}, focus_class="b")
    assert table.attrs["units"]["b_recall"] == "1" and table.loc["m1", "n"] == 6
    with pytest.raises(InvalidInputError, match="not a table from rice.evaluate.scores"):
        evaluate.score_confusion(pd.DataFrame({"f1": [1.0]}))


def test_calibration_is_a_reliability_table_per_bin_with_ece_in_attrs():
    """Two bins by hand: confidence 0.9 right twice of two, confidence 0.6 right once of two."""
    p = np.array([[0.9, 0.1], [0.1, 0.9], [0.6, 0.4], [0.4, 0.6]])
    t = np.array([0, 1, 0, 0])
    table = evaluate.calibration(p, t, n_bins=2)
    assert list(table.columns) == ["bin_lower", "bin_upper", "count", "mean_confidence", "accuracy"]
    assert table["count"].tolist() == [0, 4]  # all four confidences (0.9, 0.9, 0.6, 0.6) fall in (0.5, 1]
    assert table.loc[1, "mean_confidence"] == pytest.approx(0.75) and table.loc[1, "accuracy"] == 0.75
    assert table.attrs["ece"] == pytest.approx(0.0) and table.attrs["n"] == 4
    assert table.attrs["units"]["count"] == "count" and table.attrs["units"]["ece"] == "1"
    with pytest.raises(InvalidInputError, match="nothing to score"):
        evaluate.calibration(p, np.full(4, -1))
