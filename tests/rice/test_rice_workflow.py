"""The notebook's experiment: catalog data, splits, model beside baseline, the band-set table."""

from __future__ import annotations

import numpy as np
import pytest

from terralab import rice
from terralab.errors import InvalidInputError


@pytest.fixture(scope="module")
def scene_experiment():
    return rice.workflow.open_experiment(
        "rice_synthetic_scene", split_kind="blocked", scene_size_px=96, block_size_px=24, seed=1
    )


def test_synthetic_experiment_splits_every_truth_pixel_once(scene_experiment):
    exp = scene_experiment
    assert exp.kind == "raster" and exp.truth.shape == exp.stack.shape[1:]
    assert int(exp.summary().to_numpy().sum()) == exp.truth.size
    owners = sum((part.values >= 0).astype(int) for part in exp.splits.values())
    assert (owners == 1).all()


def test_experiment_scores_a_model_on_the_test_split_and_on_independent_points(scene_experiment):
    exp = scene_experiment
    model = exp.fit("rf", bands="RGBNES", n_estimators=30, progress=False)
    class_map = exp.predict_map(model, progress=False)
    scores = exp.score(model, class_map)
    assert scores.attrs["n"] == int(
        (exp.splits["test"].values >= 0).sum()
        - ((class_map.values < 0) & (exp.splits["test"].values >= 0)).sum()
    )
    assert scores.loc["rice", "f1"] > 0.8
    independent = exp.independent_evaluation(model, class_map, n_per_class=20)
    assert independent.attrs["n"] <= 100 and independent.attrs["overall_accuracy"] > 0.7
    table = rice.evaluate.compare_scores({"rf": scores})
    assert {"overall_accuracy", "kappa", "rice_f1", "rice_iou"} <= set(table.columns)


def test_band_set_table_has_a_row_per_model_and_a_column_per_band_set(scene_experiment):
    table = scene_experiment.band_set_table(models=("rf",), band_sets=("RGBN", "RGBNES"))
    assert list(table.index) == ["rf"] and list(table.columns) == ["RGBN", "RGBNES"]
    assert np.isfinite(table.to_numpy()).all()


def test_unknown_dataset_is_refused():
    with pytest.raises(InvalidInputError, match="rice_synthetic_scene"):
        rice.workflow.open_experiment("rice_mars")


def test_real_points_experiment_refuses_a_unet_and_trains_per_pixel_models(shared_data):
    exp = rice.workflow.open_experiment("rice_aces_paro_points")
    assert exp.kind == "points" and exp.stack.sizes["band"] == 8
    assert exp.summary().sum().to_dict() == {"train": 8316, "val": 2385, "test": 1219}
    with pytest.raises(InvalidInputError, match="dnn"):
        exp.fit("unet")
    model = exp.fit("rf", bands="RGBN", n_estimators=50, progress=False)
    assert exp.score(model).loc["rice", "f1"] > 0.8
    class_map = exp.predict_map(model, progress=False)
    assert class_map.shape == (256, 256) and class_map.rio.crs.to_epsg() == 4326
    assert set(np.unique(class_map.values)) <= {0, 1, 2, 3, 4}
