"""Weak labels through a remapping table, stratified samples, random and spatially blocked splits, weights."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from terralab.errors import InvalidInputError
from terralab.rice import labels, synthetic


@pytest.fixture(scope="module")
def scene():
    return synthetic.scene(height_px=128, width_px=128, seed=4)


def test_remapping_table_maps_every_code_and_drops_minus_one():
    lc = xr.DataArray(np.array([[1, 5, 7], [4, 9, 6]]), dims=("y", "x"))
    out = labels.remap_classes(lc, {1: 2, 5: 1, 7: 4, 4: 0, 9: -1, 6: 3})
    np.testing.assert_array_equal(out.values, [[2, 1, 4], [0, -1, 3]])
    frame = pd.DataFrame({"code": [1, 5, 7, 4, 9, 6], "class": [2, 1, 4, 0, -1, 3]})
    np.testing.assert_array_equal(labels.remap_classes(lc, frame).values, out.values)


def test_label_classes_outside_the_table_are_named_in_the_error():
    lc = xr.DataArray(np.array([[1, 42], [99, 1]]), dims=("y", "x"))
    with pytest.raises(InvalidInputError) as err:
        labels.remap_classes(lc, {1: 0})
    assert "[42, 99]" in str(err.value)
    dropped = labels.remap_classes(lc, {1: 0}, unknown="drop")
    np.testing.assert_array_equal(dropped.values, [[0, -1], [-1, 0]])


def test_nodata_and_nan_codes_become_unlabelled():
    lc = xr.DataArray(np.array([[1.0, np.nan], [255, 1]]), dims=("y", "x"))
    out = labels.remap_classes(lc, {1: 0}, nodata=255)
    np.testing.assert_array_equal(out.values, [[0, -1], [-1, 0]])


def test_rice_phenology_rule_removes_weak_rice_labels_that_do_not_green_up(scene):
    stack, truth = scene
    lc = synthetic.landcover(truth, error_rate=0.2, seed=1)
    raw = labels.remap_classes(lc, synthetic.LANDCOVER_TO_CLASS)
    clean = labels.weak_labels(lc, synthetic.LANDCOVER_TO_CLASS, stack=stack, min_ndvi_gain=0.15)

    def rice_precision(lab):
        return float((truth.values[lab.values == 1] == 1).mean())

    assert rice_precision(clean) > rice_precision(raw) + 0.02
    assert (clean.values == 1).sum() > 0.5 * (raw.values == 1).sum()


def test_stratified_sample_takes_n_per_class_and_skips_nodata(scene):
    stack, truth = scene
    points = labels.sample_points(stack, truth, 40, seed=0)
    assert points["class"].value_counts().to_dict() == {c: 40 for c in range(5)}
    assert not points[list(stack["band"].values)].isna().any().any()
    row, col = points["row"].to_numpy(), points["col"].to_numpy()
    np.testing.assert_array_equal(truth.values[row, col], points["class"])
    np.testing.assert_allclose(stack["x"].values[col], points["x"])
    fewer = labels.sample_points(stack, truth, {1: 10, 2: 5}, seed=0)
    assert fewer["class"].value_counts().to_dict() == {1: 10, 2: 5}


def test_blocked_split_shares_no_block_between_splits(scene):
    _, truth = scene
    parts = labels.split(truth, kind="blocked", block_size_px=16, seed=3)
    blocks = labels.block_ids(truth.shape, 16)
    owners = {}
    for name, lab in parts.items():
        for b in np.unique(blocks[lab.values >= 0]):
            owners.setdefault(int(b), set()).add(name)
    assert all(len(o) == 1 for o in owners.values())
    n = {k: int((v.values >= 0).sum()) for k, v in parts.items()}
    assert sum(n.values()) == truth.size
    assert n["train"] / truth.size == pytest.approx(0.7, abs=0.08)
    assert n["test"] > 0 and n["val"] > 0


def test_gap_unlabels_a_strip_between_splits(scene):
    _, truth = scene
    parts = labels.split(truth, kind="blocked", block_size_px=16, gap_px=2, seed=3)
    train, test = parts["train"].values >= 0, parts["test"].values >= 0
    from scipy.ndimage import binary_dilation

    assert not (binary_dilation(train, iterations=3) & test).any()


def test_random_split_takes_the_fractions_of_labelled_pixels(scene):
    _, truth = scene
    parts = labels.split(truth, kind="random", fractions=(0.6, 0.3, 0.1), seed=0)
    n = np.array([(parts[k].values >= 0).sum() for k in ("train", "val", "test")]) / truth.size
    np.testing.assert_allclose(n, [0.6, 0.3, 0.1], atol=0.01)


def test_half_split_trains_on_one_half_and_scores_on_the_other(scene):
    _, truth = scene
    parts = labels.split(truth, kind="half", fractions=(0.5, 0.0, 0.5))
    rows_train = np.flatnonzero((parts["train"].values >= 0).any(axis=1))
    rows_test = np.flatnonzero((parts["test"].values >= 0).any(axis=1))
    assert rows_train.max() < rows_test.min() and rows_train.size == rows_test.size == 64


def test_an_empty_split_is_an_error_that_says_what_to_do():
    lab = xr.DataArray(np.full((32, 32), -1, np.int16), dims=("y", "x"))
    lab[:4, :4] = 1
    with pytest.raises(InvalidInputError, match="block"):
        labels.split(lab, kind="blocked", block_size_px=16)


def test_blocked_point_split_keeps_each_block_in_one_split():
    rng = np.random.default_rng(0)
    pts = pd.DataFrame({"x": rng.uniform(0, 1000, 500), "y": rng.uniform(0, 1000, 500), "class": 0})
    s = labels.split_points(pts, kind="blocked", block_size=100, seed=0)
    key = (pts["x"] // 100).astype(int).astype(str) + "_" + (pts["y"] // 100).astype(int).astype(str)
    assert (s.groupby(key).nunique() == 1).all()
    assert set(s) == {"train", "val", "test"}


def test_balanced_class_weights_are_inverse_frequency():
    w = labels.class_weights(np.array([0, 0, 0, 1, -1]), 3)
    np.testing.assert_allclose(w.values, [4 / (2 * 3), 4 / (2 * 1), 0.0])
    with pytest.raises(InvalidInputError, match="empty"):
        labels.class_weights(np.array([-1, -1]))


def test_labels_on_another_grid_are_refused_or_reprojected_on_request(scene):
    stack, truth = scene
    shifted = truth.assign_coords(x=truth["x"] + 10.0)
    with pytest.raises(InvalidInputError, match="reproject=True"):
        labels.align_labels(shifted, stack)
    geographic = truth.astype(np.int16).rio.write_nodata(-1).rio.reproject("EPSG:4326")
    with pytest.raises(InvalidInputError, match="CRS"):
        labels.align_labels(geographic, stack)
    back = labels.align_labels(geographic, stack, reproject=True)
    assert back.shape == truth.shape
    valid = back.values >= 0
    assert valid.mean() > 0.9 and (back.values[valid] == truth.values[valid]).mean() > 0.9
